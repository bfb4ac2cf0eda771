"""The web app's handlers in process, over the scripted LLM and hashed embedder: access, shared models, a turn."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ingest.collection import Collection
from rag.config import load_settings
from rag.errors import KuraError
from tests.conftest import write_config
from tests.fakes import HashEmbedder, ScriptedLLM
from ui.app import KuraApp

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
