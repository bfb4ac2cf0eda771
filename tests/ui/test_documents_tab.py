"""The Documents tab's delete in process: it asks first (file, chunks, collection), and a user's mistake is a
line in the tab rather than a raised ``gr.Error`` (issue 18)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ingest.collection import Collection
from rag.config import load_settings
from tests.conftest import write_config
from tests.fakes import HashEmbedder, ScriptedLLM
from ui.app import KuraApp
from ui.documents import list_documents

TEXT = "# Backups\n\nLaptop backups are kept for 35 days on the backup server in the basement."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> KuraApp:
    folder = tmp_path_factory.mktemp("docs-tab")
    (folder / "docs").mkdir()
    (folder / "docs" / "backups.md").write_text(TEXT, encoding="utf-8")
    rules = {"collection_access": {"secret": ["alice"], "*": ["alice", "bob"]}, "collection_editors": {"*": ["alice"]}}
    settings = load_settings(write_config(folder, ui=rules))
    for name in ("kura", "secret"):
        Collection(settings, name).ingest([folder / "docs"], HashEmbedder())
    return KuraApp(settings, HashEmbedder(), ScriptedLLM(replies=[]), None, login=True)


def request(user: str) -> Any:
    return SimpleNamespace(username=user)


def test_delete_asks_with_the_file_its_chunks_and_the_collection_and_deletes_nothing_yet(app: KuraApp) -> None:
    [row] = list_documents(app.settings, "kura")
    notice, confirm, question, pending = app.confirm_delete("kura", row["id"], request("alice"))
    assert notice == "" and confirm.visible is True and pending == row["id"]
    assert question == '<div class="kura-confirm-text">Delete <b>backups.md</b> (1 chunk) from <b>kura</b>?</div>'
    assert list_documents(app.settings, "kura") == [row], "asking deletes nothing"


@pytest.mark.parametrize(
    ("collection", "doc", "user", "error"),
    [
        ("kura", None, "alice", "choose a document to delete first"),
        (None, "any", "alice", "choose a collection: 3-63 letters"),
        ("kura", "gone", "alice", "that document is no longer in &#x27;kura&#x27;; click Refresh"),
        ("secret", "any", "bob", "no collection named &#x27;secret&#x27; that you may use"),
        ("kura", "backups", "bob", "you did not upload backups.md: deleting it needs an editor of &#x27;kura&#x27;"),
    ],
)
def test_mistakes_are_one_line_in_the_tab_not_a_raised_error(
    app: KuraApp, collection: str | None, doc: str | None, user: str, error: str
) -> None:
    if doc == "backups":
        doc = list_documents(app.settings, "kura")[0]["id"]
    notice, confirm, question, pending = app.confirm_delete(collection, doc, request(user))  # type: ignore[arg-type]
    assert notice.startswith(f'<div class="kura-a kura-error">{error}') and notice.count("<div") == 1
    assert confirm.visible is False and question == "" and pending is None
