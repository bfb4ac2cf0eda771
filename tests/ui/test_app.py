"""The web app's handlers in process, over the scripted LLM and hashed embedder: access, shared models, a turn."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ingest.collection import Collection
from rag.config import load_settings
from rag.errors import KuraError
from tests.conftest import write_config
from tests.fakes import HashEmbedder, ScriptedLLM
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
    settings = load_settings(write_config(folder, ui={"collection_access": ACCESS, "upload_quota_mb": 1}))
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
    updates = list(app.ask(QUESTION, "kura", [], 3, 0.0, 64, False, request("bob")))
    turn = updates[-1][1][-1]
    assert turn["error"] is None and "35 days" in turn["final"]["answer"] and turn["answer"]
    assert turn["final"]["cited"] == [1] and turn["final"]["sources"][0]["path"] == "backups.md"


def test_an_unknown_collection_is_refused_before_any_model_runs(app: KuraApp) -> None:
    with pytest.raises(KuraError, match="no collection named 'other'"):
        list(app.ask(QUESTION, "other", [], 3, 0.0, 64, False, request("alice")))


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
