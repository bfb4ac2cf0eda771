"""The stages of an ingest: find files, plan against the manifest, parse, embed, write; called by ``Collection``.

Files are parsed and chunked ahead in worker processes (``ingest.workers``: a memory limit and a time
budget per file) while the main thread embeds, and chunks of several files are embedded together so the
static batches are full. Such a group is then written under the writer lock: each file marked pending and
its old chunks deleted, the new chunks of all of them upserted at once, and each file's new version committed
to the manifest (a crash in between leaves them pending, redone by the next run). The lock is
held only for planning and these writes, never while a file parses, so a slow or hostile file does not
block another writer. Unchanged files (same size and mtime, or same hash) cost nothing. A run that is
cancelled stops between writes: what was written is whole, the rest is done by the next run.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ingest.documents import PARSER_VERSION, Chunk, Parsed, ParseLimits, TextCaps
from ingest.manifest import FileRecord, Manifest
from ingest.walk import Found, discover, discover_changed, through_symlink
from ingest.workers import ParsePool, start_parser_server
from rag.config import Settings
from rag.errors import KuraError
from rag.store import ChromaStore, storage_reason

if TYPE_CHECKING:
    from rag.models.embedder import Embedder

Status = Literal["added", "updated", "unchanged", "removed", "skipped"]
PREFETCH_FILES = 4
_CANCEL_POLL_S = 0.1


@dataclass
class FileOutcome:
    rel: str
    path: str
    status: Status
    chunks: int = 0
    reason: str | None = None
    note: str | None = None  # read, but not whole: "3 of 12 pages without text"


@dataclass
class IngestReport:
    collection: str
    dry_run: bool
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    chunks_written: int = 0
    truncated: int = 0
    planned: int = 0  # files to parse and write in this run
    cancelled: bool = False

    def counts(self) -> dict[str, int]:
        counted = Counter(f.status for f in self.files)
        return {status: counted.get(status, 0) for status in ("added", "updated", "unchanged", "removed", "skipped")}

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_written / self.seconds if self.seconds else 0.0

    def exit_code(self, strict: bool) -> int:
        """1 when nothing at all could be read, or with ``strict`` when anything was skipped."""
        counts = self.counts()
        readable = counts["added"] + counts["updated"] + counts["unchanged"]
        if (readable == 0 and counts["removed"] == 0) or (strict and counts["skipped"]):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "chunks_written": self.chunks_written,
            "truncated_chunks": self.truncated,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_s": round(self.chunks_per_s, 1),
            "cancelled": self.cancelled,
            "files": [asdict(f) for f in self.files],
        }


@dataclass(frozen=True)
class Sources:
    """The ingested roots and every file found under them, or, for a watcher, under ``changed`` paths only.

    ``changed`` None is a whole run: the roots are where a file recorded and not found is gone. Otherwise only
    the changed paths are (a file, or a folder walked whole, or a path that vanished).
    """

    roots: list[Path]
    found: list[Found]
    changed: list[Path] | None = None

    def covers(self, key: str) -> bool:
        """Whether the walk would have found the file ``key`` if it still existed."""
        return self.changed is None or _inside(key, self.changed)


@dataclass
class _Todo:
    found: Found
    sha256: str
    size: int
    mtime_ns: int
    status: Status
    note: str | None = None


Progress = Callable[[int, int, int], None]
Locker = Callable[[], AbstractContextManager[object]]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(key: str, sha256: str, index: int) -> str:
    """Stable across runs: the same file content always yields the same ids."""
    return hashlib.sha256(f"{key}\0{sha256}\0{index}".encode()).hexdigest()[:32]


def _inside(key: str, roots: Sequence[Path]) -> bool:
    return any(key == str(root) or key.startswith(str(root).rstrip("/") + "/") for root in roots)


class _Run:
    """The state of one ingest run; a class so the steps can stay small."""

    def __init__(
        self, settings: Settings, embedder: Embedder, store: ChromaStore, manifest: Manifest, progress: Progress | None
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.manifest = manifest
        self.collection = store.name
        self.fingerprint: str = embedder.fingerprint()
        self.progress = progress or (lambda done, total, chunks: None)
        ingest = settings.ingest
        self.parser_version = f"{PARSER_VERSION}:{ingest.chunk_size}:{ingest.chunk_overlap}"
        self.report = IngestReport(self.collection, dry_run=False)

    def plan(self, sources: Sources, prune: bool, write: bool) -> tuple[list[_Todo], list[str]]:
        records = self.manifest.files(self.collection)
        pending = self.manifest.pending(self.collection)
        todo: list[_Todo] = []
        for item in sources.found:
            if item.skip:
                self.report.files.append(FileOutcome(item.rel, str(item.path), "skipped", reason=item.skip))
                continue
            key = str(item.path)
            stat = item.path.stat()
            record = records.get(key)
            same_build = (
                record is not None
                and key not in pending
                and record.parser_version == self.parser_version
                and record.embedder == self.fingerprint
            )
            if record and same_build and (record.size, record.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                self.report.files.append(FileOutcome(item.rel, key, "unchanged", record.chunks))
                continue
            sha = _sha256(item.path)
            if record and same_build and record.sha256 == sha:
                if write:
                    self.manifest.touch(self.collection, key, stat.st_mtime_ns)
                self.report.files.append(FileOutcome(item.rel, key, "unchanged", record.chunks))
                continue
            todo.append(_Todo(item, sha, stat.st_size, stat.st_mtime_ns, "updated" if record else "added"))
        present = {str(item.path) for item in sources.found}
        scopes = sources.roots if sources.changed is None else sources.changed
        gone = [key for key in records if key not in present and _inside(key, scopes)] if prune else []
        # A file whose first ingest was interrupted and that has since vanished was never committed.
        gone += [key for key in pending if key not in records and key not in present and sources.covers(key)]
        return todo, gone

    def _metadatas(self, todo: _Todo, chunks: list[Chunk]) -> list[dict[str, Any]]:
        key = str(todo.found.path)
        metadatas = []
        for chunk in chunks:
            meta: dict[str, Any] = {
                "key": key,
                "source": todo.found.rel,
                "root": str(todo.found.root),
                "path": key,
                "file_name": todo.found.path.name,
                "chunk": chunk.index,
                "file_sha256": todo.sha256,
            }
            if chunk.page is not None:
                meta["page"] = chunk.page
            if chunk.heading:
                meta["heading"] = chunk.heading
            if chunk.boxes:
                meta["ocr_boxes"] = chunk.boxes
            metadatas.append(meta)
        return metadatas

    def _write(self, group: list[tuple[_Todo, list[Chunk]]], vectors: Any) -> None:
        """Every file of a group marked pending and its old chunks deleted, then one upsert for all their chunks,
        then each file committed: a crash anywhere leaves them pending, redone by the next run. One upsert, not
        one per file: writing 6,208 chunks to Chroma took 4.2 s CPU in upserts of 512, 5.9 s in upserts of 45."""
        ids: list[str] = []
        texts: list[str] = []
        metadatas: list[dict[str, Any]] = []
        for todo, chunks in group:
            key = str(todo.found.path)
            self.manifest.mark_pending(self.collection, key)
            self.store.delete_file(key)
            ids += [chunk_id(key, todo.sha256, chunk.index) for chunk in chunks]
            texts += [chunk.text for chunk in chunks]
            metadatas += self._metadatas(todo, chunks)
        self.store.upsert(ids, vectors, texts, metadatas)
        for todo, chunks in group:
            key = str(todo.found.path)
            record = FileRecord(
                key,
                str(todo.found.root),
                todo.found.rel,
                todo.size,
                todo.mtime_ns,
                todo.sha256,
                self.parser_version,
                self.fingerprint,
                len(chunks),
            )
            self.manifest.commit_file(self.collection, record)
            self.report.chunks_written += len(chunks)
            self.report.files.append(FileOutcome(todo.found.rel, key, todo.status, len(chunks), note=todo.note))

    def _flush(self, group: list[tuple[_Todo, list[Chunk]]], lock: Locker) -> None:
        texts = [chunk.embedding_text() for _, chunks in group for chunk in chunks]
        started = time.perf_counter()
        truncated_before = self.embedder.stats.truncated
        vectors = self.embedder.embed(texts, kind="document")
        self.report.embed_seconds += time.perf_counter() - started
        self.report.truncated += self.embedder.stats.truncated - truncated_before
        with lock():
            self._write(group, vectors)

    def _limits(self) -> ParseLimits:
        ingest = self.settings.ingest
        return ParseLimits(
            self.embedder.token_counter(),
            ingest.chunk_size,
            ingest.chunk_overlap,
            self.embedder.max_length,
            TextCaps(ingest.max_chars_per_file, ingest.max_chars_per_page),
            ingest.parse_memory_mb,
            ingest.parse_timeout_s,
            ingest.ocr,
        )

    def process(self, todo: list[_Todo], lock: Locker, cancel: threading.Event) -> None:
        """Parse ahead in the pool, embed and write in groups; on ``cancel``, stop with the unwritten group dropped."""
        self.report.planned = len(todo)
        if not todo:
            return  # an unchanged re-run starts no parser process
        done = 0
        group: list[tuple[_Todo, list[Chunk]]] = []
        with ParsePool(self._limits(), min(self.settings.ingest.parse_workers, len(todo))) as pool:
            queue: deque[tuple[_Todo, Future[Parsed | str]]] = deque()
            upcoming = iter(todo)
            for item in upcoming:
                queue.append((item, pool.submit(item.found.path)))
                if len(queue) >= PREFETCH_FILES:
                    break
            while queue:
                item, future = queue.popleft()
                nxt = next(upcoming, None)
                if nxt is not None:
                    queue.append((nxt, pool.submit(nxt.found.path)))
                result = _result(future, cancel)
                if result is None:
                    self.report.cancelled = True
                    return
                done += 1
                if isinstance(result, str):
                    self.report.files.append(
                        FileOutcome(item.found.rel, str(item.found.path), "skipped", reason=result)
                    )
                else:
                    item.note = result.note
                    group.append((item, result.chunks))
                if sum(len(c) for _, c in group) >= self.settings.ingest.embed_group_chunks:
                    self._flush(group, lock)
                    group = []
                self.progress(done, len(todo), self.report.chunks_written)
            if group and not cancel.is_set():
                self._flush(group, lock)
                self.progress(done, len(todo), self.report.chunks_written)
            self.report.cancelled = cancel.is_set()

    def remove(self, keys: list[str], records: dict[str, FileRecord]) -> None:
        for key in keys:
            remove_file(self.store, self.manifest, key)
            record = records.get(key)
            self.report.files.append(
                FileOutcome(record.rel if record else key, key, "removed", record.chunks if record else 0)
            )


def _result(future: Future[Parsed | str], cancel: threading.Event) -> Parsed | str | None:
    """A parse's result, or None as soon as the run is cancelled (the file may be hostile: never wait it out)."""
    while not cancel.is_set():
        try:
            return future.result(timeout=_CANCEL_POLL_S)
        except FutureTimeout:
            continue
    return None


def remove_file(store: ChromaStore, manifest: Manifest, key: str) -> None:
    """Marked pending before its chunks go, so a crash mid-delete is finished by the next ingest, not orphaned."""
    manifest.mark_pending(store.name, key)
    store.delete_file(key)
    manifest.forget(store.name, key)


def _chroma_error() -> type[Exception]:
    """Chroma's error base class (looked up only when something failed: chromadb is slow to import)."""
    from chromadb.errors import ChromaError

    return ChromaError


def start_parsers() -> None:
    """Parser processes fork from a server that imports the parsers once: start it while the caller opens the store."""
    start_parser_server()


def find_sources(paths: Sequence[Path], settings: Settings, changed: Sequence[Path] | None = None) -> Sources:
    """Every root is checked first, so a typo fails before the store is even opened.

    With ``changed`` (a watcher's paths under the roots, which may have vanished, roots included) only those
    are looked at; a root where one is reached through a symlink is walked whole, as its rules need.
    """
    roots = [Path(p).expanduser().absolute() for p in paths]
    limit = settings.ingest.max_file_mb * 1024 * 1024
    if changed is None:
        for root in roots:
            if not root.exists():
                raise KuraError(f"no such file or folder: {root}")
        return Sources(roots, list(discover(roots, limit)))
    found: list[Found] = []
    scopes: list[Path] = []
    for root in roots:
        mine = [path for path in changed if _root_of(str(path), roots) == root]
        if any(through_symlink(root, path) for path in mine):
            found += discover([root], limit)
            scopes.append(root)
        elif mine:
            found += discover_changed(root, mine, limit)
            scopes += mine
    return Sources(roots, found, scopes)


def _root_of(key: str, roots: Sequence[Path]) -> Path | None:
    """The innermost of ``roots`` holding ``key``."""
    holding = [root for root in roots if _inside(key, [root])]
    return max(holding, key=lambda root: len(root.parts)) if holding else None


def preview(
    sources: Sources, settings: Settings, embedder: Embedder, store: ChromaStore, manifest: Manifest, prune: bool
) -> IngestReport:
    """What a run would add, update and remove, writing nothing."""
    run = _Run(settings, embedder, store, manifest, None)
    run.report.dry_run = True
    todo, gone = run.plan(sources, prune, write=False)
    run.report.files += [FileOutcome(t.found.rel, str(t.found.path), t.status) for t in todo]
    records = manifest.files(store.name)
    run.report.files += [FileOutcome(records[k].rel if k in records else k, k, "removed") for k in gone]
    return run.report


def write(
    sources: Sources,
    settings: Settings,
    embedder: Embedder,
    store: ChromaStore,
    manifest: Manifest,
    prune: bool,
    progress: Progress | None,
    lock: Locker,
    cancel: threading.Event | None = None,
) -> IngestReport:
    """Add and update the files found and, with ``prune``, remove the vanished ones.

    ``lock()`` is the writer lock, taken for the plan (it may touch the manifest), each group's writes and
    the removals; the first call's wait decides whether another writer's run refuses this one.
    """
    run = _Run(settings, embedder, store, manifest, progress)
    with lock():
        todo, gone = run.plan(sources, prune, write=True)
        records = manifest.files(store.name)
    cancel = cancel or threading.Event()
    try:
        run.process(todo, lock, cancel)
        if not run.report.cancelled:
            with lock():
                run.remove(gone, records)
    except (OSError, sqlite3.Error, _chroma_error()) as exc:  # a full disk, a store made read-only mid-run
        raise KuraError(
            f"writing to the store failed ({storage_reason(exc)}); files already done are kept, "
            "and the next run redoes the unfinished one"
        ) from None
    return run.report
