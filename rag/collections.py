"""Listing and deleting collections, for the CLI and the web UI alike."""

from __future__ import annotations

from typing import Any

from ingest.lock import writer_lock
from ingest.manifest import Manifest
from rag.config import Settings
from rag.store import EMBEDDER_KEY, collection_names, connect, store_path_for_manifest


def list_collections(settings: Settings) -> list[dict[str, Any]]:
    client = connect(settings)
    manifest = Manifest(store_path_for_manifest(settings))
    try:
        rows = []
        for name in collection_names(client):
            collection = client.get_collection(name)
            rows.append(
                {
                    "name": name,
                    "files": len(manifest.files(name)),
                    "chunks": int(collection.count()),
                    "embedder": (collection.metadata or {}).get(EMBEDDER_KEY),
                }
            )
        return rows
    finally:
        manifest.close()


def delete(settings: Settings, name: str, wait_s: float = 0.0) -> None:
    from rag.store import delete_collection

    manifest = Manifest(store_path_for_manifest(settings))
    try:
        with writer_lock(manifest.path.parent / ".kura-writer.lock", f"deleting collection '{name}'", wait_s):
            delete_collection(settings, name)
            manifest.drop_collection(name)
    finally:
        manifest.close()
