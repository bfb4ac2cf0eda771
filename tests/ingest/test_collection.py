"""The contract of ``Collection``, the one writer, against both store backends: embedded Chroma and a real
``chroma run`` server. The embedder is the deterministic fake: what is tested is Kura's bookkeeping of
chunks, manifest and uploaded copies, not the model."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ingest.collection import Collection, IngestOptions, list_collections
from ingest.lock import writer_lock
from rag.config import Settings, load_settings
from rag.errors import KuraError
from rag.store import connect
from tests.conftest import write_config
from tests.fakes import HashEmbedder
from tests.helpers import write_corpus


@pytest.fixture(params=["embedded", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Private paths; the server is shared by the session, so each test gets a collection name of its own."""
    (tmp_path / "kura").mkdir()
    custom = load_settings(write_config(tmp_path / "kura"))
    if request.param == "server":
        custom.vectorstore.url = request.getfixturevalue("chroma_server")
    custom.vectorstore.collection = f"contract-{uuid.uuid4().hex[:12]}"
    return custom


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


def chunks_by_file(settings: Settings) -> dict[str, set[str]]:
    """The stored chunk ids of each file key."""
    out: dict[str, set[str]] = {}
    for chunk_id, _, meta in connect(settings).open(settings.vectorstore.collection).all_chunks():
        out.setdefault(meta["key"], set()).add(chunk_id)
    return out


def upload(settings: Settings, folder: str, files: dict[str, str]) -> Path:
    """A staged upload as the web app leaves one: a folder of its own under ``paths.uploads/<collection>``."""
    staged = settings.resolve(settings.paths.uploads) / settings.vectorstore.collection / folder
    staged.mkdir(parents=True)
    for name, text in files.items():
        (staged / name).write_text(text, encoding="utf-8")
    return staged


class TestCollectionContract:
    def test_ingest_then_unchanged_files_cost_no_write(
        self, settings: Settings, embedder: HashEmbedder, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs", files=3)
        first = Collection(settings).ingest([docs], embedder)
        assert first.counts()["added"] == 3 and first.chunks_written > 3
        before = chunks_by_file(settings)
        assert sum(map(len, before.values())) == first.chunks_written
        embedded = embedder.stats.texts
        second = Collection(settings).ingest([docs], embedder)
        assert second.counts() == {"added": 0, "updated": 0, "unchanged": 3, "removed": 0, "skipped": 0}
        assert second.chunks_written == 0 and embedder.stats.texts == embedded
        assert chunks_by_file(settings) == before
        documents = Collection(settings).documents()
        assert sorted(d.rel for d in documents) == ["00-backups.md", "01-printers.md", "02-vpn.md"]
        assert not any(d.uploaded for d in documents)

    def test_a_new_upload_replaces_the_earlier_one_of_the_same_name(
        self, settings: Settings, embedder: HashEmbedder
    ) -> None:
        collection = Collection(settings)
        first = upload(settings, "1", {"notes.md": "# Notes\n\nThe canteen opens at eight.\n"})
        collection.ingest([first], embedder)
        second = upload(settings, "2", {"notes.md": "# Notes\n\nThe canteen opens at nine.\n"})
        report = collection.ingest([second], embedder)
        assert collection.finish_upload(report, second, None, editor=True) == ["notes.md"]
        assert set(chunks_by_file(settings)) == {str(second / "notes.md")}
        assert [(d.rel, d.root, d.uploaded) for d in collection.documents()] == [("notes.md", second, True)]
        assert not first.exists(), "the earlier copy and the folder it leaves empty belong to Kura: both go"
        assert second.joinpath("notes.md").exists()

    def test_uploads_record_their_uploader_who_alone_may_replace_or_delete_them(
        self, settings: Settings, embedder: HashEmbedder
    ) -> None:
        collection = Collection(settings)
        alices = upload(settings, "1", {"notes.md": "# Notes\n\nThe canteen opens at eight.\n"})
        assert collection.finish_upload(collection.ingest([alices], embedder), alices, "alice", editor=False) == []
        assert collection.uploads_of_others({"notes.md"}, "bob") == ["notes.md"]
        assert collection.uploads_of_others({"notes.md"}, "alice") == []
        size = (alices / "notes.md").stat().st_size
        assert (collection.uploaded_bytes("alice"), collection.uploaded_bytes("bob")) == (size, 0)
        bobs = upload(settings, "2", {"notes.md": "# Notes\n\nThe canteen opens at nine.\n"})
        assert collection.finish_upload(collection.ingest([bobs], embedder), bobs, "bob", editor=False) == []
        by_uploader = {d.uploader: d for d in collection.documents()}
        assert set(by_uploader) == {"alice", "bob"}, "bob, no editor, did not replace alice's upload"
        with pytest.raises(KuraError, match=r"you did not upload notes\.md: deleting it needs an editor of"):
            collection.delete_document(by_uploader["alice"].id, by="bob", editor=False)
        assert collection.delete_document(by_uploader["bob"].id, by="bob", editor=False) == "notes.md"
        assert collection.delete_document(by_uploader["alice"].id, by="carol", editor=True) == "notes.md"
        assert collection.documents() == [] and collection.uploaded_bytes("alice") == 0

    def test_the_chunk_after_a_chunk_is_the_next_of_its_file(
        self, settings: Settings, embedder: HashEmbedder, tmp_path: Path
    ) -> None:
        Collection(settings).ingest([write_corpus(tmp_path / "docs", files=2)], embedder)
        store = connect(settings).open(settings.vectorstore.collection)
        chunks = sorted((meta["key"], meta["chunk"], text) for _, text, meta in store.all_chunks())
        (key, index, _), (_, _, following) = chunks[0], chunks[1]
        assert chunks[1][:2] == (key, index + 1)
        assert store.chunk_after({"key": key, "chunk": index}) == following
        last = max(chunk for k, chunk, _ in chunks if k == key)
        assert store.chunk_after({"key": key, "chunk": last}) is None
        assert store.chunk_after({"key": key}) is None

    def test_delete_a_document_needs_no_embedder(
        self, settings: Settings, embedder: HashEmbedder, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs", files=2)
        staged = upload(settings, "1", {"upload.md": "# Upload\n\nWi-Fi passwords change monthly.\n"})
        Collection(settings).ingest([docs, staged], embedder)
        collection = Collection(settings)  # a fresh one, given no embedder: deleting must not need it
        by_name = {d.rel: d for d in collection.documents()}
        assert collection.delete_document(by_name["00-backups.md"].id) == "00-backups.md"
        assert collection.delete_document(by_name["upload.md"].id) == "upload.md"
        assert set(chunks_by_file(settings)) == {str(docs / "01-printers.md")}
        assert [d.rel for d in collection.documents()] == ["01-printers.md"]
        assert (docs / "00-backups.md").exists(), "the user's own file is never deleted"
        assert not staged.exists(), "an uploaded copy is"
        with pytest.raises(KuraError, match="that document is no longer in"):
            collection.delete_document(by_name["00-backups.md"].id)

    def test_delete_the_collection(self, settings: Settings, embedder: HashEmbedder, tmp_path: Path) -> None:
        name = settings.vectorstore.collection
        collection = Collection(settings)
        collection.ingest([write_corpus(tmp_path / "docs", files=2)], embedder)
        listed = {row["name"]: row for row in list_collections(settings)}
        assert listed[name]["files"] == 2 and listed[name]["chunks"] > 2
        assert listed[name]["embedder"] == embedder.fingerprint()
        collection.delete()
        assert name not in connect(settings).names()
        assert name not in {row["name"] for row in list_collections(settings)}
        assert collection.documents() == []
        with pytest.raises(KuraError, match=f"no collection named '{name}'"):
            collection.delete()

    def test_reembed_rebuilds_with_the_new_embedder(
        self, settings: Settings, embedder: HashEmbedder, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs", files=2)
        collection = Collection(settings)
        collection.ingest([docs], embedder)
        chunks = sum(map(len, chunks_by_file(settings).values()))
        other = HashEmbedder(dimension=64, name="other-embedder")
        with pytest.raises(KuraError, match=r"was built with embedder hash-embedder.*--reembed"):
            collection.ingest([docs], other)
        rebuilt = collection.ingest([docs], other, IngestOptions(reembed=True))
        assert rebuilt.counts()["added"] == 2 and rebuilt.chunks_written == chunks
        assert connect(settings).open(settings.vectorstore.collection).built_with == other.fingerprint()
        assert Collection(settings).ingest([docs], other).counts()["unchanged"] == 2

    def test_every_write_takes_the_one_writer_lock(
        self, settings: Settings, embedder: HashEmbedder, tmp_path: Path
    ) -> None:
        docs = write_corpus(tmp_path / "docs", files=1)
        collection = Collection(settings)
        collection.ingest([docs], embedder)
        doc = collection.documents()[0]
        with writer_lock(collection.lock_path, "a test holding the lock"):
            for write in (
                lambda: collection.ingest([docs], embedder, IngestOptions(prune=True)),
                lambda: collection.delete_document(doc.id),
                collection.delete,
            ):
                with pytest.raises(KuraError, match=r"the store is being written by pid .*a test holding the lock"):
                    write()
        assert [d.rel for d in collection.documents()] == [doc.rel]
