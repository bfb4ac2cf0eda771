"""The one place that picks a backend per model from settings and builds it, preparing on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import openvino as ov

from rag.config import Settings
from rag.devices import DeviceChoice
from rag.errors import KuraError, short_reason
from rag.models.embedder import EmbedStats, Kind, OpenVINOEmbedder, fingerprint
from rag.models.llm import ChatLLM, GenerationOptions, Message
from rag.models.prepare import PreparedModel, Say, prepare

T = TypeVar("T")


def cache_dir(settings: Settings) -> Path:
    """OpenVINO's compiled-model cache: a second start skips compilation."""
    return settings.models_dir / "cache"


def openvino_core(settings: Settings, cached: bool = True) -> ov.Core:
    core = ov.Core()
    if cached:
        path = cache_dir(settings)
        path.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(path)})
    return core


def _load(model: PreparedModel, build: Callable[[], T]) -> T:
    """A damaged model folder (truncated weights, a missing tokenizer file) is one clear line, not a traceback."""
    try:
        return build()
    except KuraError:
        raise
    except Exception as exc:
        fix = "restore it" if model.source.kind == "openvino" else "delete that folder and run `kura models prepare`"
        raise KuraError(f"{model.role}: cannot load the model in {model.path} ({short_reason(exc)}); {fix}") from None


def load_embedder(settings: Settings, say: Say = lambda _: None, cached: bool = True) -> OpenVINOEmbedder:
    model = prepare("embedder", settings, say)
    say("loading the embedding model...")
    return _load(model, lambda: OpenVINOEmbedder(model, settings.embedder, openvino_core(settings, cached)))


class PendingLLM:
    """The language model, loading in a thread while the caller goes on: ``kura ask`` loads the embedder,
    opens the store and retrieves meanwhile, and waits only where the model is first needed (packing the
    prompt), so a question Kura abstains on early never waits for it. The LLM's load (about 2.5 s from the
    compiled-model cache here) was the longest step before the first answer token of ``kura ask``."""

    def __init__(self, load: Callable[[], ChatLLM]) -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kura-llm-load")
        self._loading: Future[ChatLLM] = pool.submit(load)
        pool.shutdown(wait=False)  # the one task still runs; nothing else is ever queued

    def _real(self) -> ChatLLM:
        return self._loading.result()  # a load failure (one KuraError line) is raised here, at first use

    @property
    def name(self) -> str:
        return self._real().name

    @property
    def device_choice(self) -> DeviceChoice:
        return self._real().device_choice

    @property
    def context_window(self) -> int:
        return self._real().context_window

    @property
    def thinks(self) -> bool:
        return self._real().thinks

    @property
    def constrains(self) -> bool:
        return self._real().constrains

    def starts_in_think(self, messages: list[Message]) -> bool:
        return self._real().starts_in_think(messages)

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        return self._real().stream(messages, options)

    def count_tokens(self, text: str) -> int:
        return self._real().count_tokens(text)


class LazyEmbedder:
    """The configured embedder, compiled on first use: an ingest where nothing changed, or a dry run, decides
    by fingerprint and content hashes alone and never pays for loading the encoder (most of the 8 s such a
    run took on data/sample)."""

    def __init__(self, settings: Settings, say: Say = lambda _: None) -> None:
        self._settings = settings
        self._say = say
        self._model = prepare("embedder", settings, say)
        self._loaded: OpenVINOEmbedder | None = None
        self._failed: KuraError | None = None
        self._lock = threading.Lock()  # ingest's parser threads count tokens: the first one loads, once

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        """Load now: before a new collection is created, so a model that cannot load leaves none behind."""
        self._real()

    def _real(self) -> OpenVINOEmbedder:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._loaded is None:
                self._say("loading the embedding model...")
                model, core = self._model, openvino_core(self._settings)
                try:
                    self._loaded = _load(model, lambda: OpenVINOEmbedder(model, self._settings.embedder, core))
                except KuraError as exc:
                    self._failed = exc
                    raise
            return self._loaded

    @property
    def max_length(self) -> int:
        return self._settings.embedder.shapes()[-1]

    @property
    def stats(self) -> EmbedStats:
        return self._real().stats

    @property
    def name(self) -> str:
        return self._model.source.name

    @property
    def device_choice(self) -> DeviceChoice:
        return self._real().device_choice

    def embed(self, texts: list[str], kind: Kind = "raw") -> np.ndarray:
        return self._real().embed(texts, kind)

    def count_tokens(self, text: str) -> int:
        return self._real().count_tokens(text)

    def token_counter(self) -> Callable[[str], int]:
        # Asked for only when files are to be parsed, and then they are embedded too: loading now costs nothing extra.
        return self._real().token_counter()

    def fingerprint(self) -> str:
        return fingerprint(self._model, self._settings.embedder)


def load_llm(settings: Settings, say: Say = lambda _: None, cached: bool = True, concurrent: bool = False) -> ChatLLM:
    """``concurrent``: the caller serves several users at once (``kura serve``), which ``engine: auto`` batches."""
    backend = settings.llm.backend
    if backend == "openvino":
        from rag.models.batching_llm import OpenVINOBatchingLLM
        from rag.models.llm import OpenVINOLLM

        engine = settings.llm.engine
        batching = engine == "batching" or (engine == "auto" and concurrent)
        kind = OpenVINOBatchingLLM if batching else OpenVINOLLM
        model = prepare("llm", settings, say)
        say("loading the language model...")
        cache = str(cache_dir(settings)) if cached else None
        return _load(model, lambda: kind(model, settings.llm, openvino_core(settings, cached=False), cache))
    if backend == "openai":
        from rag.models.openai_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM(settings.llm)
    raise KuraError(f"llm.backend '{backend}' is not supported; use 'openvino' or 'openai'")
