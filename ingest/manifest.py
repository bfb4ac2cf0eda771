"""The ingest manifest: which file version each collection holds, in SQLite so every update is atomic.

A file is marked *pending* before its chunks are touched and un-marked in the same transaction that
records its new version. After a crash (even SIGKILL) a pending file is simply redone: chunk ids are
deterministic and writes are upserts, so the redo yields exactly what an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    root TEXT NOT NULL,
    rel TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    parser_version TEXT NOT NULL,
    embedder TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at REAL NOT NULL,
    PRIMARY KEY (collection, key)
);
CREATE TABLE IF NOT EXISTS uploaders (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (collection, key)
);
CREATE TABLE IF NOT EXISTS pending (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (collection, key)
);
"""


def manifest_path(settings: Settings) -> Path:
    """Beside an embedded store; under ``paths.store`` for a server, one file per server URL, so the
    manifests of two stores never mix."""
    if settings.vectorstore.url:
        identity = "server-" + hashlib.sha256(settings.vectorstore.url.encode()).hexdigest()[:12]
        return settings.resolve(settings.paths.store) / f"kura-manifest-{identity}.sqlite"
    return settings.store_dir / "kura-manifest-embedded.sqlite"


@dataclass(frozen=True)
class FileRecord:
    key: str
    root: str
    rel: str
    size: int
    mtime_ns: int
    sha256: str
    parser_version: str
    embedder: str
    chunks: int
    ingested_at: float = 0.0


class Manifest:
    """Per-store manifest; one instance per process, used from one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def files(self, collection: str) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT key, root, rel, size, mtime_ns, sha256, parser_version, embedder, chunks, ingested_at "
            "FROM files WHERE collection = ?",
            (collection,),
        )
        return {row[0]: FileRecord(*row) for row in rows}

    def pending(self, collection: str) -> set[str]:
        rows = self.db.execute("SELECT key FROM pending WHERE collection = ?", (collection,))
        return {row[0] for row in rows}

    def mark_pending(self, collection: str, key: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO pending VALUES (?, ?)", (collection, key))

    def commit_file(self, collection: str, record: FileRecord) -> None:
        """Record the file's new version and clear its pending mark, atomically."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    collection,
                    record.key,
                    record.root,
                    record.rel,
                    record.size,
                    record.mtime_ns,
                    record.sha256,
                    record.parser_version,
                    record.embedder,
                    record.chunks,
                    time.time(),
                ),
            )
            self.db.execute("DELETE FROM pending WHERE collection = ? AND key = ?", (collection, record.key))

    def uploaders(self, collection: str) -> dict[str, str]:
        """key -> the web user who uploaded that file (files ingested by ``kura ingest`` have none)."""
        rows = self.db.execute("SELECT key, user FROM uploaders WHERE collection = ?", (collection,))
        return dict(rows.fetchall())

    def set_uploader(self, collection: str, key: str, user: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO uploaders VALUES (?, ?, ?)", (collection, key, user))

    def uploaded_bytes(self, user: str) -> int:
        """The size of every file ``user`` uploaded that is still in a collection."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(f.size), 0) FROM files f JOIN uploaders u USING (collection, key) WHERE u.user = ?",
            (user,),
        ).fetchone()
        return int(row[0])

    def touch(self, collection: str, key: str, mtime_ns: int) -> None:
        """Same content, new mtime: remember it so the next run need not hash the file again."""
        self.db.execute("UPDATE files SET mtime_ns = ? WHERE collection = ? AND key = ?", (mtime_ns, collection, key))

    def forget(self, collection: str, key: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM files WHERE collection = ? AND key = ?", (collection, key))
            self.db.execute("DELETE FROM uploaders WHERE collection = ? AND key = ?", (collection, key))
            self.db.execute("DELETE FROM pending WHERE collection = ? AND key = ?", (collection, key))

    def drop_collection(self, collection: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM files WHERE collection = ?", (collection,))
            self.db.execute("DELETE FROM uploaders WHERE collection = ?", (collection,))
            self.db.execute("DELETE FROM pending WHERE collection = ?", (collection,))
