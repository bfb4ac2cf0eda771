"""The web app's handlers in process, over the scripted LLM and hashed embedder: access, shared models, a turn."""

from __future__ import annotations

import re
import stat
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest

from ingest.collection import Collection
from rag.config import load_settings
from rag.errors import KuraError
from rag.models.llm import Stop
from tests.conftest import write_config
from tests.fakes import HashEmbedder, ScriptedLLM
from ui import saved_chat
from ui.app import KuraApp
from ui.documents import list_documents

TEXT = "# Backups\n\nLaptop backups are kept for 35 days on the backup server in the basement."
ACCESS = {"secret": ["alice"], "*": ["alice", "bob"]}
QUESTION = "For how many days are laptop backups kept on the backup server?"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> KuraApp:
    folder = tmp_path_factory.mktemp("app")
    docs = folder / "docs"
    docs.mkdir()
    (docs / "backups.md").write_text(TEXT, encoding="utf-8")
    # auto: the scripted model writes the answers (Stop, history and export are about its text)
    ui = {"collection_access": ACCESS, "upload_quota_mb": 1}
    settings = load_settings(write_config(folder, ui=ui, llm={"answer_mode": "auto"}))
    embedder = HashEmbedder()
    for name in ("kura", "secret"):
        Collection(settings, name).ingest([docs], embedder)
    llm = ScriptedLLM(replies=["Laptop backups are kept for 35 days on the backup server [1]."])
    return KuraApp(settings, embedder, llm, None, login=True)


def request(user: str) -> Any:
    return SimpleNamespace(username=user)


def test_each_user_sees_the_collections_they_may_use(app: KuraApp) -> None:
    assert app.visible(request("alice")) == ["kura", "secret"]
    assert app.visible(request("bob")) == ["kura"]
    with pytest.raises(KuraError, match="no collection named 'secret' that you may use"):
        app.require(request("bob"), "secret")
    with pytest.raises(KuraError, match="choose a collection: 3-63 letters"):
        app.require(request("alice"), "a/b")
    assert app.require(request("alice"), " secret ") == "secret"


def test_the_header_names_who_is_signed_in_and_links_the_logout(app: KuraApp) -> None:
    assert "signed in as <b>alice</b>" in app.account(request("alice"))
    assert 'href="/logout"' in app.account(request("bob"))
    assert "&lt;b&gt;" in app.account(request("<b>")), "a user name is shown as text"


def test_assistants_share_the_processes_models(app: KuraApp) -> None:
    first, second = app.assistant("kura"), app.assistant("secret")
    assert app.assistant("kura") is first and second is not first
    assert first.llm is second.llm is app.llm and first.embedder is second.embedder is app.embedder
    assert "embedder hash-embedder on CPU" in app.status() and "LLM scripted-llm on CPU" in app.status()


def test_a_turn_streams_into_the_conversation(app: KuraApp) -> None:
    updates = list(app.ask(QUESTION, "kura", [], 3, 0.0, 64, False, None, request("bob")))
    turn = updates[-1][1][-1]
    assert turn["error"] is None and "35 days" in turn["final"]["answer"] and turn["answer"]
    assert turn["final"]["cited"] == [1] and turn["final"]["sources"][0]["path"] == "backups.md"


def test_an_unknown_collection_is_refused_before_any_model_runs(app: KuraApp) -> None:
    with pytest.raises(KuraError, match="no collection named 'other'"):
        list(app.ask(QUESTION, "other", [], 3, 0.0, 64, False, None, request("alice")))


def cached(cache: Path, name: str, text: str) -> str:
    """A file as Gradio's /upload leaves it: in a folder of its own in the upload cache."""
    path = cache / uuid.uuid4().hex / name
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_uploads_record_the_uploader_stay_within_quota_and_leave_no_cached_copy(
    app: KuraApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    quiet: Any = lambda *args, **kwargs: None  # noqa: E731 - the progress tracker Gradio would pass
    app.upload([cached(cache, "notes.md", "# Notes\n\nThe canteen opens at eight.")], "team", request("alice"), quiet)
    rows = list_documents(app.settings, "team")
    assert [(r["file"], r["origin"], r["uploader"]) for r in rows] == [("notes.md", "upload", "alice")]
    staged = sorted((app.uploads_root / "team").iterdir())
    refusals = {
        "notes.md was uploaded by someone else: replacing it needs an editor of 'team'": ("team", "notes.md"),
        "no collection named 'secret' that you may use": ("secret", "notes.md"),
    }
    for message, (collection, name) in refusals.items():
        with pytest.raises(KuraError, match=re.escape(message)):
            app.upload([cached(cache, name, "Bob's notes.")], collection, request("bob"), quiet)
    assert sorted((app.uploads_root / "team").iterdir()) == staged, "a refused upload leaves no staged copy"
    too_big = cached(cache, "big.txt", "words " * 200_000)  # 1.2 MB against a quota of 1 MB
    with pytest.raises(KuraError, match=r"over your quota of 1 MB \(ui\.upload_quota_mb\)"):
        app.upload([too_big], "team", request("alice"), quiet)
    assert list(cache.rglob("*")) == [], "Gradio's cached copies go whatever happened"
    message, *_ = app.delete("team", rows[0]["id"], request("bob"))
    assert "you did not upload notes.md: deleting it needs an editor of &#x27;team&#x27;" in message
    message, *_ = app.delete("team", rows[0]["id"], request("alice"))
    assert "deleted notes.md from team" in message


def test_cancel_stops_a_running_upload_and_keeps_nothing_half_written(
    app: KuraApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    alice = SimpleNamespace(username="alice", session_hash="window-1")
    assert "no upload is running in this window" in app.cancel_upload(alice)
    clicks: list[str] = []

    def cancel_after_the_first_file(*args: Any, **kwargs: Any) -> None:
        if not clicks:  # the Cancel button, pressed while the upload runs
            clicks.append(app.cancel_upload(alice))

    files = [
        cached(cache, f"memo-{n}.md", f"# Memo {n}\n\nThe bike shed is painted green, says memo {n}.") for n in range(3)
    ]
    summary, *_ = app.upload(files, "drafts", alice, cancel_after_the_first_file)
    assert "cancelling the upload" in clicks[0]
    assert "cancelled: 0 of 3 files added; upload the rest again" in summary
    assert list_documents(app.settings, "drafts") == []
    staged = app.uploads_root / "drafts"
    assert not staged.exists() or not [p for p in staged.rglob("*") if p.is_file()], "unwritten files are dropped"
    assert "no upload is running in this window" in app.cancel_upload(alice)


# --- Stop, the chat kept across a reload, export (issue 18) -------------------------------------------------
def test_stop_keeps_what_was_written_and_logs_the_tokens_decoded_after(
    app: KuraApp, caplog: pytest.LogCaptureFixture
) -> None:
    running, ask_button, stop_button = app.start_answer(None)
    assert isinstance(running, Stop) and stop_button.visible and not ask_button.visible
    with pytest.raises(gr.Error):  # Enter in the question box while it streams: no second answer
        app.start_answer(running)
    answers = app.ask(QUESTION, "kura", [], 3, 0.0, 64, False, running, request("bob"))
    next(answers)  # the question is on the page
    app.stop_answer(running)  # the click, before the model's first token
    with caplog.at_level("INFO", logger="kura.ui"):
        *_, (html, turns, _) = answers
    final = turns[-1]["final"]
    assert final["answer_source"] == "stopped" and "Stopped: " in html and "stopped · total" in html
    assert "answer stopped: the model decoded 1 token after the click" in caplog.text
    assert running.decoded_tokens == 1
    cleared, ask_button, stop_button, saved, export = app.answer_done(turns, "kura", request("bob"))
    assert cleared is None and ask_button.visible and not stop_button.visible
    assert saved["turns"] == turns and export.interactive


def test_a_stopped_answer_is_not_history_for_the_next_question(app: KuraApp) -> None:
    stopped = {"question": "Q?", "final": {"answer": "half", "answer_source": "stopped", "sources": []}}
    assert app.llm.calls is not None
    before = len(app.llm.calls)
    list(app.ask(QUESTION, "kura", [stopped], 3, 0.0, 64, False, None, request("bob")))
    messages = app.llm.calls[before][0]
    assert not any(m["content"] == "half" for m in messages)


def test_a_reload_restores_the_chat_for_the_same_user_in_a_collection_they_may_open(app: KuraApp) -> None:
    *_, (_, turns, _) = app.ask(QUESTION, "secret", [], 3, 0.0, 64, False, None, request("alice"))
    saved, _ = app.chat_saved(turns, "secret", request("alice"))
    assert saved["user"] == "alice" and "retrieved_texts" not in saved["turns"][0]["final"]
    assert app.on_load(saved, request("alice")).value == "secret"
    chat, restored, *_ = app.on_collection("secret", saved, request("alice"))
    assert restored == turns and "35 days" in chat
    # another user of this browser, or one who may not open the collection, starts afresh
    assert app.on_load(saved, request("bob")).value == "kura"
    assert app.on_collection("kura", {**saved, "user": "bob", "collection": "kura"}, request("alice"))[1] == []
    with pytest.raises(KuraError):
        app.on_collection("secret", {**saved, "user": "bob"}, request("bob"))
    # a saved value the page cannot render is dropped, not shown
    broken = {**saved, "turns": [{"question": "Q?", "final": {"answer": "A", "sources": [{"n": "x"}]}}]}
    assert app.on_collection("secret", broken, request("alice"))[1] == []


def test_saved_chats_keep_the_last_turns_and_the_secret_is_private(app: KuraApp) -> None:
    turns = [{"question": f"q{i}", "final": None, "error": "e"} for i in range(60)]
    kept = saved_chat.snapshot(turns, "kura", None)["turns"]
    assert len(kept) == saved_chat.MAX_TURNS and kept[0]["question"] == "q10"
    key = app.uploads_root / saved_chat.SECRET_FILE
    first = saved_chat.secret(app.uploads_root)
    assert saved_chat.secret(app.uploads_root) == first and len(first) >= 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_export_is_markdown_with_the_citations_and_their_sources(app: KuraApp) -> None:
    *_, (_, turns, _) = app.ask(QUESTION, "kura", [], 3, 0.0, 64, False, None, request("bob"))
    _, button = app.chat_saved(turns, "kura", request("bob"))
    path = Path(button.constructor_args["value"])  # the file Gradio copies into its cache as the handler returns
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Kura chat: kura") and f"## 1. {QUESTION}" in text
    assert "35 days on the backup server [1]." in text and "- [1] backups.md (Backups)" in text
    assert path.name == "kura-chat-kura.md"


def test_evidence_of_an_abstained_answer_opens_its_source(app: KuraApp) -> None:
    source = {"n": 1, "path": "backups.md", "page": None, "heading": "Backups", "text": TEXT, "score": 0.5}
    turn = {"question": "Q?", "final": {"answer": "no", "sources": [], "evidence_sources": [source]}}
    panel = app.show_source([turn], "kura", SimpleNamespace(_data={"turn": 0, "n": 1}), request("alice"))
    assert 'data-n="1"' in panel and "backups.md" in panel


def test_the_pages_questions_uploads_and_deletes_are_audited(app: KuraApp, tmp_path: Path) -> None:
    from rag.audit import read_events

    list(app.ask(QUESTION, "kura", [], 3, 0.0, 64, False, None, request("bob")))
    docs = tmp_path / "audit-docs"
    docs.mkdir()
    quiet: Any = lambda *args, **kwargs: None  # noqa: E731
    (docs / "plan.md").write_text("# Plan\n\nThe plan is due on Friday.", encoding="utf-8")
    app.upload([str(docs / "plan.md")], "audited", request("alice"), quiet)
    [row] = list_documents(app.settings, "audited")
    app.delete("audited", row["id"], request("alice"))
    question, upload, delete = list(read_events(app.settings))[-3:]
    assert (question["event"], question["user"], question["via"], question["collection"]) == (
        "question",
        "bob",
        "web",
        "kura",
    )
    assert question["answer_source"] == "generated" and question["abstained"] is False
    assert len(question["chunks"]) == 1 and question["latency_ms"] > 0
    assert QUESTION not in str(question)
    assert (upload["event"], upload["user"], upload["collection"], upload["files"]) == (
        "upload",
        "alice",
        "audited",
        ["plan.md"],
    )
    assert (delete["event"], delete["user"], delete["collection"], delete["file"]) == (
        "delete",
        "alice",
        "audited",
        "plan.md",
    )
