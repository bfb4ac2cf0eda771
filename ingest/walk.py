"""Find the files under the folders a user ingests, and say up front why any of them will be left out.

Order is deterministic (names sorted at each level, depth first) so two runs over the same tree report
the same thing. The walk keeps its own stack, so folder depth is not limited by Python's recursion limit.

Symlinks are followed only while their target stays inside the (resolved) root: a link that leaves it is
reported with a skip reason, for folders as well as files, so the user sees why a linked folder was not
read; a link to a folder already walked (a loop, or a second way into the same folder) is passed over
silently, since its files are reported under the first path. Hidden names (".git", ".DS_Store") and
the temporary files editors, Office and downloads leave beside a document ("~$report.docx", "notes.md~",
"x.swp", "x.tmp", "#x#", "x.part") are never reported at all: they come and go while a folder is watched,
and a clean run and a watcher must agree on them.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.documents import unsupported

MIB = 1024 * 1024
LEAVES_ROOT = "symlink leaves the ingested folder"
BROKEN_SYMLINK = "broken symlink"
_TEMPORARY = re.compile(r"^~\$|~$|^#.*#$|\.(swp|swo|swx|tmp|part|crdownload)$", re.IGNORECASE)


def passed_over(name: str) -> bool:
    """A hidden name or an editor's, Office's or a download's temporary file: never read, never reported."""
    return name.startswith(".") or bool(_TEMPORARY.search(name))


@dataclass(frozen=True)
class Found:
    """One file the walk reached; ``skip`` set means it is reported, not read."""

    path: Path  # absolute path of the file as reached (not resolved through symlinks)
    root: Path  # the ingested root it was found under (absolute)
    rel: str  # path relative to root, POSIX separators
    skip: str | None  # one-line reason it will not be ingested, or None


def discover(roots: list[Path], max_file_bytes: int) -> Iterator[Found]:
    """Every non-hidden file under ``roots``; a root may be a single file (then ``root`` is that file).

    All roots are checked before anything is yielded, so a typo in the last one fails before any work.
    """
    absolute = [Path(root).absolute() for root in roots]
    for root in absolute:
        if not root.exists():
            raise FileNotFoundError(f"no such file or folder: {root}")
    for root in absolute:
        if root.is_dir():
            yield from _walk(root, max_file_bytes)
        else:
            yield Found(root, root, root.name, _file_skip(root, max_file_bytes))


def discover_changed(root: Path, changed: Sequence[Path], max_file_bytes: int) -> Iterator[Found]:
    """What ``discover([root])`` yields at or under each of the ``changed`` paths (a watcher's), no more.

    A changed folder is walked whole; a vanished path yields nothing. The caller falls back to a whole walk
    of ``root`` when a path is reached through a symlink (:func:`through_symlink`), whose rules need it.
    """
    root = root.absolute()
    seen: set[Path] = set()
    for found in _changed(root, changed, max_file_bytes):
        if found.path not in seen:  # a new folder and a file in it may both be among the changes
            seen.add(found.path)
            yield found


def _changed(root: Path, changed: Sequence[Path], max_file_bytes: int) -> Iterator[Found]:
    for path in changed:
        rel = path.relative_to(root)
        if any(passed_over(part) for part in rel.parts) or not os.path.lexists(path):
            continue
        if path == root and not root.is_dir():
            yield Found(root, root, root.name, _file_skip(root, max_file_bytes))
            continue
        if os.path.isdir(path):
            yield from _walk(root, max_file_bytes, path)
        else:
            yield Found(path, root, rel.as_posix(), _file_skip(path, max_file_bytes))


def through_symlink(root: Path, path: Path) -> bool:
    """Whether ``path`` or a folder between ``root`` and it is a symlink."""
    rel = path.relative_to(root)
    return any(os.path.islink(root.joinpath(*rel.parts[: i + 1])) for i in range(len(rel.parts)))


def _walk(root: Path, max_file_bytes: int, start: Path | None = None) -> Iterator[Found]:
    """Everything under ``root``, or under its folder ``start`` only (reported relative to ``root``)."""
    real_root = Path(os.path.realpath(root))
    start = start or root
    visited = {Path(os.path.realpath(start))}
    # Each frame: a folder as reached, its path relative to root ("" for root), its remaining entries.
    stack: list[tuple[Path, str, Iterator[os.DirEntry[str]]]] = []

    def enter(folder: Path, rel: str) -> Found | None:
        try:
            with os.scandir(folder) as listing:
                entries = sorted((e for e in listing if not passed_over(e.name)), key=lambda e: e.name)
        except OSError as error:
            return Found(folder, root, rel or ".", f"cannot read folder ({error.strerror or error})")
        stack.append((folder, rel, iter(entries)))
        return None

    below = start.relative_to(root)
    if refused := enter(start, "" if below == Path(".") else below.as_posix()):
        yield refused
    while stack:
        folder, prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        path = folder / entry.name
        rel = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_symlink():
            if not os.path.exists(path):  # also true of a link that points (through others) back at itself
                yield Found(path, root, rel, BROKEN_SYMLINK)
                continue
            if not Path(os.path.realpath(path)).is_relative_to(real_root):
                yield Found(path, root, rel, LEAVES_ROOT)
                continue
        if os.path.isdir(path):
            target = Path(os.path.realpath(path))
            if target not in visited:
                visited.add(target)
                if refused := enter(path, rel):
                    yield refused
            continue
        yield Found(path, root, rel, _file_skip(path, max_file_bytes))


def _file_skip(path: Path, max_file_bytes: int) -> str | None:
    """Why ``path`` will not be ingested, judged from its name, its size and whether it opens."""
    if reason := unsupported(path.name):
        return reason
    try:
        info = path.stat()
    except OSError as error:
        return f"cannot read file ({error.strerror or error})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size == 0:
        return "empty file"
    if info.st_size > max_file_bytes:
        return f"too large ({_mb(info.st_size)} MB > limit {_mb(max_file_bytes)} MB; raise ingest.max_file_mb)"
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        return f"cannot read file ({error.strerror or error})"
    return None


def _mb(size: int) -> str:
    return f"{size / MIB:.1f}".removesuffix(".0")
