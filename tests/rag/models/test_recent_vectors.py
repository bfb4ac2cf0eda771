"""The embedder answering uses remembers recent texts' vectors: each text is embedded once."""

from __future__ import annotations

import numpy as np

from rag.models.embedder import RecentVectors
from tests.fakes import HashEmbedder


class Counting(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed(self, texts: list[str], kind: str = "raw") -> np.ndarray:  # type: ignore[override]
        self.embedded += texts
        return super().embed(texts, kind)  # type: ignore[arg-type]


def test_each_text_is_embedded_once_and_the_vectors_are_the_same() -> None:
    inner = Counting()
    cached = RecentVectors(inner)
    first = cached.embed(["a b", "c d", "a b"], kind="document")
    again = cached.embed(["c d", "e f"], kind="document")
    assert inner.embedded == ["a b", "c d", "e f"]
    assert np.allclose(first, inner.embed(["a b", "c d", "a b"], kind="document"))
    assert np.allclose(again[0], first[1])


def test_a_query_and_a_document_of_the_same_text_are_told_apart() -> None:
    inner = Counting()
    cached = RecentVectors(inner)
    cached.embed(["same"], kind="query")
    cached.embed(["same"], kind="document")
    assert inner.embedded == ["same", "same"] and inner.kinds[-2:] == ["query", "document"]


def test_the_oldest_vectors_are_forgotten_past_the_size() -> None:
    inner = Counting()
    cached = RecentVectors(inner, size=2)
    cached.embed(["a", "b"])
    cached.embed(["a"])  # a is now the most recent
    cached.embed(["c"])  # b goes
    cached.embed(["a", "b"])
    assert inner.embedded == ["a", "b", "c", "b"]
    assert cached.embed([]).shape[0] == 0
    assert cached.fingerprint() == inner.fingerprint() and cached.max_length == inner.max_length
