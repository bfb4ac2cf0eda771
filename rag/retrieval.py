"""Retrieval: vector search, optionally fused with BM25 keyword search by reciprocal rank fusion.

Small embedders miss exact tokens (port numbers, error codes, product names) that keyword search
finds, and keyword search misses paraphrases; RRF needs no score calibration between the two. Every
hit keeps its cosine similarity to the question, the number abstention is decided on.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.analyzers import BigramAnalyzer, KeywordAnalyzer, guess_language, keyword_analyzer, keyword_tokens
from rag.config import RetrievalSettings
from rag.models.embedder import Embedder
from rag.models.reranker import OpenVINOReranker
from rag.store import ChromaStore, Hit

RRF_K = 60
NOT_ALPHANUMERIC = re.compile(r"[^0-9A-Za-z]+")
STEM = 5  # rag.grounding.PREFIX: the letters words are compared by elsewhere (imported there from here would loop)


def file_words(meta: dict[str, Any]) -> list[str]:
    """The words of a chunk's file name ("man-ja-grep.1.txt": man, ja, grep, 1): a man page's chunks seldom
    repeat the command's name, which the question names."""
    return keyword_tokens(NOT_ALPHANUMERIC.sub(" ", Path(str(meta.get("file_name", ""))).stem))


class KeywordIndex:
    """BM25 over a collection's chunks, rebuilt only when the collection's size changes or this process wrote it."""

    def __init__(self, analyzer: KeywordAnalyzer | None = None, file_names: bool = False) -> None:
        self.analyzer = analyzer or BigramAnalyzer()
        self.file_names = file_names
        self._lock = threading.Lock()
        self._built_for: tuple[str, int, int] | None = None
        self._ids: list[str] = []
        self._bm25: Any = None
        self._documents: dict[str, set[str]] = {}
        self._frequency: Counter[str] = Counter()
        self._stems: Counter[str] = Counter()

    def search(self, store: ChromaStore, query: str, k: int) -> list[str]:
        from rank_bm25 import BM25Okapi

        with self._lock:
            stamp = (store.name, store.count(), store.writes)
            if stamp != self._built_for:
                self._build(store.all_chunks(), BM25Okapi)
                self._built_for = stamp
            if self._bm25 is None:
                return []
            scores = self._bm25.get_scores(self.analyzer.terms(query, keyword_tokens(query)))
        order = np.argsort(-scores)[:k]
        return [self._ids[i] for i in order if scores[i] > 0]

    def _build(self, chunks: list[tuple[str, str, dict[str, Any]]], bm25: Callable[[list[list[str]]], Any]) -> None:
        """BM25 over the analyzer's terms (and the file name's words); the per-document words (what the name
        checks ask) stay :func:`keyword_tokens`, whatever the analyzer."""
        self._ids = [chunk_id for chunk_id, _, _ in chunks]
        texts = [f"{meta.get('heading', '')} {text}" for _, text, meta in chunks]
        words = [keyword_tokens(text) for text in texts]
        corpus = [self.analyzer.terms(text, tokens) for text, tokens in zip(texts, words, strict=True)]
        if self.file_names:
            corpus = [file_words(meta) + terms for (_, _, meta), terms in zip(chunks, corpus, strict=True)]
        self.analyzer.save()
        self._bm25 = bm25(corpus) if corpus else None
        self._documents = {}
        for (_, _, meta), tokens in zip(chunks, words, strict=True):
            self._documents.setdefault(str(meta.get("path", "")), set()).update(tokens)
        self._frequency = Counter(word for words in self._documents.values() for word in words)
        self._stems = Counter(s for words in self._documents.values() for s in {w[:STEM] for w in words})

    def document_count(self) -> int:
        """How many documents the collection had when last indexed."""
        return len(self._documents)

    def document_share(self, stems: bool = False) -> Callable[[str], float] | None:
        """The share of the collection's documents using a keyword (``stems``: a keyword opening with the
        given five letters), as last indexed; None before the first search (nothing known yet)."""
        if self._built_for is None:
            return None
        counts, total = self._stems if stems else self._frequency, max(1, len(self._documents))
        return lambda word: counts.get(word, 0) / total

    def document_words(self, path: str) -> Container[str]:
        """The keywords of one whole document (by its path) as last indexed; none before the first search."""
        return self._documents.get(path, set())


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None) -> list[str]:
    """Reciprocal rank fusion of several ranked id lists, each counting by its weight (default 1)."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, chunk_id in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank + 1)
    return sorted(scores, key=lambda chunk_id: -scores[chunk_id])


def _mmr(query: np.ndarray, vectors: np.ndarray, k: int, diversity: float = 0.3) -> list[int]:
    chosen: list[int] = []
    relevance = vectors @ query
    while len(chosen) < min(k, len(vectors)):
        if chosen:
            redundancy = (vectors @ vectors[chosen].T).max(axis=1)
            scores = (1 - diversity) * relevance - diversity * redundancy
            scores[chosen] = -np.inf
        else:
            scores = relevance
        chosen.append(int(np.argmax(scores)))
    return chosen


@dataclass
class Retrieval:
    hits: list[Hit]
    best_score: float
    rerank_ms: float = 0.0


class HybridRetriever:
    """The retrieval step the CLI, the UI and the eval share."""

    def __init__(
        self,
        store: ChromaStore,
        embedder: Embedder,
        settings: RetrievalSettings,
        reranker: OpenVINOReranker | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        analyzer = keyword_analyzer(settings.keyword_analyzer, cache_dir, settings.german_stems)
        self.keywords = KeywordIndex(analyzer, settings.keyword_file_names)

    def _vectors_of(self, ids: list[str]) -> dict[str, tuple[np.ndarray, str, dict[str, Any]]]:
        chunks = self.store.with_vectors(ids)
        return {c.id: (np.asarray(c.vector, dtype=np.float32), c.text, c.metadata) for c in chunks}

    def _weights(self, question: str) -> tuple[float, float]:
        """The vector and keyword rankings' weights in the fusion: a question not in English counts its
        vectors by ``other_language_vector_weight`` (an English-only embedder ranks such text near randomly)."""
        english = guess_language(question) == "en"
        return (1.0 if english else self.settings.other_language_vector_weight, 1.0)

    def retrieve(self, question: str, k: int | None = None) -> Retrieval:
        k = k or self.settings.top_k
        if self.store.count() == 0:
            return Retrieval([], 0.0)
        query = self.embedder.embed([question], kind="query")[0]
        pool = max(k * 4, 20)
        vector_hits = self.store.query(query.tolist(), min(pool, self.store.count()))
        ranking = [hit.id for hit in vector_hits]
        if self.settings.mode == "hybrid":
            ranking = rrf([ranking, self.keywords.search(self.store, question, pool)], self._weights(question))
        wide = self.settings.mode == "mmr" or self.reranker is not None
        candidates = ranking[: max(pool, self.settings.rerank_pool) if wide else k]
        data = self._vectors_of(candidates)
        candidates = [c for c in candidates if c in data]
        rerank_ms = 0.0
        if self.reranker is not None and candidates:
            started = time.perf_counter()
            candidates = candidates[: self.settings.rerank_pool]
            relevance = self.reranker.scores(question, [data[c][1] for c in candidates])
            candidates = [candidates[i] for i in np.argsort(-relevance)]
            rerank_ms = (time.perf_counter() - started) * 1000
        elif self.settings.mode == "mmr" and candidates:
            matrix = np.vstack([data[c][0] for c in candidates])
            candidates = [candidates[i] for i in _mmr(query, matrix, k)]
        hits = [Hit(c, data[c][1], data[c][2], float(data[c][0] @ query)) for c in candidates[:k]]
        best = max((hit.score for hit in vector_hits[:1]), default=0.0)
        return Retrieval(hits, max([best, *(hit.score for hit in hits)]), round(rerank_ms, 1))
