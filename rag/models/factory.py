"""The one place that picks a backend per model from settings and builds it, preparing on first use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import openvino as ov

from rag.config import Settings
from rag.errors import KuraError, short_reason
from rag.models.embedder import OpenVINOEmbedder
from rag.models.llm import ChatLLM
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
    return _load(model, lambda: OpenVINOEmbedder(model, settings.embedder, openvino_core(settings, cached)))


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
        cache = str(cache_dir(settings)) if cached else None
        return _load(model, lambda: kind(model, settings.llm, openvino_core(settings, cached=False), cache))
    if backend == "openai":
        from rag.models.openai_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM(settings.llm)
    raise KuraError(f"llm.backend '{backend}' is not supported; use 'openvino' or 'openai'")
