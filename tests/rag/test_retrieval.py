"""Retrieval: keyword tokens, RRF, MMR and BM25 alone, then the hybrid retriever over an embedded Chroma
filled through the real ingest with the hashed embedder (no model is loaded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from rag.config import RetrievalSettings, Settings
from rag.retrieval import RRF_K, HybridRetriever, KeywordIndex, _mmr, keyword_tokens, rrf
from rag.store import ChromaStore, open_store
from tests.fakes import HashEmbedder
from tests.helpers import fake_collection

DOCS = {
    "vault.md": "# Vault\n\nThe vault code is 4711 and only Alice may know it.\n",
    "canteen.md": "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n",
    "printer-a.md": "# Printers\n\nPrinter toner is kept in room B next to the printer.\n",
    "printer-b.md": "# Printers\n\nPrinter toner is kept in room B next to the printer.\n",
    "printer-c.md": "# Printers\n\nThe printer on floor two also prints posters in colour.\n",
    "kaigi.md": "# 会議\n\n三階の会議室は予約が必要です\n",
}


def test_keyword_tokens_keep_versions_and_codes_whole() -> None:
    assert keyword_tokens("Upgrade to 10.4.2, see ERR-42 at 12:30 in Größe") == [
        "upgrade", "to", "10.4.2", "see", "err-42", "at", "12:30", "in", "größe",
    ]  # fmt: skip


def test_keyword_tokens_split_a_slash() -> None:
    assert keyword_tokens("port 4443/tcp") == ["port", "4443", "tcp"]


def test_keyword_tokens_make_cjk_bigrams() -> None:
    assert keyword_tokens("東京都の会議室") == ["東京", "京都", "都の", "の会", "会議", "議室"]
    assert keyword_tokens("a 東 b") == ["a", "b", "東"]  # a single character stays one token


def test_rrf_sums_reciprocal_ranks() -> None:
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
    assert rrf([["a", "b", "c"], ["c", "a", "d"]]) == ["a", "c", "b", "d"]
    assert RRF_K == 60


def test_rrf_rewards_agreement_over_one_first_place() -> None:
    assert rrf([["x", "both"], ["y", "both"], ["z", "both"]])[0] == "both"


def test_rrf_of_nothing_is_nothing() -> None:
    assert rrf([[], []]) == []


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_mmr_passes_over_a_near_duplicate() -> None:
    query = unit(1, 0, 0)
    vectors = np.vstack([unit(1, 0.3, 0), unit(1, 0.3, 0), unit(1, -0.35, 0)])  # 1 repeats 0; 2 is a bit less relevant
    assert _mmr(query, vectors, 2) == [0, 2]


def test_mmr_without_diversity_is_plain_relevance_order() -> None:
    query = unit(1, 0, 0)
    vectors = np.vstack([unit(0.5, 1, 0), unit(1, 0.1, 0), unit(1, 0.1, 0.01)])
    assert _mmr(query, vectors, 3, diversity=0.0) == [1, 2, 0]


def test_mmr_never_returns_more_than_it_has() -> None:
    assert _mmr(unit(1, 0), np.vstack([unit(1, 0)]), 5) == [0]


@dataclass
class ListStore:
    """Just what KeywordIndex reads from a store."""

    chunks: list[tuple[str, str, dict[str, Any]]]
    name: str = "listed"
    reads: int = field(default=0)
    writes: int = field(default=0)

    def count(self) -> int:
        return len(self.chunks)

    def all_chunks(self) -> list[tuple[str, str, dict[str, Any]]]:
        self.reads += 1
        return list(self.chunks)


def test_bm25_finds_exact_tokens_and_headings() -> None:
    store = ListStore([
        ("a", "The VPN gateway listens on port 4443.", {}),
        ("b", "Badges are issued at reception.", {"heading": "Security"}),
        ("c", "Lunch is served at noon.", {}),
    ])  # fmt: skip
    index = KeywordIndex()
    assert index.search(store, "4443", 3) == ["a"]  # type: ignore[arg-type]
    assert index.search(store, "security", 3) == ["b"]  # type: ignore[arg-type]
    assert index.search(store, "nothing matches", 3) == []  # type: ignore[arg-type]
    assert store.reads == 1  # built once while the collection's size stays the same


def test_bm25_rebuilds_when_the_collection_grows() -> None:
    store = ListStore([("a", "alpha", {}), ("b", "beta", {})])
    index = KeywordIndex()
    assert index.search(store, "gamma", 3) == []  # type: ignore[arg-type]
    store.chunks.append(("c", "gamma", {}))
    assert index.search(store, "gamma", 3) == ["c"]  # type: ignore[arg-type]
    assert store.reads == 2


def test_bm25_rebuilds_after_an_edit_that_keeps_the_size() -> None:
    store = ListStore([("a", "alpha", {}), ("x", "other", {}), ("y", "words", {})])
    index = KeywordIndex()
    assert index.search(store, "alpha", 3) == ["a"]  # type: ignore[arg-type]
    store.chunks[0], store.writes = ("b", "beta", {}), 2  # a watched one-chunk file saved with new text
    assert index.search(store, "beta", 3) == ["b"]  # type: ignore[arg-type]


def test_document_share_counts_documents_not_chunks() -> None:
    """What retrieval.rare_name_share reads: in how many of the collection's files a keyword occurs."""
    store = ListStore([
        ("a1", "nginx and apache", {"path": "a.txt"}),
        ("a2", "apache again", {"path": "a.txt"}),
        ("b1", "apache only", {"path": "b.txt"}),
    ])  # fmt: skip
    index = KeywordIndex()
    assert index.document_share() is None  # nothing indexed yet: nothing is known to be rare
    index.search(store, "apache", 3)  # type: ignore[arg-type]
    share = index.document_share()
    assert share is not None
    assert (share("apache"), share("nginx"), share("robocopy")) == (1.0, 0.5, 0.0)
    stems = index.document_share(stems=True)
    assert stems is not None and (stems("apach"), stems("ngin"), stems("nginx")) == (1.0, 0.0, 0.5)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, HashEmbedder, ChromaStore]:
    settings, embedder = fake_collection(tmp_path_factory.mktemp("retrieval"), DOCS)
    return settings, embedder, open_store(settings, embedder)


def retriever(filled: tuple[Settings, HashEmbedder, ChromaStore], reranker: Any = None, **changes: Any) -> Any:
    settings, embedder, store = filled
    return HybridRetriever(store, embedder, settings.retrieval.model_copy(update=changes), reranker)


def sources(hits: list[Any]) -> list[str]:
    return [hit.metadata["source"] for hit in hits]


def test_vector_search_ranks_the_matching_file_first_and_keeps_its_cosine(filled: Any) -> None:
    _, embedder, _ = filled
    found = retriever(filled, mode="vector").retrieve("What is the vault code?", 2)
    assert sources(found.hits)[0] == "vault.md"
    expected = embedder.vector("What is the vault code?") @ embedder.vector("Vault\n" + found.hits[0].text)
    assert found.hits[0].score == pytest.approx(float(expected), abs=1e-5)
    assert found.best_score == pytest.approx(found.hits[0].score)


def test_hybrid_finds_by_cjk_bigrams_what_the_vectors_miss(filled: Any) -> None:
    found = retriever(filled, mode="hybrid").retrieve("会議室", 1)
    assert sources(found.hits) == ["kaigi.md"]
    assert found.hits[0].score < 0.25  # kept its own (low) cosine: abstention still decides on it


def test_mmr_passes_over_the_duplicate_file(filled: Any) -> None:
    question = "Where is the printer toner kept?"
    plain = sources(retriever(filled, mode="vector").retrieve(question, 2).hits)
    diverse = sources(retriever(filled, mode="mmr").retrieve(question, 2).hits)
    assert sorted(plain) == ["printer-a.md", "printer-b.md"]
    assert diverse[0] == plain[0] and diverse[1] not in plain


@dataclass
class PreferCanteen:
    """A reranker that puts anything about the canteen first."""

    seen: list[int] = field(default_factory=list)

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        self.seen.append(len(texts))
        return np.array([1.0 if "canteen" in text else 0.0 for text in texts])


def test_reranker_orders_a_wide_pool(filled: Any) -> None:
    reranker = PreferCanteen()
    found = retriever(filled, reranker, mode="vector", rerank_pool=20).retrieve("What is the vault code?", 1)
    assert sources(found.hits) == ["canteen.md"]
    assert reranker.seen == [len(DOCS)]  # the whole pool, not just k
    assert found.rerank_ms >= 0.0
    assert found.best_score > found.hits[0].score  # the best vector hit still counts for abstention


def test_empty_collection_retrieves_nothing(filled: Any) -> None:
    settings, embedder, _ = filled
    empty = open_store(settings, embedder, "empty")
    found = HybridRetriever(empty, embedder, RetrievalSettings()).retrieve("anything", 3)
    assert (found.hits, found.best_score) == ([], 0.0)


def test_rrf_weights_each_ranking() -> None:
    assert rrf([["a", "b"], ["b", "a"]], [0.25, 1.0]) == ["b", "a"]


def test_a_question_not_in_english_counts_its_vectors_less(filled: Any) -> None:
    weighted = retriever(filled, other_language_vector_weight=0.25)
    assert weighted._weights("Where is the vault code?") == (1.0, 1.0)
    assert weighted._weights("Wo ist der Code für den Tresor?") == (0.25, 1.0)
    assert weighted._weights("会議室の予約は必要ですか?") == (0.25, 1.0)


def test_bm25_finds_a_chunk_by_its_file_name_when_asked_to() -> None:
    store = ListStore([
        ("grep", "-i, --ignore-case ignores case distinctions.", {"file_name": "man-ja-grep.1.txt"}),
        ("less", "-i, --ignore-case ignores case in searches.", {"file_name": "man-ja-less.1.txt"}),
        ("other", "Nothing about it.", {"file_name": "notes.md"}),
    ])  # fmt: skip
    assert KeywordIndex(file_names=True).search(store, "grep ignore case", 1) == ["grep"]  # type: ignore[arg-type]
    assert "grep" not in KeywordIndex().search(store, "grep", 3)  # type: ignore[arg-type]
