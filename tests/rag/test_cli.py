"""The ``kura`` command's own behaviour, without the real models: the chat loop, ``collections`` tables and
their confirmation, ``--version``/``-h``, plurals and where the config is found. The real models answer in
test_cli_answer.py (slow)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from rag.answer import Answer, Assistant, Event, Timings
from rag.cli.chat import PROMPT_HINT, chat_loop, stream_answer
from rag.config import find_config_file, user_config_file
from rag.wording import plural
from tests.conftest import KURA, run_kura, write_config
from tests.fakes import ScriptedLLM
from tests.helpers import fake_collection

DOCS = {"vault.md": "# Vault\n\nThe vault code is 4711."}


class RecordingAssistant:
    """Answers ``a:<question>``; a question starting with "stop" is interrupted (Ctrl-C) mid-answer."""

    def __init__(self) -> None:
        self.histories: list[list[tuple[str, str]]] = []

    def ask(self, question: str, history: Any = (), k: int | None = None) -> Iterator[Event]:
        self.histories.append(list(history))
        yield Event("answer", "a:")
        if question.startswith("stop"):
            raise KeyboardInterrupt
        answer = Answer(question, question, f"a:{question}", "", [], [], Timings(), "m", "CPU")
        yield Event("done", answer=answer)


def scripted_input(lines: list[str | type[BaseException]]) -> Any:
    """An ``input`` that returns each line, or raises it when it is an exception (Ctrl-C, Ctrl-D)."""
    pending = iter(lines)

    def read(prompt: str) -> str:
        line = next(pending)
        if isinstance(line, str):
            return line
        raise line

    return read


def test_chat_keeps_the_conversation_through_ctrl_c_and_empty_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assistant = RecordingAssistant()
    read = scripted_input(["", "one", KeyboardInterrupt, "   ", "stop two", "three", "exit", "never read"])
    chat_loop(assistant, None, False, read)  # type: ignore[arg-type]
    assert assistant.histories == [[], [("one", "a:one")], [("one", "a:one")]]
    out = capsys.readouterr().out
    assert out.startswith(PROMPT_HINT) and "(stopped; this answer is left out of the conversation)" in out


@pytest.mark.parametrize("end", ["quit", "QUIT", EOFError])
def test_chat_ends_on_quit_or_ctrl_d(end: str | type[BaseException]) -> None:
    assistant = RecordingAssistant()
    chat_loop(assistant, None, False, scripted_input(["one", end, "never read"]))  # type: ignore[arg-type]
    assert len(assistant.histories) == 1


def test_chat_help_and_prompt_say_the_same() -> None:
    result = run_kura("chat", "-h", env={"TERMINAL_WIDTH": "300", "COLUMNS": "300"})
    assert result.returncode == 0
    assert "'exit', 'quit' or Ctrl-D" in result.stdout and "'exit', 'quit' or Ctrl-D" in PROMPT_HINT


def test_ctrl_c_while_an_answer_prints_closes_the_model_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, embedder = fake_collection(tmp_path, DOCS)
    settings.llm.answer_mode = "generate"
    from rag.store import open_store

    llm = ScriptedLLM(["The vault code is 4711 [1]. " * 5], piece_chars=2)
    assistant = Assistant(settings, embedder, llm, open_store(settings, embedder))
    printed: list[str] = []

    def echo(text: Any = "", **_: Any) -> None:
        printed.append(str(text))
        if len(printed) == 2:
            raise KeyboardInterrupt  # the user's Ctrl-C lands while the terminal prints

    monkeypatch.setattr(typer, "echo", echo)
    with pytest.raises(KeyboardInterrupt):
        stream_answer(assistant.ask("What is the vault code?"), False)
    assert llm.closed == 1 and len(llm.calls) == 1


def test_version_and_h_on_every_command() -> None:
    version = run_kura("--version")
    assert version.returncode == 0 and version.stdout.startswith("kura ")
    for command in ([], ["ingest"], ["collections"], ["collections", "files"], ["users", "add"], ["models"]):
        result = run_kura(*command, "-h")
        assert result.returncode == 0 and "Usage: kura" in result.stdout, (command, result.stderr)


def test_plurals() -> None:
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]


# --- where the config comes from -------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no config anywhere, working in an empty folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("KURA_CONFIG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "home"


def _config(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("paths:\n  store: store\n", encoding="utf-8")
    return path


def test_config_order_here_then_env_then_user(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config_file(None) is None
    user = _config(home / ".config" / "kura" / "config.yaml")
    assert user_config_file() == user and find_config_file(None) == user
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    assert find_config_file(None) is None
    xdg = _config(home / "xdg" / "kura" / "config.yaml")
    assert find_config_file(None) == xdg
    from_env = _config(home / "elsewhere.yaml")
    monkeypatch.setenv("KURA_CONFIG", str(from_env))
    assert find_config_file(None) == from_env
    here = _config(Path.cwd() / "config.yaml")
    assert find_config_file(None) == here
    assert find_config_file(from_env) == from_env  # --config wins over all


def test_without_a_config_no_store_is_created(home: Path) -> None:
    env = {"HOME": str(home)}
    for command in (["collections"], ["ingest", "."], ["ask", "anything?"]):
        result = run_kura(*command, env=env)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: no config.yaml here, in $KURA_CONFIG or at ")
        assert "KURA_CONFIG=" in lines[0]
    assert list(Path.cwd().iterdir()) == []


def test_a_config_found_elsewhere_is_named(home: Path) -> None:
    user = _config(home / ".config" / "kura" / "config.yaml")
    result = run_kura("collections", "--json", env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"using the config {user}"] and json.loads(result.stdout) == []
    assert (user.parent / "store").is_dir() and list(Path.cwd().iterdir()) == []


# --- collections --------------------------------------------------------------------------------------------


@pytest.fixture
def one_file(tmp_path: Path) -> Path:
    """A store with collection 'kura' of one file and one chunk."""
    settings, _ = fake_collection(tmp_path, DOCS)
    assert settings.config_file is not None
    return settings.config_file


def run_in_terminal(*args: str, answer: str) -> tuple[int, str]:
    """``kura`` with a terminal for stdin and stdout (as a person runs it), typing ``answer``."""
    leader, follower = pty.openpty()
    child = subprocess.Popen([KURA, *args], stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    os.write(leader, answer.encode())
    output = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closes when the child exits
            break
        if not data:
            break
        output += data
    os.close(leader)
    return child.wait(timeout=120), output.decode(errors="replace")


def test_collections_table_and_json(one_file: Path) -> None:
    table = run_kura("collections", "--config", str(one_file))
    assert table.returncode == 0, table.stderr
    assert "1 collection" in table.stdout
    header = next(line for line in table.stdout.splitlines() if "name" in line)
    assert [word for word in ("name", "files", "chunks", "embedder") if word in header] == [
        "name",
        "files",
        "chunks",
        "embedder",
    ]
    rows = json.loads(run_kura("collections", "--json", "--config", str(one_file)).stdout)
    assert [(r["name"], r["files"], r["chunks"]) for r in rows] == [("kura", 1, 1)]


def test_collection_files_table_and_json(one_file: Path) -> None:
    table = run_kura("collections", "files", "kura", "--config", str(one_file))
    assert table.returncode == 0, table.stderr
    assert "collection 'kura': 1 file, 1 chunk" in table.stdout
    assert all(word in table.stdout for word in ("file", "state", "chunks", "ingested", "vault.md"))
    rows = json.loads(run_kura("collections", "files", "kura", "--json", "--config", str(one_file)).stdout)
    assert [(r["path"], r["state"], r["chunks"]) for r in rows] == [("vault.md", "ingested", 1)]
    assert rows[0]["ingested_at"] > 0
    group_config = run_kura("collections", "--config", str(one_file), "files", "kura", "--json")
    assert json.loads(group_config.stdout) == rows
    (one_file.parent / "docs" / "vault.md").unlink()
    rows = json.loads(run_kura("collections", "files", "kura", "--json", "--config", str(one_file)).stdout)
    assert rows[0]["state"] == "missing"
    missing = run_kura("collections", "files", "nope", "--config", str(one_file))
    assert missing.returncode == 1 and missing.stderr.startswith("error: no collection named 'nope'")


def _names(config: Path) -> list[str]:
    return [row["name"] for row in json.loads(run_kura("collections", "--json", "--config", str(config)).stdout)]


def test_rm_asks_first_and_says_what_goes(one_file: Path) -> None:
    code, output = run_in_terminal("collections", "--rm", "kura", "--config", str(one_file), answer="n\n")
    assert "Delete collection 'kura' (1 file, 1 chunk)? [y/N]" in output
    assert code == 1 and "nothing deleted" in output and _names(one_file) == ["kura"]
    code, output = run_in_terminal("collections", "--rm", "kura", "--config", str(one_file), answer="y\n")
    assert code == 0 and "deleted collection 'kura'" in output and _names(one_file) == []


def test_rm_without_a_terminal_needs_yes(one_file: Path) -> None:
    refused = run_kura("collections", "--rm", "kura", "--config", str(one_file))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: not deleting collection 'kura' without confirmation; add --yes to delete it"
    ]
    assert _names(one_file) == ["kura"]
    done = run_kura("collections", "--rm", "kura", "--yes", "--config", str(one_file))
    assert done.returncode == 0 and _names(one_file) == []


# --- users ----------------------------------------------------------------------------------------------


def test_users_list_table_and_json_never_show_hashes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rag.cli.main import app
    from rag.config import load_settings
    from rag.users import add_user, hash_password

    carol = hash_password("carol-password")
    rules = {"collection_access": {"secret": ["alice"], "*": ["alice", "bob"]}, "collection_editors": {"*": ["alice"]}}
    config = write_config(tmp_path, ui={"users": {"carol": carol}, **rules})
    runner = CliRunner(env={"COLUMNS": "160"})  # no wrapped cells
    (tmp_path / "none").mkdir()
    empty = runner.invoke(app, ["users", "list", "--config", str(write_config(tmp_path / "none"))])
    assert empty.exit_code == 0 and "no users yet" in empty.stdout
    for name in ("alice", "bob"):
        add_user(load_settings(config), name, f"{name}-long-password")

    table = runner.invoke(app, ["users", "list", "--config", str(config)])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert "3 users" in lines[0] and lines[-1] == f"users file: {tmp_path / 'data' / 'users.json'}"
    header = next(line for line in lines if "name" in line)
    assert [w for w in ("name", "may use", "editor of", "stored in") if w in header] == [
        "name",
        "may use",
        "editor of",
        "stored in",
    ]
    cells = {line.split()[1]: [c.strip() for c in line.split("│")[2:5]] for line in lines if line.startswith("│")}
    assert cells == {
        "alice": ["all", "all", "users file"],
        "bob": ["all but secret", "-", "users file"],
        "carol": ["no collection", "-", "config (ui.users)"],
    }

    rows = json.loads(runner.invoke(app, ["users", "list", "--json", "--config", str(config)]).stdout)
    assert rows == [
        {"name": "alice", "stored_in": "users_file", "may_use": ["secret", "*"], "may_edit": ["*"]},
        {"name": "bob", "stored_in": "users_file", "may_use": ["*"], "may_edit": []},
        {"name": "carol", "stored_in": "config", "may_use": [], "may_edit": []},
    ]
    stored = json.loads((tmp_path / "data" / "users.json").read_text())
    for hashed in (carol, *stored.values()):
        assert hashed.split("$")[-1] not in table.stdout + json.dumps(rows)
