"""The walk over real folders: order, relative names, skip reasons, and symlinks that loop or lead away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.walk import Found, discover, discover_changed
from tests.conftest import REPO

LIMIT = 1024 * 1024


def make(path: Path, data: bytes = b"some text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def walk(*roots: Path, limit: int = LIMIT) -> dict[str, str | None]:
    """rel -> skip, in the order the walk reports them."""
    return {found.rel: found.skip for found in discover(list(roots), limit)}


def test_tree_is_walked_depth_first_in_name_order_with_posix_relative_names(tmp_path: Path) -> None:
    for rel in ["b.txt", "a/z.md", "a/b/c.pdf", "a.txt", "c/d.html"]:
        make(tmp_path / rel)
    found = list(discover([tmp_path], LIMIT))
    assert [f.rel for f in found] == ["a/b/c.pdf", "a/z.md", "a.txt", "b.txt", "c/d.html"]
    assert found[0] == Found(tmp_path / "a" / "b" / "c.pdf", tmp_path, "a/b/c.pdf", None)
    assert all(f.path.is_absolute() and f.root == tmp_path for f in found)


def test_skip_reasons_for_type_size_and_emptiness(tmp_path: Path) -> None:
    make(tmp_path / "photo.HEIC")
    make(tmp_path / "LICENSE")
    make(tmp_path / "empty.txt", b"")
    make(tmp_path / "big.pdf", b"x" * (LIMIT + LIMIT // 2))
    make(tmp_path / "ok.CSV")
    assert walk(tmp_path) == {
        "LICENSE": None,  # read by its content (ingest.loaders.sniff_kind)
        "big.pdf": "too large (1.5 MB > limit 1 MB; raise ingest.max_file_mb)",
        "empty.txt": "empty file",
        "ok.CSV": None,
        "photo.HEIC": "unsupported type .heic",
    }


def test_hidden_files_and_folders_are_not_reported(tmp_path: Path) -> None:
    make(tmp_path / ".git" / "config.txt")
    make(tmp_path / ".DS_Store")
    make(tmp_path / "docs" / ".hidden.md")
    make(tmp_path / "docs" / "visible.md")
    assert walk(tmp_path) == {"docs/visible.md": None}


def test_unusual_names(tmp_path: Path) -> None:
    names = ["with space.txt", "new\nline.txt", "emoji 📄🚀.md", "-leading-dash.txt", "Ünïcödé/日本語.md"]
    for name in names:
        make(tmp_path / name)
    found = list(discover([tmp_path], LIMIT))
    assert sorted(f.rel for f in found) == sorted(names)
    assert all(f.skip is None and f.path.read_bytes() == b"some text" for f in found)


def test_thirty_nested_folders(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*[f"level{n:02d}" for n in range(30)])
    make(deep / "bottom.txt")
    found = list(discover([tmp_path], LIMIT))
    assert [f.path for f in found] == [deep / "bottom.txt"]
    assert found[0].rel.count("/") == 30


def test_symlink_loop_does_not_hang_and_reports_each_file_once(tmp_path: Path) -> None:
    make(tmp_path / "docs" / "a.txt")
    (tmp_path / "docs" / "back-to-root").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "docs" / "self").symlink_to(tmp_path / "docs", target_is_directory=True)
    (tmp_path / "ping.txt").symlink_to(tmp_path / "pong.txt")
    (tmp_path / "pong.txt").symlink_to(tmp_path / "ping.txt")
    assert walk(tmp_path) == {"docs/a.txt": None, "ping.txt": "broken symlink", "pong.txt": "broken symlink"}


def test_symlinks_that_leave_the_root_are_reported_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    make(outside / "secret.txt")
    make(outside / "sub" / "deep.txt")
    make(root / "inside.txt")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "escape-dir").symlink_to(outside / "sub", target_is_directory=True)
    assert walk(root) == {
        "escape-dir": "symlink leaves the ingested folder",
        "escape.txt": "symlink leaves the ingested folder",
        "inside.txt": None,
    }


def test_symlinks_inside_the_root_are_followed_and_keep_their_own_path(tmp_path: Path) -> None:
    make(tmp_path / "real" / "doc.md")
    (tmp_path / "alias.md").symlink_to(tmp_path / "real" / "doc.md")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    found = list(discover([tmp_path], LIMIT))
    assert [(f.rel, f.skip) for f in found] == [
        ("alias.md", None),
        ("gone.txt", "broken symlink"),
        ("real/doc.md", None),
    ]
    assert found[0].path == tmp_path / "alias.md"


def test_root_reached_through_a_symlink_is_not_resolved(tmp_path: Path) -> None:
    make(tmp_path / "real" / "doc.txt")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    found = list(discover([tmp_path / "link"], LIMIT))
    assert found == [Found(tmp_path / "link" / "doc.txt", tmp_path / "link", "doc.txt", None)]


def test_a_file_root_is_its_own_root(tmp_path: Path) -> None:
    report = make(tmp_path / "folder" / "report.pdf")
    assert list(discover([report], LIMIT)) == [Found(report, report, "report.pdf", None)]
    assert walk(make(tmp_path / "notes.pages")) == {"notes.pages": "unsupported type .pages"}


def test_relative_roots_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path / "docs" / "a.txt")
    monkeypatch.chdir(tmp_path)
    [found] = discover([Path("docs")], LIMIT)
    assert found.path == tmp_path / "docs" / "a.txt"
    assert found.root == tmp_path / "docs"


def test_missing_root_fails_before_anything_is_reported(tmp_path: Path) -> None:
    make(tmp_path / "a.txt")
    walker = discover([tmp_path, tmp_path / "nope"], LIMIT)
    with pytest.raises(FileNotFoundError, match="nope"):
        next(walker)


def test_fifo_is_reported_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    assert walk(tmp_path) == {"pipe.txt": "not a regular file"}


UNREADABLE_CHECK = """
import json, sys
from pathlib import Path
from ingest.walk import discover
root = Path(sys.argv[1])
print(json.dumps({f.rel: f.skip for f in discover([root], 10**6)}))
"""


def test_unreadable_file_and_folder(tmp_path: Path) -> None:
    """Root reads everything, so as root the walk runs with its capabilities dropped (it stays root, so
    it can still run the venv's Python under a private home folder, but file modes now apply to it)."""
    make(tmp_path / "locked.txt").chmod(0)
    make(tmp_path / "closed" / "x.txt")
    (tmp_path / "closed").chmod(0)
    command = [sys.executable, "-c", UNREADABLE_CHECK, str(tmp_path)]
    if os.geteuid() == 0:
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {
            "closed": "cannot read folder (Permission denied)",
            "locked.txt": "cannot read file (Permission denied)",
        }
    finally:
        (tmp_path / "closed").chmod(0o755)


def test_temporary_files_are_passed_over_silently_and_a_watcher_sees_what_the_walk_sees(tmp_path: Path) -> None:
    for name in ("~$report.docx", "notes.md~", "notes.md.swp", "x.swo", "dl.pdf.part", "a.tmp", "#draft.md#"):
        make(tmp_path / "docs" / name)
    make(tmp_path / "docs" / ".#notes.md")
    make(tmp_path / "docs" / "notes.md")
    make(tmp_path / "docs" / "sub" / "deep.md")
    assert walk(tmp_path / "docs") == {"notes.md": None, "sub/deep.md": None}
    changed = [tmp_path / "docs" / n for n in ("~$report.docx", "notes.md", "sub", "gone.md", "sub/deep.md")]
    found = list(discover_changed(tmp_path / "docs", changed, LIMIT))
    assert [(f.rel, f.skip) for f in found] == [("notes.md", None), ("sub/deep.md", None)]
