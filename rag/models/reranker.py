"""Optional cross-encoder reranker on OpenVINO: reads question and passage together, so it can tell
"mentions the topic" from "answers the question", which a bi-encoder's cosine cannot."""

from __future__ import annotations

import threading

import numpy as np
import openvino as ov

from rag.config import Settings
from rag.devices import device_chain, with_fallback
from rag.models.prepare import PreparedModel, Say, prepare

MAX_PAIR_TOKENS = 512


class OpenVINOReranker:
    def __init__(self, model: PreparedModel, settings: Settings, core: ov.Core) -> None:
        from transformers import AutoTokenizer

        self.model = model
        self.tokenizer = AutoTokenizer.from_pretrained(model.path)
        self._lock = threading.Lock()
        network = core.read_model(model.path / "openvino_model.xml")
        self._inputs = [port.get_any_name() for port in network.inputs]
        # Pairs vary in length, so the reranker keeps dynamic shapes; a static-only NPU falls through.
        chain = device_chain(settings.embedder.device, settings.embedder.fallback)
        self.compiled, self.device_choice = with_fallback(
            "reranker", core, chain, lambda device: core.compile_model(network, device)
        )

    def scores(self, question: str, passages: list[str]) -> np.ndarray:
        """One relevance score per passage; higher is more relevant."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        encoded = self.tokenizer(
            [question] * len(passages),
            passages,
            truncation=True,
            max_length=MAX_PAIR_TOKENS,
            padding=True,
            return_tensors="np",
        )
        feeds = {name: encoded[name].astype(np.int64) for name in self._inputs if name in encoded}
        with self._lock:
            logits = self.compiled(feeds)[0]
        return np.asarray(logits, dtype=np.float32).reshape(len(passages), -1)[:, -1]


def load_reranker(settings: Settings, say: Say = lambda _: None) -> OpenVINOReranker | None:
    if not settings.retrieval.reranker:
        return None
    from rag.models.factory import openvino_core

    return OpenVINOReranker(prepare("reranker", settings, say), settings, openvino_core(settings))
