"""The web app's background sync of the folders in ``ingest.watch`` into ``vectorstore.collection``.

Each folder gets a thread running :class:`ingest.watch.FolderSync` through the same ``Collection`` writer as
uploads and deletes (``ui.documents.writer``: the one writer lock, waited for a little), with the embedder
the answers use. A folder that cannot be synced (missing, the store busy) says why in the Documents tab and
is tried again every ``RETRY_S``; the server keeps serving.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ingest.watch import Change, FolderState, FolderSync
from rag.config import Settings
from ui.documents import writer

log = logging.getLogger("kura.ui")
RETRY_S = 30.0


class WatchedFolders:
    """``version`` counts the changes made, so a page knows when its file list is out of date."""

    def __init__(self, settings: Settings, embedder: Any) -> None:
        self.collection = settings.vectorstore.collection
        self.version = 0
        settle = settings.ingest.watch_settle_s
        self._syncs = [
            FolderSync(writer(settings, self.collection), [settings.resolve(folder)], embedder, settle, self._changed)
            for folder in settings.ingest.watch
        ]

    def start(self) -> None:
        for sync in self._syncs:
            threading.Thread(target=self._run, args=(sync,), daemon=True, name="kura-watch").start()

    def stop(self) -> None:
        for sync in self._syncs:
            sync.stop.set()

    def states(self, collection: str | None) -> list[FolderState]:
        """The watched folders' states when ``collection`` is the one they sync into, else none."""
        if collection != self.collection:
            return []
        return [state for sync in self._syncs for state in sync.snapshot()]

    def _changed(self, change: Change) -> None:
        self.version += 1
        log.info("folder sync into '%s': %s", self.collection, change.line())

    def _run(self, sync: FolderSync) -> None:
        """The first pass until it succeeds, then the watch; nothing here may stop the server."""
        while not sync.stop.is_set():
            try:
                sync.first_pass()
                self.version += 1
                sync.watch()
                return
            except Exception as exc:  # a missing folder, the store busy, the OS's limit of watches
                sync.fail(f"{exc} (tried again every {RETRY_S:g} s)")
                sync.stop.wait(RETRY_S)
