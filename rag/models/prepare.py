"""Convert each configured model to OpenVINO IR once, and know when that work is already done.

Each converted folder carries a manifest of the source fingerprint and the options it was built
with; a matching manifest means no work. Conversion writes to a temporary folder renamed into place,
so an interrupted run never leaves a half-converted model that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from rag.config import Settings
from rag.errors import KuraError
from rag.models import convert
from rag.models.sources import ModelSource, resolve_source

CONVERTER_VERSION = 1
MANIFEST = "kura-manifest.json"
Role = Literal["llm", "embedder", "reranker"]
Say = Callable[[str], None]


@dataclass
class PreparedModel:
    """An OpenVINO folder ready to load, and whether this call had to build it."""

    role: Role
    source: ModelSource
    path: Path
    options: dict[str, Any]
    converted: bool = False
    seconds: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def _options(role: Role, settings: Settings) -> dict[str, Any]:
    if role == "llm":
        return {"weight_format": settings.llm.weight_format}
    if role == "reranker":
        return {"precision": "fp32"}
    return {"precision": settings.embedder.precision}


def _source(role: Role, settings: Settings) -> ModelSource:
    specs = {"llm": settings.llm.source, "embedder": settings.embedder.source, "reranker": settings.retrieval.reranker}
    spec = specs[role]
    if not spec:
        raise KuraError(f"no {role} is configured")
    return resolve_source(spec, role, settings.base_dir, settings.network.allow_model_download)


def _target(role: Role, source: ModelSource, options: dict[str, Any], settings: Settings) -> Path:
    tag = "-".join(str(v) for v in options.values())
    return settings.models_dir / role / f"{source.name}-{tag}"


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_current(manifest: dict[str, Any], source: ModelSource, options: dict[str, Any]) -> bool:
    return (
        manifest.get("converter") == CONVERTER_VERSION
        and manifest.get("fingerprint") == source.fingerprint()
        and manifest.get("options") == options
    )


@contextlib.contextmanager
def _quiet(log_file: Path) -> Iterator[None]:
    """Send the converters' progress bars and warnings to a log file; Kura prints its own lines."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    os.environ.setdefault("TQDM_DISABLE", "1")
    with (
        log_file.open("w", encoding="utf-8") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def _convert(role: Role, source: ModelSource, options: dict[str, Any], work: Path) -> dict[str, Any]:
    if role == "reranker":
        return convert.export_reranker(source, work)
    if role == "embedder":
        if source.kind == "gguf":
            raise KuraError(f"embedder.source {source.spec}: GGUF embedders are not supported; use a model folder")
        return convert.export_embedder(source, work, options["precision"])
    hf_dir = source.path
    if source.kind == "gguf":
        hf_dir = convert.gguf_to_hf(source, work / "_hf")
    details = convert.export_llm(hf_dir, work, options["weight_format"])
    shutil.rmtree(work / "_hf", ignore_errors=True)
    return details


def prepare(role: Role, settings: Settings, say: Say = lambda _: None) -> PreparedModel:
    """Make sure the configured model exists as OpenVINO IR; convert it only if it does not."""
    source = _source(role, settings)
    options = _options(role, settings)
    if source.kind == "openvino":
        return PreparedModel(role, source, source.path, options)
    target = _target(role, source, options, settings)
    manifest = _read_manifest(target)
    if _is_current(manifest, source, options):
        return PreparedModel(role, source, target, options, manifest=manifest)

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        manifest = _read_manifest(target)
        if _is_current(manifest, source, options):
            return PreparedModel(role, source, target, options, manifest=manifest)
        what = " ".join(str(v) for v in options.values())
        say(f"{role}: converting {source.name} ({source.kind} -> OpenVINO {what}), once; this takes a minute")
        started = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        log_file = target.parent / f"{target.name}.convert.log"
        try:
            with _quiet(log_file):
                details = _convert(role, source, options, work)
        except KuraError:
            shutil.rmtree(work, ignore_errors=True)
            raise
        except Exception as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise KuraError(
                f"{role}: converting {source.spec} failed ({type(exc).__name__}: {exc}); see {log_file}"
            ) from exc
        seconds = time.perf_counter() - started
        manifest = {
            "converter": CONVERTER_VERSION,
            "source": source.spec,
            "kind": source.kind,
            "fingerprint": source.fingerprint(),
            "options": options,
            "details": details,
            "seconds": round(seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        convert.write_json(work / MANIFEST, manifest)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    return PreparedModel(role, source, target, options, converted=True, seconds=seconds, manifest=manifest)


def describe(model: PreparedModel) -> str:
    """The one summary line ``kura models prepare`` prints per model."""
    size = model.size_bytes / 1e6
    what = " ".join(str(v) for v in model.options.values())
    if model.source.kind == "openvino":
        state = "using the OpenVINO folder as is"
    elif model.converted:
        state = f"converted in {model.seconds:.1f} s"
    else:
        state = "up to date, nothing to do"
    return f"{model.role}: {model.source.name} {what} {state} ({size:.0f} MB) -> {model.path}"
