"""``kura doctor``: what Kura runs on here and why, measured, so a user can see the fallback happen."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import openvino as ov

import rag
from rag.config import Settings
from rag.models.factory import cache_dir, load_embedder, load_llm
from rag.models.llm import GenerationOptions, complete
from rag.models.prepare import Say

SMOKE_QUESTION = "Kura keeps its vectors in Chroma. Where does Kura keep its vectors? Answer in one sentence."


def _timed(load: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = load()
    return value, time.perf_counter() - started


def _loads(load: Callable[[bool], Any]) -> tuple[Any, dict[str, float]]:
    """Load without the compiled-model cache, then from it (primed first, so 'cached' is a real hit)."""
    _, uncached = _timed(lambda: load(False))
    load(True)
    model, cached = _timed(lambda: load(True))
    return model, {"load_s_uncached": round(uncached, 3), "load_s_cached": round(cached, 3)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_doctor(settings: Settings, say: Say = lambda _: None) -> dict[str, Any]:
    """Load every configured model and run one tiny embed and generate; return the report."""
    core = ov.Core()
    report: dict[str, Any] = {
        "kura": rag.__version__,
        "config_file": str(settings.config_file) if settings.config_file else None,
        "openvino": ov.get_version(),
        "available_devices": core.available_devices,
        "models_dir": str(settings.models_dir),
        "cache_dir": str(cache_dir(settings)),
        "models": {},
    }
    embedder, embed_loads = _loads(lambda cached: load_embedder(settings, say, cached))
    _, embed_s = _timed(lambda: embedder.embed(["Kura answers questions from your own documents."]))
    report["models"]["embedder"] = {
        "source": embedder.model.source.spec,
        "path": str(embedder.model.path),
        "size_mb": round(embedder.model.size_bytes / 1e6, 1),
        "precision": settings.embedder.precision,
        "shapes": embedder.shapes_label,
        "configured_device": settings.embedder.device,
        "device": embedder.device_choice.device,
        "why": embedder.device_choice.explain(),
        **embed_loads,
        "smoke_embed_s": round(embed_s, 3),
    }
    llm, llm_loads = _loads(lambda cached: load_llm(settings, say, cached))
    options = GenerationOptions(max_new_tokens=32, temperature=0.0)
    reply, generate_s = _timed(lambda: complete(llm, [{"role": "user", "content": SMOKE_QUESTION}], options))
    prepared = getattr(llm, "model", None)
    report["models"]["llm"] = {
        "backend": settings.llm.backend,
        "source": settings.llm.source,
        "name": llm.name,
        "path": str(prepared.path) if prepared else None,
        "size_mb": round(prepared.size_bytes / 1e6, 1) if prepared else None,
        "weight_format": settings.llm.weight_format,
        "context_window": llm.context_window,
        "configured_device": settings.llm.device,
        "device": llm.device_choice.device,
        "why": llm.device_choice.explain(),
        **llm_loads,
        "smoke_generate_s": round(generate_s, 3),
        "smoke_reply": reply.strip(),
    }
    report["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"Kura {report['kura']}   OpenVINO {report['openvino']}",
        f"config file:       {report['config_file'] or '(defaults, no config file)'}",
        f"available devices: {', '.join(report['available_devices'])}",
        f"models dir:        {report['models_dir']}",
    ]
    for role, info in report["models"].items():
        lines += [
            f"{role}:",
            f"  source:   {info['source']}",
            f"  path:     {info['path']} ({info['size_mb']} MB)",
            f"  device:   {info['device']} (configured {info['configured_device']}) - {info['why']}",
            f"  load:     {info['load_s_uncached']:.2f} s first (no cache), {info['load_s_cached']:.2f} s cached",
        ]
        if role == "embedder":
            lines.append(f"  shapes:   {info['shapes']} ({info['precision']})")
        else:
            lines.append(f"  smoke:    {info['smoke_reply']!r} in {info['smoke_generate_s']:.2f} s")
    lines.append(f"peak RSS:          {report['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
