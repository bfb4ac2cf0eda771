"""Stand-ins for the models, so tests of Kura's own logic run in milliseconds without a model conversion.

``ScriptedLLM`` replays replies written by the test and records every prompt it is sent; ``HashEmbedder``
gives deterministic vectors from hashed words (texts sharing words are close, others nearly orthogonal).
Both fake only the models: real models stay in the tests of the parts users get.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.devices import DeviceChoice
from rag.models.embedder import EmbedStats, Kind
from rag.models.llm import GenerationOptions, Message
from tests.fake_tokens import fake_document_tokens, fake_tokens


@dataclass
class ScriptedLLM:
    """A ``ChatLLM`` that answers with the next scripted reply, streamed in pieces of ``piece_chars``.

    When the script runs out the last reply is repeated. ``calls`` holds every (messages, options) pair
    it received, in order, so a test can check what reached the model.
    """

    replies: list[str] = field(default_factory=lambda: ["OK"])
    name: str = "scripted-llm"
    context_window: int = 4096
    thinks: bool = False
    constrains: bool = False
    opens_think: bool = False
    piece_chars: int = 4
    device_choice: DeviceChoice = field(default_factory=lambda: DeviceChoice("CPU"))
    calls: list[tuple[list[Message], GenerationOptions]] = field(default_factory=list)
    closed: int = 0

    @property
    def messages(self) -> list[list[Message]]:
        """The prompts alone, as ``RecordingLLM.calls`` records them."""
        return [messages for messages, _ in self.calls]

    def count_tokens(self, text: str) -> int:
        return len(fake_tokens(text))

    def starts_in_think(self, messages: list[Message]) -> bool:
        return self.opens_think

    def _next_reply(self) -> str:
        index = min(len(self.calls) - 1, len(self.replies) - 1)
        return self.replies[index]

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        self.calls.append((list(messages), options))
        reply = self._next_reply()
        return self._pieces(reply, options)

    def _pieces(self, reply: str, options: GenerationOptions) -> Iterator[str]:
        """A piece per "token"; a set ``options.stop`` ends the reply at the next one, as the real backends do."""
        try:
            for start in range(0, len(reply), self.piece_chars):
                if options.stop is not None and options.stop.count(1):
                    return
                yield reply[start : start + self.piece_chars]
        finally:
            self.closed += 1


class HashEmbedder(Embeddings):
    """Deterministic unit vectors: each lower-cased word adds +1 or -1 to one of ``dimension`` hashed slots.

    The same interface as ``OpenVINOEmbedder`` as Kura calls it (``embed``, ``count_tokens``,
    ``max_length``, ``fingerprint``, ``stats``, ``device_choice``) and a LangChain ``Embeddings``.
    Query and document prefixes are not modelled: ``kind`` only counts in ``kinds``.
    """

    def __init__(self, dimension: int = 256, max_length: int = 128, name: str = "hash-embedder") -> None:
        self.dimension = dimension
        self.max_length = max_length
        self.name = name
        self.stats = EmbedStats()
        self.device_choice = DeviceChoice("CPU")
        self.kinds: list[Kind] = []

    @property
    def device(self) -> str:
        return self.device_choice.device

    def fingerprint(self) -> str:
        return f"{self.name}:{self.dimension}:{self.max_length}"

    def count_tokens(self, text: str) -> int:
        """Words and punctuation, plus two special tokens, as a real encoder counts [CLS] and [SEP]."""
        return fake_document_tokens(text)

    def token_counter(self) -> Callable[[str], int]:
        return fake_document_tokens

    def _slot(self, word: str) -> tuple[int, float]:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, 1.0 if value >> 63 else -1.0

    def vector(self, text: str) -> np.ndarray:
        words = [w.lower() for w in fake_tokens(text) if w.isalnum()]
        out = np.zeros(self.dimension, dtype=np.float32)
        if len(words) + 2 > self.max_length:
            self.stats.truncated += 1
            words = words[: self.max_length - 2]
        for word in words:
            slot, sign = self._slot(word)
            out[slot] += sign
        norm = float(np.linalg.norm(out))
        return out / norm if norm else out

    def embed(self, texts: Iterable[str], kind: Kind = "raw") -> np.ndarray:
        texts = list(texts)
        self.kinds.append(kind)
        self.stats.texts += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self.vector(text) for text in texts])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts, kind="document").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text], kind="query")[0].tolist()


def fake_parts(**llm: Any) -> tuple[HashEmbedder, ScriptedLLM]:
    """A fresh embedder and LLM pair; keyword arguments go to the LLM."""
    return HashEmbedder(), ScriptedLLM(**llm)
