"""Every write to a collection, in one place: ingest, re-embed, replace an upload, delete a document or the whole.

``kura ingest``, ``kura collections``, the web app and the benchmarks call ``Collection``, never the store,
the manifest or the writer lock themselves. Each operation opens the manifest, takes the store's writer
lock and opens the store for itself alone: the manifest connection is single-threaded while the web app is
not, and Chroma's embedded client is not safe with two writing processes (the UI and a CLI ingest).
Documents are named to callers by an opaque id (a hash of the manifest key), never by server path.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest import pipeline
from ingest.lock import writer_lock
from ingest.manifest import FileRecord, Manifest, manifest_path
from ingest.pipeline import IngestReport, Progress
from rag.config import Settings
from rag.errors import KuraError
from rag.store import ChromaStore, VectorStore, connect

if TYPE_CHECKING:
    from rag.models.embedder import Embedder

# After a run's first write, a writer waits this long for another: others hold the lock only to write (a
# group of files, a delete) since parsing moved out of it, so a wait is seconds, and giving up mid-run
# would waste the parsing done.
MID_RUN_WAIT_S = 300.0

__all__ = [
    "Collection",
    "Document",
    "IngestOptions",
    "IngestReport",
    "StoredFile",
    "document_id",
    "list_collections",
]


@dataclass(frozen=True)
class IngestOptions:
    """``prune``: remove files gone from disk; ``reembed``: drop the collection and rebuild it with this embedder."""

    prune: bool = False
    dry_run: bool = False
    reembed: bool = False


def document_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """One ingested file for a listing; ``id`` names it in a request, so a page never sends a server path."""

    id: str
    rel: str
    root: Path
    chunks: int
    ingested_at: float
    uploaded: bool
    uploader: str | None = None
    state: str = "ingested"


@dataclass(frozen=True)
class StoredFile:
    """An ingested file: where it is on this server, its name in the collection, the content hash ingested."""

    path: Path
    rel: str
    sha256: str


@contextlib.contextmanager
def _open_manifest(settings: Settings) -> Iterator[Manifest]:
    manifest = Manifest(manifest_path(settings))
    try:
        yield manifest
    finally:
        manifest.close()


def _within(record: FileRecord, folder: Path) -> bool:
    return Path(record.root).resolve().is_relative_to(folder.resolve())


def _state(record: FileRecord, pending: bool) -> str:
    """How the ingested copy compares with the file on disk now: what the next ingest would do with it."""
    if pending:
        return "interrupted"
    try:
        stat = Path(record.key).stat()
    except OSError:
        return "missing"
    return "ingested" if (stat.st_size, stat.st_mtime_ns) == (record.size, record.mtime_ns) else "changed"


def list_collections(settings: Settings) -> list[dict[str, Any]]:
    """Every collection with its file count (from the manifest), chunk count and embedder."""
    infos = connect(settings).collections()
    with _open_manifest(settings) as manifest:
        return [
            {"name": c.name, "files": len(manifest.files(c.name)), "chunks": c.chunks, "embedder": c.embedder}
            for c in infos
        ]


def check_may_delete(collection: str, rel: str, uploader: str | None, by: str | None, editor: bool) -> None:
    """The one rule for deleting a document: an editor of the collection may, anyone else only their upload."""
    if not editor and uploader != by:
        raise KuraError(
            f"you did not upload {rel}: deleting it needs an editor of '{collection}' (ui.collection_editors)"
        )


class Collection:
    """One collection of the configured store, and the only code that writes to it.

    ``wait_s`` is how long a write waits for another writer; ``origin`` (such as "web UI") names the caller
    in the message a second writer sees.
    """

    def __init__(self, settings: Settings, name: str | None = None, wait_s: float = 0.0, origin: str = "") -> None:
        self.settings = settings
        self.name = name or settings.vectorstore.collection
        self.wait_s = wait_s
        self._by = f" ({origin})" if origin else ""
        self.uploads_root = settings.resolve(settings.paths.uploads)
        self.lock_path = manifest_path(settings).parent / ".kura-writer.lock"

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[Manifest]:
        with _open_manifest(self.settings) as manifest, writer_lock(self.lock_path, what + self._by, self.wait_s):
            yield manifest

    # --- reads ----------------------------------------------------------------------------------------
    def documents(self) -> list[Document]:
        with _open_manifest(self.settings) as manifest:
            records, uploaders = manifest.files(self.name), manifest.uploaders(self.name)
            pending = manifest.pending(self.name)
        return [
            Document(
                document_id(r.key),
                r.rel,
                Path(r.root),
                r.chunks,
                r.ingested_at,
                _within(r, self.uploads_root),
                uploaders.get(r.key),
                _state(r, r.key in pending),
            )
            for r in records.values()
        ]

    def indexed(self, roots: Sequence[Path]) -> dict[Path, int]:
        """How many files of this collection were ingested from each of ``roots`` (a watcher's folders)."""
        with _open_manifest(self.settings) as manifest:
            records = manifest.files(self.name).values()
        return {root: sum(1 for r in records if Path(r.root) == root) for root in roots}

    def stored_file(self, doc_id: str) -> StoredFile | None:
        """The file behind a document id, as the manifest records it; None when no document has that id.

        The id is the only thing a request names: the path comes from the manifest, never from the request.
        """
        with _open_manifest(self.settings) as manifest:
            records = manifest.files(self.name)
        found = next((r for r in records.values() if document_id(r.key) == doc_id), None)
        return None if found is None else StoredFile(Path(found.key), found.rel, found.sha256)

    def uploads_of_others(self, rels: set[str], user: str | None) -> list[str]:
        """Which of these names are uploads already here from someone other than ``user``."""
        with _open_manifest(self.settings) as manifest:
            records, uploaders = manifest.files(self.name), manifest.uploaders(self.name)
        return sorted(
            r.rel
            for r in records.values()
            if r.rel in rels and _within(r, self.uploads_root / self.name) and uploaders.get(r.key) != user
        )

    def uploaded_bytes(self, user: str) -> int:
        """What ``user``'s uploads take in every collection of this store: their upload quota's measure."""
        with _open_manifest(self.settings) as manifest:
            return manifest.uploaded_bytes(user)

    # --- writes ---------------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path],
        embedder: Embedder,
        options: IngestOptions = IngestOptions(),
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        changed: Sequence[Path] | None = None,
    ) -> IngestReport:
        """Files and folders into this collection: only new or changed files are parsed and embedded.

        The writer lock is taken only to write (``pipeline.write``); setting ``cancel`` stops the run between
        writes, with ``report.cancelled`` set. With ``options.reembed`` the collection is dropped first. With
        ``changed`` (a watcher's paths under ``paths``) only those are looked at, and with ``options.prune``
        files recorded there that are gone are removed.
        """
        started = time.perf_counter()
        sources = pipeline.find_sources(paths, self.settings, changed)
        if not options.dry_run:
            pipeline.start_parsers()
        vectors = connect(self.settings)
        store = vectors.open(self.name, embedder.fingerprint())
        if not options.reembed:
            store.check_embedder()
        with _open_manifest(self.settings) as manifest:
            if options.dry_run:
                report = pipeline.preview(sources, self.settings, embedder, store, manifest, options.prune)
            else:
                what = f"kura ingest into '{self.name}'{self._by}"
                waits = iter([self.wait_s])

                def lock() -> contextlib.AbstractContextManager[None]:
                    return writer_lock(self.lock_path, what, next(waits, max(self.wait_s, MID_RUN_WAIT_S)))

                if options.reembed:
                    with lock():
                        self._drop(vectors, manifest)
                        store = vectors.open(self.name, embedder.fingerprint())
                report = pipeline.write(
                    sources, self.settings, embedder, store, manifest, options.prune, progress, lock, cancel
                )
        report.seconds = time.perf_counter() - started
        return report

    def finish_upload(self, report: IngestReport, staged: Path, uploader: str | None, editor: bool) -> list[str]:
        """Record who uploaded the new files; a file uploaded again under the same name replaces the earlier
        upload instead of doubling its chunks, if it was the uploader's own or the uploader is an ``editor``."""
        fresh = {o.path: o.rel for o in report.files if o.status == "added"}
        if not fresh:
            return []
        replaced: list[str] = []
        with self._writing(f"replacing uploads in '{self.name}'") as manifest:
            if uploader is not None:
                for key in fresh:
                    manifest.set_uploader(self.name, key, uploader)
            uploaders = manifest.uploaders(self.name)
            store = connect(self.settings).open(self.name)
            for record in manifest.files(self.name).values():
                older = Path(record.root).resolve() != staged.resolve()
                mine = editor or uploaders.get(record.key) == uploader
                if older and mine and _within(record, self.uploads_root / self.name) and record.rel in fresh.values():
                    self._remove(store, manifest, record)
                    replaced.append(record.rel)
        return sorted(replaced)

    def delete_document(self, doc_id: str, by: str | None = None, editor: bool = True) -> str:
        """Delete one file's chunks and manifest entry (and an uploaded copy); returns its name for the message.

        Without ``editor``, only a file that ``by`` uploaded may be deleted.
        """
        with self._writing(f"deleting a document from '{self.name}'") as manifest:
            matches = [r for r in manifest.files(self.name).values() if document_id(r.key) == doc_id]
            if not matches:
                raise KuraError(f"that document is no longer in '{self.name}'; the list has been refreshed")
            check_may_delete(self.name, matches[0].rel, manifest.uploaders(self.name).get(matches[0].key), by, editor)
            self._remove(connect(self.settings).open(self.name), manifest, matches[0])
            return matches[0].rel

    def delete(self) -> None:
        """The collection and its manifest entries."""
        with self._writing(f"deleting collection '{self.name}'") as manifest:
            self._drop(connect(self.settings), manifest)

    # --- the single routines behind the writes ----------------------------------------------------
    def _drop(self, vectors: VectorStore, manifest: Manifest) -> None:
        vectors.drop(self.name)
        manifest.drop_collection(self.name)

    def _remove(self, store: ChromaStore, manifest: Manifest, record: FileRecord) -> None:
        pipeline.remove_file(store, manifest, record.key)
        if _within(record, self.uploads_root):
            _delete_uploaded_file(Path(record.key), self.uploads_root / self.name)


def _delete_uploaded_file(path: Path, stop: Path) -> None:
    """Uploaded copies belong to Kura: remove the file and the folders it leaves empty (never the user's own)."""
    with contextlib.suppress(OSError):
        path.unlink()
    folder = path.parent
    while folder.resolve() != stop.resolve() and folder.resolve().is_relative_to(stop.resolve()):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
