"""The web app's ``ingest.watch``: folders synced in the background through the uploads' writer, and each
folder's state (indexed, pending, failed with the reason, last change) in the Documents tab, in process with
the hashed embedder; the page itself is looked at in Chromium by hand (README has the screenshot's text)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rag.config import load_settings
from tests.conftest import write_config
from tests.fakes import HashEmbedder, ScriptedLLM
from tests.helpers import wait_for
from ui.app import KuraApp

LOCAL = SimpleNamespace(username=None)  # this machine's one user, no login


@pytest.fixture
def app(tmp_path: Path) -> Iterator[KuraApp]:
    (tmp_path / "handbook").mkdir()
    (tmp_path / "handbook" / "parking.md").write_text("# Parking\n\nVisitors park on level 2.\n", encoding="utf-8")
    (tmp_path / "handbook" / "setup.exe").write_bytes(b"MZ")
    config = write_config(tmp_path, ingest={"watch": ["handbook", "missing"], "watch_settle_s": 0.2})
    kura = KuraApp(load_settings(config), HashEmbedder(), ScriptedLLM(replies=[]), None, login=False)
    kura.watched.start()
    yield kura
    kura.watched.stop()


def test_a_watched_folder_is_synced_and_its_state_shown(app: KuraApp, tmp_path: Path) -> None:
    panel = wait_for(lambda: "in sync since" in (p := app.watch_status("kura", None, LOCAL)[0]) and p, "first pass")
    assert "<td>handbook</td><td class='num'>1</td><td class='num'>0</td>" in panel
    assert "setup.exe: unsupported type .exe" in panel
    assert "no such file or folder" in panel and "missing" in panel  # said, tried again, the server goes on
    (tmp_path / "handbook" / "canteen.md").write_text("# Canteen\n\nLunch is at noon.\n", encoding="utf-8")
    (tmp_path / "handbook" / "setup.exe").unlink()
    version = app.watched.version

    def changed() -> Any:
        panel, table, seen = app.watch_status("kura", version, LOCAL)
        return "added canteen.md (1 chunk)" in panel and "<td class='num'>2</td>" in panel and (panel, table, seen)

    panel, table, seen = wait_for(changed, "the new file in the panel")
    assert "canteen.md" in table and seen != version  # the file list comes along once it changed
    assert "setup.exe" not in panel
    assert app.watch_status("other", None, LOCAL)[0] == ""  # only the collection the folders sync into
