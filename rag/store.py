"""The vector store adapter: Chroma embedded on disk, or a Chroma server when ``vectorstore.url`` is set.

Chroma stays inside this module: callers get a ``VectorStore`` (the connection, where collections are
listed, opened and dropped) and a ``ChromaStore`` (one collection, read and written through named methods).
A collection is created with an explicit cosine space and no embedding function of Chroma's own: vectors
always come from Kura's embedder, and the collection records that embedder's fingerprint so vectors from
two different models are never mixed. Only a write needs that fingerprint; reading or deleting needs none.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlparse

import httpx

from rag.config import Settings
from rag.errors import KuraError, short_reason
from rag.urls import redact, transport_reason

EMBEDDER_KEY = "kura_embedder"
COSINE = {"hnsw": {"space": "cosine"}}


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its cosine similarity (1 is identical)."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored, with its vector: what MMR and reranking work on."""

    id: str
    text: str
    metadata: dict[str, Any]
    vector: Sequence[float]


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    chunks: int
    embedder: str | None


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def storage_reason(exc: BaseException) -> str:
    """One line for a storage failure: Chroma's and SQLite's messages can span several lines."""
    return f"{type(exc).__name__}: {short_reason(exc) if str(exc).strip() else 'no details'}"


def unreachable(url: str, exc: BaseException) -> KuraError:
    return KuraError(
        f"cannot reach the Chroma server at {redact(url)} ({transport_reason(exc)}); is `chroma run` running there?"
    )


class _OnServer(Protocol):
    url: str | None


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=_OnServer)


def _reaching(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A Chroma server that stops answering mid-run (an ingest, a query) is one line, not httpx's traceback.
    What was written before stays consistent: ingest commits file by file (the next run redoes the rest)."""

    @functools.wraps(method)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except httpx.TransportError as exc:
            if self.url is None:
                raise
            raise unreachable(self.url, exc) from None

    return call


# Chroma's client cache is not safe to fill from two threads: the web app's first folder syncs, started
# together, failed with "cannot open the store (KeyError: '<path>')".
_OPENING = threading.Lock()


def _client(settings: Settings) -> Any:
    """A Chroma client for the configured store; a server that does not answer is one clear error."""
    with _OPENING:
        return _open_client(settings)


def _open_client(settings: Settings) -> Any:
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
        raise KuraError(f"vectorstore.url {redact(url)!r} must look like http://HOST:PORT")
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=_chroma_settings(),
        )
        client.heartbeat()
    except Exception as exc:
        raise unreachable(url, exc) from None
    return client


# Writes this process made, per collection: keyword search rebuilds when they change, since an edit can keep
# a collection's size (a watched one-chunk file saved again is one chunk deleted and one added).
_WRITES: Counter[str] = Counter()


class ChromaStore:
    """One collection: batched writes of precomputed vectors, deletes by file, cosine queries.

    ``fingerprint`` is the embedder the caller's vectors come from; None when the caller only reads or deletes.
    """

    def __init__(self, collection: Any, max_batch: int, fingerprint: str | None, url: str | None = None) -> None:
        self._collection = collection
        self._max_batch = max_batch
        self.name: str = collection.name
        self.fingerprint = fingerprint
        self.url = url  # the Chroma server's, None for an embedded store

    @property
    def built_with(self) -> str | None:
        return (self._collection.metadata or {}).get(EMBEDDER_KEY)

    def check_embedder(self) -> None:
        """Refuse to mix vectors of two embedders in one collection."""
        if self.fingerprint is not None and self.built_with not in (None, self.fingerprint):
            raise KuraError(
                f"collection '{self.name}' was built with embedder {self.built_with}, but the configured one is "
                f"{self.fingerprint}; ingest into a new collection (--collection NAME) or rebuild it with --reembed"
            )

    @_reaching
    def count(self) -> int:
        return int(self._collection.count())

    @property
    def writes(self) -> int:
        """How many writes this process made to this collection: with ``count``, whether it changed."""
        return _WRITES[self.name]

    @_reaching
    def upsert(
        self, ids: Sequence[str], vectors: Any, texts: Sequence[str], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        """Write in slices of Chroma's own max batch size; upsert makes a repeated write harmless."""
        _WRITES[self.name] += 1
        for start in range(0, len(ids), self._max_batch):
            end = start + self._max_batch
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    @_reaching
    def delete_file(self, key: str) -> None:
        _WRITES[self.name] += 1
        self._collection.delete(where={"key": key})

    @_reaching
    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        found = self._collection.query(
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

    @_reaching
    def with_vectors(self, ids: Sequence[str]) -> list[StoredChunk]:
        """The chunks of ``ids`` that still exist, with their stored vectors."""
        got = self._collection.get(ids=list(ids), include=["embeddings", "documents", "metadatas"])
        rows = zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"], strict=True)
        return [StoredChunk(i, d or "", dict(m or {}), e) for i, e, d, m in rows]

    @_reaching
    def chunk_after(self, metadata: dict[str, Any]) -> str | None:
        """The text of the chunk that follows this one in its file (None after the last, or without an index)."""
        key, index = metadata.get("key"), metadata.get("chunk")
        if not isinstance(key, str) or not isinstance(index, int):
            return None
        got = self._collection.get(where={"$and": [{"key": key}, {"chunk": index + 1}]}, include=["documents"])
        return (got["documents"] or [None])[0]

    @_reaching
    def all_chunks(self, batch: int = 5000) -> list[tuple[str, str, dict[str, Any]]]:
        """Every (id, text, metadata), paged, for keyword search and listings."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        offset = 0
        while True:
            page = self._collection.get(include=["documents", "metadatas"], limit=batch, offset=offset)
            rows = zip(page["ids"], page["documents"], page["metadatas"], strict=True)
            out += [(i, d or "", dict(m or {})) for i, d, m in rows]
            if len(page["ids"]) < batch:
                return out
            offset += batch


class VectorStore:
    """The configured store: its collections listed, opened and dropped by name."""

    def __init__(self, client: Any, url: str | None = None) -> None:
        self._client = client
        self.url = url  # the Chroma server's, None for an embedded store

    @_reaching
    def names(self) -> list[str]:
        return sorted(c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections())

    @_reaching
    def collections(self) -> list[CollectionInfo]:
        """Every collection with its chunk count and the embedder it was built with."""
        found = [self._client.get_collection(name) for name in self.names()]
        return [CollectionInfo(c.name, int(c.count()), (c.metadata or {}).get(EMBEDDER_KEY)) for c in found]

    @_reaching
    def open(self, name: str, fingerprint: str | None = None) -> ChromaStore:
        """The named collection. Given the embedder's ``fingerprint`` (to write, or to check a reader's embedder)
        it is created when missing and records that embedder; without one it must exist already."""
        from chromadb.errors import InvalidArgumentError

        try:
            if fingerprint is None:
                if name not in self.names():
                    raise KuraError(f"no collection named '{name}'; `kura collections` lists them")
                collection = self._client.get_collection(name)
            else:
                collection = self._client.get_or_create_collection(
                    name=name,
                    embedding_function=None,
                    metadata={EMBEDDER_KEY: fingerprint},
                    configuration=COSINE,
                )
        except InvalidArgumentError as exc:  # a --collection Chroma refuses: its rule, without a traceback
            raise KuraError(f"collection name {name!r} is not valid: {exc}") from None
        return ChromaStore(collection, int(self._client.get_max_batch_size()), fingerprint, self.url)

    @_reaching
    def drop(self, name: str) -> None:
        if name not in self.names():
            raise KuraError(f"no collection named '{name}'; `kura collections` lists them")
        self._client.delete_collection(name)


def connect(settings: Settings) -> VectorStore:
    return VectorStore(_client(settings), settings.vectorstore.url)


class Fingerprinted(Protocol):
    """The store needs only this of an embedder: which vectors it makes, to keep two kinds apart."""

    def fingerprint(self) -> str: ...


def open_store(settings: Settings, embedder: Fingerprinted, collection: str | None = None) -> ChromaStore:
    """The named (or configured) collection, for the embedder given: created when missing."""
    return connect(settings).open(collection or settings.vectorstore.collection, embedder.fingerprint())
