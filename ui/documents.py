"""The Documents tab's store operations: list a collection's files, delete one, replace a re-upload.

Every write takes the same writer lock as ``kura ingest``, so the UI and a CLI ingest never write the
embedded store at once. A file is marked pending before its chunks go, exactly like the pipeline's own
removal, so a crash mid-delete is finished by the next ingest instead of leaving orphan chunks.
Files are named to the page by an opaque id (a hash of the manifest key), never by server path.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.lock import writer_lock
from ingest.manifest import FileRecord, Manifest
from ingest.pipeline import IngestReport
from rag.config import Settings
from rag.errors import KuraError
from rag.store import open_store, store_path_for_manifest

WRITER_WAIT_S = 10.0


def file_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def _manifest(settings: Settings) -> Iterator[Manifest]:
    """A manifest connection per operation: the class is single-threaded, the UI is not."""
    manifest = Manifest(store_path_for_manifest(settings))
    try:
        yield manifest
    finally:
        manifest.close()


def _lock_path(manifest: Manifest) -> Path:
    return manifest.path.parent / ".kura-writer.lock"


def _is_upload(record: FileRecord, uploads_root: Path) -> bool:
    return Path(record.root).resolve().is_relative_to(uploads_root.resolve())


def list_documents(settings: Settings, collection: str, uploads_root: Path) -> list[dict[str, Any]]:
    """Rows for the table: file (path relative to what was ingested), chunks, ingest time, origin."""
    with _manifest(settings) as manifest:
        records = manifest.files(collection)
    rows = [
        {
            "id": file_id(record.key),
            "file": record.rel,
            "chunks": record.chunks,
            "ingested_at": record.ingested_at,
            "origin": "upload" if _is_upload(record, uploads_root) else Path(record.root).name,
        }
        for record in records.values()
    ]
    return sorted(rows, key=lambda row: (row["file"].lower(), row["origin"]))


def _remove(manifest: Manifest, store: Any, collection: str, record: FileRecord, uploads_root: Path) -> None:
    manifest.mark_pending(collection, record.key)
    store.delete_file(record.key)
    manifest.forget(collection, record.key)
    if _is_upload(record, uploads_root):
        _delete_uploaded_file(Path(record.key), uploads_root / collection)


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


def delete_document(settings: Settings, embedder: Any, collection: str, doc_id: str, uploads_root: Path) -> str:
    """Delete one file's chunks and manifest entry; returns its name for the message."""
    with (
        _manifest(settings) as manifest,
        writer_lock(_lock_path(manifest), f"deleting a document from '{collection}' (web UI)", WRITER_WAIT_S),
    ):
        matches = [r for r in manifest.files(collection).values() if file_id(r.key) == doc_id]
        if not matches:
            raise KuraError(f"that document is no longer in '{collection}'; the list has been refreshed")
        store = open_store(settings, embedder, collection)
        _remove(manifest, store, collection, matches[0], uploads_root)
        return matches[0].rel


def replace_earlier_uploads(
    settings: Settings, embedder: Any, report: IngestReport, staged: Path, uploads_root: Path
) -> list[str]:
    """A file uploaded again under the same name replaces the earlier upload instead of doubling its chunks."""
    collection = report.collection
    fresh = {o.rel for o in report.files if o.status == "added"}
    if not fresh:
        return []
    replaced: list[str] = []
    with (
        _manifest(settings) as manifest,
        writer_lock(_lock_path(manifest), f"replacing uploads in '{collection}' (web UI)", WRITER_WAIT_S),
    ):
        store = open_store(settings, embedder, collection)
        for record in manifest.files(collection).values():
            older = Path(record.root).resolve() != staged.resolve() and _is_upload(record, uploads_root / collection)
            if older and record.rel in fresh:
                _remove(manifest, store, collection, record, uploads_root)
                replaced.append(record.rel)
    return sorted(replaced)
