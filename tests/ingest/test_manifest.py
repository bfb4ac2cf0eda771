"""The ingest manifest: pending marks, atomic commits, per-collection records that survive a reopen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.manifest import FileRecord, Manifest

RECORD = FileRecord("/docs/a.md", "/docs", "a.md", 120, 1_000, "ab" * 32, "1:200:30", "emb:1", 3)


@pytest.fixture
def manifest(tmp_path: Path) -> Iterator[Manifest]:
    opened = Manifest(tmp_path / "nested" / "manifest.sqlite")
    yield opened
    opened.close()


def test_a_new_manifest_is_empty_and_makes_its_folder(manifest: Manifest, tmp_path: Path) -> None:
    assert manifest.path == tmp_path / "nested" / "manifest.sqlite"
    assert manifest.path.is_file()
    assert manifest.files("kura") == {}
    assert manifest.pending("kura") == set()


def test_commit_records_the_file_and_clears_its_pending_mark(manifest: Manifest) -> None:
    manifest.mark_pending("kura", RECORD.key)
    manifest.mark_pending("kura", RECORD.key)  # marking twice is harmless
    assert manifest.pending("kura") == {RECORD.key}
    manifest.commit_file("kura", RECORD)
    assert manifest.pending("kura") == set()
    stored = manifest.files("kura")[RECORD.key]
    assert replace(stored, ingested_at=0.0) == RECORD
    assert stored.ingested_at > 0


def test_a_second_commit_replaces_the_first(manifest: Manifest) -> None:
    manifest.commit_file("kura", RECORD)
    manifest.commit_file("kura", replace(RECORD, sha256="cd" * 32, chunks=5))
    assert [(r.sha256, r.chunks) for r in manifest.files("kura").values()] == [("cd" * 32, 5)]


def test_touch_updates_only_the_mtime(manifest: Manifest) -> None:
    manifest.commit_file("kura", RECORD)
    manifest.touch("kura", RECORD.key, 2_000)
    stored = manifest.files("kura")[RECORD.key]
    assert (stored.mtime_ns, stored.sha256, stored.chunks) == (2_000, RECORD.sha256, 3)


def test_collections_are_kept_apart(manifest: Manifest) -> None:
    manifest.commit_file("kura", RECORD)
    manifest.mark_pending("other", "/docs/b.md")
    assert list(manifest.files("kura")) == [RECORD.key]
    assert manifest.files("other") == {}
    assert manifest.pending("kura") == set()
    assert manifest.pending("other") == {"/docs/b.md"}


def test_forget_removes_the_record_and_its_pending_mark(manifest: Manifest) -> None:
    manifest.commit_file("kura", RECORD)
    manifest.mark_pending("kura", RECORD.key)
    manifest.forget("kura", RECORD.key)
    assert manifest.files("kura") == {}
    assert manifest.pending("kura") == set()


def test_drop_collection_leaves_other_collections(manifest: Manifest) -> None:
    manifest.commit_file("kura", RECORD)
    manifest.mark_pending("kura", "/docs/b.md")
    manifest.commit_file("other", RECORD)
    manifest.drop_collection("kura")
    assert (manifest.files("kura"), manifest.pending("kura")) == ({}, set())
    assert list(manifest.files("other")) == [RECORD.key]


def test_records_and_pending_marks_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    first = Manifest(path)
    first.commit_file("kura", RECORD)
    first.mark_pending("kura", "/docs/crashed.md")
    first.close()
    second = Manifest(path)
    try:
        assert list(second.files("kura")) == [RECORD.key]
        assert second.pending("kura") == {"/docs/crashed.md"}
    finally:
        second.close()


def test_the_database_is_in_wal_mode_with_full_sync(manifest: Manifest) -> None:
    assert manifest.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert manifest.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
