"""The Documents tab's side of the store: its table rows, and the ``Collection`` the web app writes through.

Every write goes through ``ingest.collection.Collection`` with the same writer lock as ``kura ingest``, so
the UI and a CLI ingest never write the embedded store at once; the UI waits a little for the other writer.
"""

from __future__ import annotations

from typing import Any

from ingest.collection import Collection
from rag.config import Settings

WRITER_WAIT_S = 10.0


def writer(settings: Settings, collection: str) -> Collection:
    return Collection(settings, collection, wait_s=WRITER_WAIT_S, origin="web UI")


def list_documents(settings: Settings, collection: str) -> list[dict[str, Any]]:
    """Rows for the table: file (path relative to what was ingested), chunks, ingest time, origin, uploader."""
    rows = [
        {
            "id": doc.id,
            "file": doc.rel,
            "chunks": doc.chunks,
            "ingested_at": doc.ingested_at,
            "origin": "upload" if doc.uploaded else doc.root.name,
            "uploader": doc.uploader,
        }
        for doc in Collection(settings, collection).documents()
    ]
    return sorted(rows, key=lambda row: (row["file"].lower(), row["origin"]))
