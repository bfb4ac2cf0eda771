"""``kura ask``, ``kura chat``, ``kura eval`` and ``kura collections`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from rag.config import Settings, load_settings
from rag.devices import device_chain
from tests.conftest import KURA, SAMPLE, run_kura, write_config
from tests.helpers import first_usable

pytestmark = pytest.mark.slow
LOADING_EMBEDDER = "loading the embedding model..."


@pytest.fixture(scope="module")
def sample_config(sample_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    config = write_config(folder, vectorstore={"collection": "sample"})
    os.symlink(sample_settings.models_dir, folder / "models")
    os.symlink(sample_settings.store_dir, folder / "store")
    return config


def test_ask_json(sample_config: Path) -> None:
    result = run_kura("ask", "Which password manager does the company use?", "--json", "--config", str(sample_config))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    expected = {"question", "answer", "reasoning", "sources", "citation_warnings", "timings", "model", "device"}
    assert expected <= set(answer)
    assert answer["sources"][0]["path"] == "it-handbook.md"
    assert {"n", "path", "page", "heading", "text", "score"} <= set(answer["sources"][0])
    assert {"retrieve_ms", "rerank_ms", "ttft_ms", "decode_tokens_per_s", "total_ms"} == set(answer["timings"])
    settings = load_settings(sample_config)
    assert answer["device"] == first_usable(device_chain(settings.llm.device, settings.llm.fallback))


def test_ask_streams_to_the_terminal_and_abstains(sample_config: Path) -> None:
    result = run_kura("ask", "What was Weidenholm Software's total revenue in 2024?", "--config", str(sample_config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("I couldn't find this in your documents.")


def test_chat_follow_up(sample_config: Path) -> None:
    questions = "Which password manager does the company use?\nWhere is it self-hosted?\n\n"
    result = subprocess.run(
        [KURA, "chat", "--config", str(sample_config)], input=questions, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("it-handbook.md") >= 2, result.stdout
    assert "I couldn't find this" not in result.stdout


def test_chat_goes_on_after_a_real_ctrl_c(sample_config: Path) -> None:
    """A real Ctrl-C (SIGINT) once the first answer starts printing: whether it lands while the model decodes
    (the usual case) or just after, the chat goes on, answers the next question and ends on 'exit'. That the
    model's stream is closed is tested in test_cli.py."""
    chat = subprocess.Popen(
        [KURA, "chat", "--config", str(sample_config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KURA_LLM__ANSWER_MODE": "generate", "KURA_LLM__MAX_NEW_TOKENS": "1024"},
        # Ctrl-C as in a terminal: a suite started in the background (`make test &`) passes SIGINT on ignored,
        # and Python then never turns it into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert chat.stdin is not None and chat.stdout is not None
    chat.stdin.write("Which password manager does the company use, and how is it set up?\n")
    chat.stdin.flush()
    assert chat.stdout.readline().startswith("Ask about your documents.")
    assert chat.stdout.read(3).startswith("> ")  # the prompt, then the answer's first character
    chat.send_signal(signal.SIGINT)
    chat.stdin.write("Which password manager does the company use?\nexit\n")
    chat.stdin.flush()
    out, err = chat.communicate(timeout=600)
    assert chat.returncode == 0, err
    assert "(stopped; this answer is left out of the conversation)" in out or "(type 'exit'" in out
    assert "it-handbook.md" in out.split("(stopped", 1)[-1].split("(type 'exit'", 1)[-1]  # the next answer


def test_eval_meets_the_targets(sample_config: Path, tmp_path: Path) -> None:
    output = tmp_path / "results.jsonl"
    result = run_kura("eval", str(SAMPLE / "questions.jsonl"), "--output", str(output), "--config", str(sample_config))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["questions"] == 34
    assert metrics["hit@5"] >= 0.9
    assert metrics["abstention_on_unanswerable"] >= 0.8
    assert metrics["false_abstention"] <= 0.1
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 34 and {"id", "answer", "reasoning", "sources"} <= set(rows[0])
    assert all(not Path(s["path"]).is_absolute() for row in rows for s in row["sources"])


def test_bad_question_file_is_one_line(sample_config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "no id"}\n')
    result = run_kura("eval", str(bad), "--config", str(sample_config))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:1: not a question line")


def test_collections_list_and_remove(sample_config: Path, settings: Settings, tmp_path: Path) -> None:
    listed = json.loads(run_kura("collections", "--json", "--config", str(sample_config)).stdout)
    sample = next(row for row in listed if row["name"] == "sample")
    assert sample["files"] == 11 and sample["chunks"] > 20
    config = write_config(tmp_path)
    os.symlink(settings.models_dir, tmp_path / "models")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSome text to remove later.")
    first = run_kura("ingest", str(docs), "--collection", "scratch", "--config", str(config))
    assert first.returncode == 0 and LOADING_EMBEDDER in first.stderr
    for again in (["--dry-run"], []):  # nothing changed: decided by the manifest, the encoder is never loaded
        unchanged = run_kura("ingest", str(docs), *again, "--collection", "scratch", "--config", str(config))
        assert unchanged.returncode == 0 and LOADING_EMBEDDER not in unchanged.stderr, unchanged.stderr
        assert "unavailable (" not in unchanged.stderr  # device fallback lines only in doctor and with -v
    assert run_kura("collections", "--rm", "scratch", "--yes", "--config", str(config)).returncode == 0
    names = [row["name"] for row in json.loads(run_kura("collections", "--json", "--config", str(config)).stdout)]
    assert "scratch" not in names
    missing = run_kura("collections", "--rm", "scratch", "--yes", "--config", str(config))
    assert missing.returncode == 1 and "no collection named 'scratch'" in missing.stderr
    no_collection = run_kura("ask", "anything?", "--collection", "nope", "--config", str(config))
    assert no_collection.returncode == 1 and "no collection named 'nope' yet" in no_collection.stderr
