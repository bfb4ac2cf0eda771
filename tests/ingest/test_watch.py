"""The folder watcher on a real tmp folder with real watchfiles: churn ends in the store a clean run gives.

The embedder is the hashed fake (the watcher's logic is the point here); tests/ingest/test_watch_kill9.py
kills a real ``kura ingest --watch``. Conditions are polled with a generous timeout, never slept for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.collection import Collection
from ingest.watch import Change, FolderSync, _Settling
from rag.config import load_settings
from tests.conftest import write_config
from tests.fakes import HashEmbedder
from tests.helpers import snapshot, wait_for

TIMEOUT_S = 120.0


def settled_store(config: Path) -> Any:
    """The store's snapshot, or None while a file is half-written (a pending mark)."""
    try:
        return snapshot(config)
    except AssertionError:
        return None


def note(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {path.stem}\n\n{text}\n", encoding="utf-8")


def clean_run(folder: Path, tmp: Path) -> Any:
    """What a clean ``kura ingest`` of ``folder`` as it is now stores."""
    tmp.mkdir()
    config = write_config(tmp)
    Collection(load_settings(config)).ingest([folder], HashEmbedder())
    return snapshot(config)


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Path, list[Change], FolderSync]]:
    docs = tmp_path / "docs"
    for i in range(4):
        note(docs / f"n{i}.md", f"The badge rule {i} names room {100 + i}.")
    note(docs / "team" / "t.md", "The team folder holds the rota.")
    (tmp_path / "watch").mkdir()
    config = write_config(tmp_path / "watch", ingest={"watch_settle_s": 0.3})
    settings = load_settings(config)
    changes: list[Change] = []
    folders = FolderSync(Collection(settings), [docs], HashEmbedder(), settings.ingest.watch_settle_s, changes.append)
    folders.first_pass()
    thread = threading.Thread(target=folders.watch)
    thread.start()
    yield docs, config, changes, folders
    folders.stop.set()
    thread.join(timeout=TIMEOUT_S)
    assert not thread.is_alive()


def test_churn_ends_in_the_clean_run_store(
    watched: tuple[Path, Path, list[Change], FolderSync], tmp_path: Path
) -> None:
    docs, config, changes, folders = watched
    outside = tmp_path / "outside"
    note(outside / "incoming" / "in.md", "A folder moved in holds the parking plan.")
    note(docs / "new.md", "A new note about the canteen.")  # created
    note(docs / "n0.md", "The badge rule 0 now names room 900.")  # modified
    (docs / "n1.md").unlink()  # deleted
    for name in ("a", "b", "c"):  # a rename storm: n2 -> a -> b -> c
        os.replace(docs / ("n2.md" if name == "a" else f"{chr(ord(name) - 1)}.md"), docs / f"{name}.md")
    os.replace(docs / "team", outside / "team")  # a folder moved away
    os.replace(outside / "incoming", docs / "incoming")  # and one moved in
    # An editor's save: a lock and a swap file beside it, the new text written to a temporary file and
    # renamed over the old one; Office's lock file and a download in progress come and go.
    for temporary in (".#n3.md", "n3.md.swp", "~$report.docx", "big.pdf.part"):
        (docs / temporary).write_text("temporary")
    (docs / "n3.md.tmp").write_text("# n3\n\nThe badge rule 3 was saved by an editor.\n")
    os.replace(docs / "n3.md.tmp", docs / "n3.md")
    for temporary in (".#n3.md", "n3.md.swp", "~$report.docx", "big.pdf.part"):
        (docs / temporary).unlink()
    (docs / "program.exe").write_bytes(b"MZ")  # a file that cannot be read is reported, not stored

    expected = clean_run(docs, tmp_path / "clean")
    wait_for(lambda: settled_store(config) == expected, f"the watched store to equal a clean run's ({changes})")

    seen = {(c.status, c.rel) for c in changes}
    assert {("added", "new.md"), ("updated", "n0.md"), ("removed", "n1.md"), ("added", "c.md")} <= seen
    assert {("removed", "n2.md"), ("removed", "team/t.md"), ("added", "incoming/in.md")} <= seen
    assert ("updated", "n3.md") in seen and ("skipped", "program.exe") in seen
    assert not any("swp" in c.rel or "~$" in c.rel or ".part" in c.rel or c.rel.startswith(".") for c in changes)
    assert {rel for status, rel in seen if status == "added"} == {"new.md", "c.md", "incoming/in.md"}
    wait_for(lambda: folders.snapshot()[0].pending == 0, "nothing pending")
    state = folders.snapshot()[0]
    assert state.indexed == len(expected[1]) and state.error is None
    assert [reason for _, reason in state.failed.values()] == ["unsupported type .exe"]
    assert state.last_change in changes


def test_a_file_being_written_waits_for_its_size_and_mtime_to_hold(tmp_path: Path) -> None:
    path = tmp_path / "growing.md"
    path.write_text("first half")
    settling = _Settling(settle_s=1.0)
    settling.touch([path], now=0.0)
    assert settling.ready(now=0.5) == []
    with path.open("a") as handle:
        handle.write(", second half")
    assert settling.ready(now=1.5) == []  # it moved: its clock restarts
    assert settling.ready(now=2.0) == []
    assert settling.ready(now=2.6) == [path]
    settling.touch([tmp_path / "gone.md"], now=3.0)  # a deletion settles the same way: absent for 1 s
    assert settling.ready(now=4.1) == [tmp_path / "gone.md"] and settling.paths() == []
