"""The vector store adapter: Chroma embedded on disk, or a Chroma server when ``vectorstore.url`` is set.

Collections are created through langchain-chroma with an explicit cosine space and no embedding
function of Chroma's own: vectors always come from Kura's embedder, and the collection records that
embedder's fingerprint so vectors from two different models are never mixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings

from rag.config import Settings
from rag.errors import KuraError

EMBEDDER_KEY = "kura_embedder"
COSINE = {"hnsw": {"space": "cosine"}}


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its cosine similarity (1 is identical)."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def storage_reason(exc: BaseException) -> str:
    """One line for a storage failure: Chroma's and SQLite's messages can span several lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else 'no details'}"


def store_identity(settings: Settings) -> str:
    """A short name for where the vectors live, used to keep each store's ingest manifest apart."""
    if settings.vectorstore.url:
        return "server-" + hashlib.sha256(settings.vectorstore.url.encode()).hexdigest()[:12]
    return "embedded"


def connect(settings: Settings) -> Any:
    """A Chroma client for the configured store; a server that does not answer is one clear error."""
    import chromadb

    url = settings.vectorstore.url
    if not url:
        path = settings.store_dir
        try:
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
        except Exception as exc:  # a read-only or full disk, a damaged database: say which store and why
            raise KuraError(f"cannot open the store at {path} ({storage_reason(exc)})") from None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise KuraError(f"vectorstore.url {url!r} must look like http://HOST:PORT")
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=_chroma_settings(),
        )
        client.heartbeat()
    except Exception as exc:
        raise KuraError(
            f"cannot reach the Chroma server at {url} ({type(exc).__name__}); is `chroma run` up?"
        ) from None
    return client


def collection_names(client: Any) -> list[str]:
    return sorted(c.name if hasattr(c, "name") else str(c) for c in client.list_collections())


class ChromaStore:
    """One collection: batched writes of precomputed vectors, deletes by file, cosine queries."""

    def __init__(self, client: Any, name: str, embedder: Embeddings, fingerprint: str) -> None:
        from langchain_chroma import Chroma

        self.client = client
        self.name = name
        self.fingerprint = fingerprint
        self.langchain = Chroma(
            collection_name=name,
            embedding_function=embedder,
            client=client,
            collection_metadata={EMBEDDER_KEY: fingerprint},
            collection_configuration=COSINE,
        )
        self.collection = client.get_collection(name)
        self.max_batch = int(client.get_max_batch_size())

    @property
    def built_with(self) -> str | None:
        return (self.collection.metadata or {}).get(EMBEDDER_KEY)

    def check_embedder(self) -> None:
        """Refuse to mix vectors of two embedders in one collection."""
        if self.built_with not in (None, self.fingerprint):
            raise KuraError(
                f"collection '{self.name}' was built with embedder {self.built_with}, but the configured one is "
                f"{self.fingerprint}; ingest into a new collection (--collection NAME) or rebuild it with --reembed"
            )

    def count(self) -> int:
        return int(self.collection.count())

    def upsert(
        self, ids: Sequence[str], vectors: Any, texts: Sequence[str], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        """Write in slices of Chroma's own max batch size; upsert makes a repeated write harmless."""
        for start in range(0, len(ids), self.max_batch):
            end = start + self.max_batch
            self.collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def delete_file(self, key: str) -> None:
        self.collection.delete(where={"key": key})

    def ids_of(self, key: str) -> list[str]:
        return list(self.collection.get(where={"key": key}, include=[])["ids"])

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        found = self.collection.query(
            query_embeddings=[list(vector)],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(id=i, text=doc or "", metadata=dict(meta or {}), score=1.0 - float(dist))
            for i, doc, meta, dist in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True
            )
        ]

    def all_chunks(self, batch: int = 5000) -> list[tuple[str, str, dict[str, Any]]]:
        """Every (id, text, metadata), paged, for keyword search and listings."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        offset = 0
        while True:
            page = self.collection.get(include=["documents", "metadatas"], limit=batch, offset=offset)
            rows = zip(page["ids"], page["documents"], page["metadatas"], strict=True)
            out += [(i, d or "", dict(m or {})) for i, d, m in rows]
            if len(page["ids"]) < batch:
                return out
            offset += batch


def open_store(settings: Settings, embedder: Any, collection: str | None = None) -> ChromaStore:
    name = collection or settings.vectorstore.collection
    try:
        return ChromaStore(connect(settings), name, embedder, embedder.fingerprint())
    except KuraError:
        raise
    except ValueError as exc:
        raise KuraError(f"collection name {name!r} is not valid: {exc}") from None


def delete_collection(settings: Settings, name: str) -> None:
    client = connect(settings)
    if name not in collection_names(client):
        raise KuraError(f"no collection named '{name}'; `kura collections` lists them")
    client.delete_collection(name)


def store_path_for_manifest(settings: Settings) -> Path:
    """Where the ingest manifest of this store lives (beside an embedded store; under paths.store otherwise)."""
    base = settings.resolve(settings.paths.store)
    return (
        settings.store_dir if not settings.vectorstore.url else base
    ) / f"kura-manifest-{store_identity(settings)}.sqlite"
