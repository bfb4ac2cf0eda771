"""Uploaded files into a fresh folder the ingest pipeline can read: names cleaned, zips unpacked safely.

A browser decides the names and the content of an upload, so nothing about it is trusted: a name keeps
only its last component, loses control characters and leading dots, and is capped in length; a zip member
with an absolute path, a ``..`` component or a symlink is refused, members are streamed with a byte
count (the sizes in a zip's header can lie), and the whole archive has a size and a member budget.
Each upload gets its own folder under ``paths.uploads/<collection>/``, so two uploads never collide.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.documents import SUPPORTED_SUFFIXES, unsupported
from rag.errors import KuraError

UPLOAD_SUFFIXES = frozenset({*SUPPORTED_SUFFIXES, ".zip"})
ZIP_EXPANSION = 4  # a zip may unpack to at most this many times ui.max_upload_mb
MAX_ZIP_MEMBERS = 5000
MAX_NAME_BYTES = 180
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
_BLOCK = 1 << 16


@dataclass
class Staged:
    """Where the upload landed, and what was refused before ingest ever saw it."""

    folder: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)


def safe_name(name: str) -> str:
    """One path component that is safe to create: not hidden, no separators or control characters.

    Characters such as ``<`` or ``&`` are kept: they are harmless on disk, and the UI escapes every name.
    """
    cleaned = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    stem, suffix = os.path.splitext(cleaned)
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return (stem + suffix) or "upload"


class _Names:
    """Free names in the staged folders: "a.md", then "a (2).md", "a (3).md"...

    The next number to try is remembered per name; probing from 2 for every member made a zip of 5,000
    members named alike cost 58 s (12.5 million checks).
    """

    def __init__(self) -> None:
        self._next: dict[Path, int] = {}

    def free(self, folder: Path, name: str) -> Path:
        wanted = folder / name
        stem, suffix = os.path.splitext(name)
        count = self._next.get(wanted, 2)
        target = wanted
        while target.exists():
            target = folder / f"{stem} ({count}){suffix}"
            count += 1
        self._next[wanted] = count
        return target


class _Budget:
    """Bytes left for the whole upload; crossing it aborts everything, since the user asked for all of it."""

    def __init__(self, limit: int, what: str) -> None:
        self.left = limit
        self.limit = limit
        self.what = what

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise KuraError(f"{self.what} is larger than {self.limit // (1024 * 1024)} MB; nothing was added")


def _member_path(info: zipfile.ZipInfo) -> tuple[list[str] | None, str | None]:
    """The cleaned components of a member's path, or the reason it is refused."""
    raw = info.filename.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        return None, "absolute path in the zip"
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if ".." in parts:
        return None, "'..' in its path in the zip"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return None, "symlink in the zip"
    if not parts:
        return None, "empty name in the zip"
    return parts, None


def _copy_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, max_file: int, budget: _Budget
) -> str | None:
    """Stream one member to ``target``; returns a skip reason when the file alone is too large."""
    written = 0
    with archive.open(info) as source, target.open("xb") as out:
        while block := source.read(_BLOCK):
            written += len(block)
            budget.spend(len(block))
            if written > max_file:
                break
            out.write(block)
    if written > max_file:
        target.unlink()
        return f"too large (more than {max_file // (1024 * 1024)} MB; raise ingest.max_file_mb)"
    return None


def _plan(archive: zipfile.ZipFile, label: str, staged: Staged) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The members to unpack with their cleaned path components; refusals go to ``staged.skipped``."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise KuraError(f"{label} holds {len(members)} files, more than {MAX_ZIP_MEMBERS}; nothing was added")
    plan = []
    for info in members:
        shown = f"{label}/{info.filename}"
        parts, refused = _member_path(info)
        if parts is None:
            staged.skipped.append((shown, refused or "refused"))
            continue
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue  # hidden files and macOS resource forks: ingest would not read them either
        names = [safe_name(p) for p in parts]
        reason = unsupported(names[-1])
        if reason is None and info.flag_bits & 0x1:
            reason = "encrypted in the zip"
        if reason:
            staged.skipped.append((shown, reason))
            continue
        plan.append((info, names))
    return plan


def _zip_root(plan: list[tuple[zipfile.ZipInfo, list[str]]], staged: Path, zip_name: str, names: _Names) -> Path:
    """A zip of one folder ("docs/...") unpacks as that folder; a zip of loose files into one named after it."""
    if plan and len({tuple(names[:1]) for _, names in plan}) == 1 and all(len(n) > 1 for _, n in plan):
        return staged
    into = names.free(staged, safe_name(zip_name[:-4]) or "zip")
    into.mkdir()
    return into


def _extract_zip(zip_path: Path, zip_name: str, staged: Staged, max_file: int, budget: _Budget, names: _Names) -> None:
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        staged.skipped.append((zip_name, f"not a readable zip ({exc})"))
        return
    with archive:
        plan = _plan(archive, zip_name, staged)
        into = _zip_root(plan, staged.folder, zip_name, names)
        for info, parts in plan:
            shown = f"{zip_name}/{info.filename}"
            folder = into.joinpath(*parts[:-1])
            try:
                folder.mkdir(parents=True, exist_ok=True)
                too_large = _copy_member(archive, info, names.free(folder, parts[-1]), max_file, budget)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                staged.skipped.append((shown, f"cannot be unpacked ({type(exc).__name__})"))
                continue
            if too_large:
                staged.skipped.append((shown, too_large))


def new_upload_folder(uploads_root: Path, collection: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = uploads_root / collection / f"{stamp}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def stage_uploads(
    files: list[tuple[Path, str]], uploads_root: Path, collection: str, max_upload_mb: int, max_file_mb: int
) -> Staged:
    """Copy ``(temp path, original name)`` pairs into a new folder; zips unpack into a folder of their name."""
    limit = max_upload_mb * 1024 * 1024
    upload_budget = _Budget(limit, "the upload")
    for path, _ in files:
        upload_budget.spend(path.stat().st_size)
    staged = Staged(new_upload_folder(uploads_root, collection))
    unpack_budget = _Budget(limit * ZIP_EXPANSION, "the unpacked zip content")
    names = _Names()
    try:
        for path, original in files:
            name = safe_name(original)
            if name.lower().endswith(".zip"):
                _extract_zip(path, name, staged, max_file_mb * 1024 * 1024, unpack_budget, names)
            elif reason := unsupported(name):
                staged.skipped.append((original, reason))
            else:
                shutil.copyfile(path, names.free(staged.folder, name))
    except BaseException:
        shutil.rmtree(staged.folder, ignore_errors=True)
        raise
    return staged
