"""Keep a collection equal to folders: ``kura ingest --watch`` and the web app's ``ingest.watch``.

A whole pass comes first, with prune, so whatever changed while nobody watched (a ``kill -9`` included) is
caught up. Then ``watchfiles`` reports changes; a changed path waits until its size and mtime, or its
absence, have held for ``ingest.watch_settle_s``, so an editor's save (a temporary file renamed over the
old one), a copy still being written or a rename storm settles first and a file that came and went is never
read. The settled paths are then synced together by ``Collection.ingest(changed=...)``: the same pipeline,
manifest and writer lock as any ingest, so a kill at any moment leaves what the next pass finishes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.collection import Collection, IngestOptions
from ingest.pipeline import IngestReport, Progress
from ingest.walk import passed_over
from rag.errors import KuraError
from rag.wording import plural

if TYPE_CHECKING:
    from rag.models.embedder import Embedder

log = logging.getLogger("kura.watch")
# How often settling paths are looked at when no event comes, and the longest a burst of events is
# gathered before the watcher looks: both well under the settle time, which is what a user waits.
TICK_MS = 200
GATHER_MS = 400
CHANGES = ("added", "updated", "removed", "skipped")


@dataclass(frozen=True)
class Change:
    """One change the watcher made to the collection; a line of ``kura ingest --watch``."""

    status: str  # added, updated, removed or skipped
    rel: str
    folder: str
    chunks: int
    reason: str | None
    at: float

    def line(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.at))
        if self.reason:
            detail = f": {self.reason}"
        else:
            detail = "" if self.status == "removed" else f" ({plural(self.chunks, 'chunk')})"
        return f"{when} {self.status} {self.rel}{detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "change",
            "status": self.status,
            "path": self.rel,
            "folder": self.folder,
            "chunks": self.chunks,
            "reason": self.reason,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.at)),
        }


@dataclass
class FolderState:
    """What the Documents tab shows of one watched folder; ``failed`` maps a file's path to (name, reason)."""

    root: Path
    indexed: int = 0
    pending: int = 0
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    last_change: Change | None = None
    synced_at: float | None = None  # when the first pass finished
    error: str | None = None  # why the folder is not in sync right now (retried)


def _snapshot(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


class _Settling:
    """Changed paths with the (size, mtime) each had when last looked at, and since when it has held."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._seen: dict[Path, tuple[tuple[int, int] | None, float]] = {}

    def touch(self, paths: Iterable[Path], now: float) -> None:
        for path in paths:
            self._seen[path] = (_snapshot(path), now)

    def ready(self, now: float) -> list[Path]:
        """The paths unchanged for the settle time, taken out; the others' clocks restart if they moved."""
        ready = []
        for path, (snapshot, since) in list(self._seen.items()):
            current = _snapshot(path)
            if current != snapshot:
                self._seen[path] = (current, now)
            elif now - since >= self.settle_s:
                ready.append(path)
                del self._seen[path]
        return ready

    def paths(self) -> list[Path]:
        return list(self._seen)


def _inside(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root).rstrip("/") + "/")


class FolderSync:
    """Keeps ``collection`` equal to ``roots`` (folders or files); ``on_change`` hears each change made.

    ``states`` may be read from other threads (the web app's page); the sync itself runs in one thread.
    """

    def __init__(
        self,
        collection: Collection,
        roots: Sequence[Path],
        embedder: Embedder,
        settle_s: float,
        on_change: Callable[[Change], None] = lambda change: None,
        stop: threading.Event | None = None,
    ) -> None:
        self.collection = collection
        self.stop = stop or threading.Event()  # Ctrl-C in the CLI, shutdown in the web app
        self.roots = [Path(root).expanduser().absolute() for root in roots]
        self.embedder = embedder
        self.on_change = on_change
        self.states = {root: FolderState(root) for root in self.roots}
        self._settling = _Settling(settle_s)
        self._guard = threading.Lock()
        self._events: Iterator[set[tuple[Any, str]]] | None = None

    def snapshot(self) -> list[FolderState]:
        """Copies of the folders' states, safe to read while the sync goes on."""
        with self._guard:
            return [
                FolderState(s.root, s.indexed, s.pending, dict(s.failed), s.last_change, s.synced_at, s.error)
                for s in self.states.values()
            ]

    def first_pass(self, progress: Progress | None = None) -> IngestReport:
        """The whole folders, as ``kura ingest --prune`` would do them; watching starts first, so a change made
        during the pass (it may take minutes) is synced after it."""
        self._start_watching()
        report = self.collection.ingest(self.roots, self.embedder, IngestOptions(prune=True), progress, self.stop)
        self._record(report, self.roots, announce=False)
        with self._guard:
            for state in self.states.values():
                state.synced_at, state.error = time.time(), None
        return report

    def watch(self) -> None:
        """After ``first_pass``: sync settled changes until ``stop`` is set; a failed sync is retried."""
        for changes in self._start_watching():
            now = time.monotonic()
            self._settling.touch({Path(path) for _, path in changes}, now)
            ready = self._settling.ready(now)
            if ready and not self.stop.is_set():
                self.sync(ready)
            self._count_pending()

    def _start_watching(self) -> Iterator[set[tuple[Any, str]]]:
        """watchfiles' events; the first step sets up the watches, and events from then on are kept."""
        if self._events is None:
            import watchfiles

            for root in self.roots:
                if not root.exists():  # watchfiles would say only "No path was found."
                    raise KuraError(f"no such file or folder: {root}")

            events = watchfiles.watch(
                *self.roots,
                watch_filter=self._wanted,
                debounce=GATHER_MS,
                rust_timeout=TICK_MS,
                yield_on_timeout=True,
                stop_event=self.stop,
                raise_interrupt=False,
            )
            self._settling.touch({Path(path) for _, path in next(events, set())}, time.monotonic())
            self._events = events  # only once set up: a folder missing now is tried again later
        return self._events

    def sync(self, paths: Sequence[Path]) -> IngestReport | None:
        """Ingest what is at ``paths`` now, remove what is gone from there; None when it failed (retried)."""
        self._count_pending(paths)
        try:
            report = self.collection.ingest(
                self.roots, self.embedder, IngestOptions(prune=True), cancel=self.stop, changed=paths
            )
        except KuraError as exc:  # the store busy with another writer, a full disk: try again once settled
            self._settling.touch(paths, time.monotonic())
            self.fail(str(exc))
            return None
        self._record(report, paths, announce=True)
        return report

    def fail(self, reason: str) -> None:
        """The folders are not in sync, and why; cleared by the next pass or sync that succeeds."""
        log.warning("folder sync: %s", reason)
        with self._guard:
            for state in self.states.values():
                state.error = reason

    def _wanted(self, change: object, path: str) -> bool:
        """watchfiles' filter: nothing hidden or temporary under a root, as the walk passes them over."""
        for root in self.roots:
            if _inside(path, root):
                return not any(passed_over(part) for part in Path(path).relative_to(root).parts)
        return False

    def _count_pending(self, syncing: Sequence[Path] = ()) -> None:
        waiting = [str(path) for path in [*self._settling.paths(), *syncing]]
        with self._guard:
            for root, state in self.states.items():
                state.pending = sum(1 for path in waiting if _inside(path, root))

    def _record(self, report: IngestReport, scopes: Sequence[Path], announce: bool) -> None:
        """The folders' states after a pass or a sync; each change made is announced."""
        counts = self.collection.indexed(self.roots)
        changes = []
        with self._guard:
            for state in self.states.values():
                state.indexed, state.error = counts[state.root], None
                for key in [k for k in state.failed if any(_inside(k, scope) for scope in scopes)]:
                    del state.failed[key]
            for outcome in report.files:
                root = self._root_of(outcome.path)
                if root is None:
                    continue
                state = self.states[root]
                if outcome.status == "skipped":
                    state.failed[outcome.path] = (outcome.rel, outcome.reason or "skipped")
                if announce and outcome.status in CHANGES:
                    change = Change(outcome.status, outcome.rel, str(root), outcome.chunks, outcome.reason, time.time())
                    state.last_change = change
                    changes.append(change)
        for change in changes:
            self.on_change(change)

    def _root_of(self, key: str) -> Path | None:
        holding = [root for root in self.roots if _inside(key, root)]
        return max(holding, key=lambda root: len(root.parts)) if holding else None
