"""The ingest contract, run against each store backend: embedded Chroma and a real `chroma run` server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import IngestOptions, ingest_paths
from rag.config import Settings
from rag.errors import KuraError
from rag.store import open_store
from tests.helpers import write_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(params=["embedded", "server"])
def store_settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    custom = settings.model_copy(deep=True)
    custom.paths.store = tmp_path / "store"
    if request.param == "server":
        custom.vectorstore.url = request.getfixturevalue("chroma_server")
    custom.vectorstore.collection = f"c{abs(hash(str(tmp_path))) % 10**8}"
    return custom


def stored(settings: Settings, embedder: Any) -> dict[str, dict[str, Any]]:
    store = open_store(settings, embedder)
    return {chunk_id: meta for chunk_id, _, meta in store.all_chunks()}


class TestIngestContract:
    def test_first_run_adds_second_run_changes_nothing(
        self, store_settings: Settings, embedder: Any, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs")
        first = ingest_paths([docs], store_settings, embedder)
        assert first.counts()["added"] == 6 and first.chunks_written > 6
        before = stored(store_settings, embedder)
        assert len(before) == first.chunks_written
        second = ingest_paths([docs], store_settings, embedder)
        assert second.counts() == {"added": 0, "updated": 0, "unchanged": 6, "removed": 0, "skipped": 0}
        assert second.chunks_written == 0
        assert stored(store_settings, embedder) == before

    def test_metadata_of_a_chunk(self, store_settings: Settings, embedder: Any, tmp_path: Path) -> None:
        docs = write_corpus(tmp_path / "docs", files=1)
        ingest_paths([docs], store_settings, embedder)
        metas = list(stored(store_settings, embedder).values())
        meta = min(metas, key=lambda m: m["chunk"])
        assert meta["source"] == "00-backups.md"
        assert meta["path"] == str(docs / "00-backups.md")
        assert meta["heading"] == "Backups"
        assert meta["chunk"] == 0 and len(meta["file_sha256"]) == 64

    def test_modified_file_is_replaced(self, store_settings: Settings, embedder: Any, tmp_path: Path) -> None:
        docs = write_corpus(tmp_path / "docs", files=3)
        ingest_paths([docs], store_settings, embedder)
        before = stored(store_settings, embedder)
        target = docs / "01-printers.md"
        target.write_text("# Printers\n\nThe only printer is on floor 9.\n", encoding="utf-8")
        report = ingest_paths([docs], store_settings, embedder)
        assert report.counts()["updated"] == 1 and report.counts()["unchanged"] == 2
        after = stored(store_settings, embedder)
        printer = [m for m in after.values() if m["source"] == "01-printers.md"]
        assert len(printer) == 1
        old_printer_ids = {i for i, m in before.items() if m["source"] == "01-printers.md"}
        assert not old_printer_ids & set(after)
        assert {i for i, m in before.items() if m["source"] != "01-printers.md"} <= set(after)

    def test_touched_but_same_content_is_unchanged(
        self, store_settings: Settings, embedder: Any, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs", files=2)
        ingest_paths([docs], store_settings, embedder)
        (docs / "00-backups.md").touch()
        assert ingest_paths([docs], store_settings, embedder).counts()["unchanged"] == 2

    def test_prune_removes_deleted_files_only_with_flag(
        self, store_settings: Settings, embedder: Any, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs", files=3)
        ingest_paths([docs], store_settings, embedder)
        (docs / "02-vpn.md").unlink()
        kept = ingest_paths([docs], store_settings, embedder)
        assert kept.counts()["removed"] == 0
        assert any(m["source"] == "02-vpn.md" for m in stored(store_settings, embedder).values())
        dry = ingest_paths([docs], store_settings, embedder, IngestOptions(prune=True, dry_run=True))
        assert dry.counts()["removed"] == 1
        assert any(m["source"] == "02-vpn.md" for m in stored(store_settings, embedder).values())
        pruned = ingest_paths([docs], store_settings, embedder, IngestOptions(prune=True))
        assert pruned.counts()["removed"] == 1
        assert not any(m["source"] == "02-vpn.md" for m in stored(store_settings, embedder).values())

    def test_dry_run_writes_nothing(self, store_settings: Settings, embedder: Any, tmp_path: Path) -> None:
        docs = write_corpus(tmp_path / "docs", files=2)
        report = ingest_paths([docs], store_settings, embedder, IngestOptions(dry_run=True))
        assert report.counts()["added"] == 2 and report.chunks_written == 0
        assert stored(store_settings, embedder) == {}

    def test_other_embedder_is_refused(self, store_settings: Settings, embedder: Any, tmp_path: Path) -> None:
        docs = write_corpus(tmp_path / "docs", files=1)
        ingest_paths([docs], store_settings, embedder)
        store = open_store(store_settings, embedder)
        store.collection.modify(metadata={"kura_embedder": "some-other-model:123"})
        with pytest.raises(KuraError, match=r"was built with embedder some-other-model:123.*--reembed"):
            ingest_paths([docs], store_settings, embedder)
        rebuilt = ingest_paths([docs], store_settings, embedder, IngestOptions(reembed=True))
        assert rebuilt.counts()["added"] == 1
        assert open_store(store_settings, embedder).built_with == embedder.fingerprint()

    def test_chunk_ids_are_deterministic(self, store_settings: Settings, embedder: Any, tmp_path: Path) -> None:
        docs = write_corpus(tmp_path / "docs", files=2)
        ingest_paths([docs], store_settings, embedder)
        first = set(stored(store_settings, embedder))
        other = store_settings.model_copy(deep=True)
        other.vectorstore.collection = store_settings.vectorstore.collection + "b"
        ingest_paths([docs], other, embedder)
        assert set(stored(other, embedder)) == first


def test_missing_path_is_one_clear_error(settings: Settings, embedder: Any, tmp_path: Path) -> None:
    with pytest.raises(KuraError, match="no such file or folder"):
        ingest_paths([tmp_path / "nope"], settings, embedder)


def test_every_chunk_fits_the_encoder(settings: Settings, embedder: Any, tmp_path: Path) -> None:
    custom = settings.model_copy(deep=True)
    custom.paths.store = tmp_path / "store"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long-line.txt").write_text("word " * 40_000, encoding="utf-8")
    (docs / "nospace.txt").write_text("x" * 20_000, encoding="utf-8")
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "sample" / "office-ja.txt", docs / "ja.txt")
    report = ingest_paths([docs], custom, embedder)
    assert report.counts()["added"] == 3
    assert report.truncated == 0
