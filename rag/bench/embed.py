"""Embedding throughput: Kura's OpenVINO embedder against sentence-transformers on PyTorch and on its own
OpenVINO backend (the strongest thing a user would pick instead).

Every variant embeds the same synthetic chunks in its own process; the parent then compares the
vectors: cosine with PyTorch's (fidelity), and for int8 whether each query's top hit is the one the
fp32 embedder finds (what retrieval actually feels), plus hit@1 against the chunk a question was
written from. Each variant's useful GFLOP/s (real tokens only) is set against the measured peak of
the precision it executes in (fp32, bf16 or int8), so a ratio says how close to the machine it is.
"""

from __future__ import annotations

import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rag.bench.corpus import synthetic_chunks
from rag.bench.failures import engine_failure
from rag.bench.isolate import PAUSE_S, Worker
from rag.bench.machine import encoder_flops, read_config
from rag.bench.timing import Plan, peak_rss_mb, summary
from rag.config import Settings

BASELINE = "sentence-transformers"
ST_OPENVINO = "sentence-transformers, OpenVINO backend"
WARMUP_TEXTS = 64
SLICE = 250  # chunks per interleaved call; a pass is plan.chunks / SLICE calls per variant
CALIBRATION_SEED = 7  # never the measured chunks' seed


@dataclass(frozen=True)
class Variant:
    name: str
    engine: str  # "openvino", "torch" or "st-openvino"
    precision: str = "fp32"  # fp32 | int8 (weights only, the product's) | int8-full(-ffn), fp32-f32 (bench-only)
    buckets: bool = True  # False: compiled at [max_length] only
    shapes_mode: str = "auto"  # auto: dynamic length-sorted batches off the NPU; static: the NPU's buckets

    @property
    def shapes_label(self) -> str:
        return "buckets" if self.buckets else "max_length only"


def variants(plan: Plan, settings: Settings) -> list[Variant]:
    shapes = "/".join(str(s) for s in settings.embedder.shapes())
    found = [
        Variant(BASELINE, "torch"),
        Variant(ST_OPENVINO, "st-openvino"),
        Variant("Kura fp32", "openvino"),
        Variant(f"Kura fp32, static {shapes} (the NPU's shapes)", "openvino", shapes_mode="static"),
    ]
    if plan.extra_variants:
        longest = settings.embedder.max_length
        found += [
            Variant(f"Kura fp32, static {longest} only", "openvino", buckets=False, shapes_mode="static"),
            # OpenVINO runs an fp32 IR in bf16 where the CPU has it (avx512_bf16, AMX): this shows what that buys.
            Variant("Kura fp32, f32 execution forced", "openvino", "fp32-f32"),
            Variant("Kura int8 weights", "openvino", "int8"),
            Variant("Kura full int8, nncf.quantize", "openvino", "int8-full"),
            Variant("Kura full int8, FFN outputs in float", "openvino", "int8-full-ffn"),
        ]
    return found


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sentence_transformer(settings: Settings, backend: Literal["torch", "openvino"]) -> Any:
    """The source model of Kura's embedder in sentence-transformers, as a user would load it instead: on
    PyTorch (``torch``) or on its OpenVINO backend (``openvino``: optimum-intel exports it at load)."""
    from sentence_transformers import SentenceTransformer

    from rag.models.sources import resolve_source

    source = resolve_source(settings.embedder.source, "embedder", settings.base_dir)
    with warnings.catch_warnings():  # the export's TracerWarnings, a page of them on stderr
        warnings.simplefilter("ignore")
        return SentenceTransformer(str(source.path), device="cpu", backend=backend)


def _openvino_embedder(settings: Settings, plan: Plan, variant: Variant) -> Any:
    import openvino as ov

    from rag.bench.quantize import full_int8_embedder
    from rag.models.embedder import OpenVINOEmbedder
    from rag.models.factory import load_embedder, openvino_core
    from rag.models.prepare import prepare

    custom = settings.model_copy(deep=True)
    custom.embedder.shapes_mode = variant.shapes_mode  # type: ignore[assignment]
    if not variant.buckets:
        custom.embedder.buckets = [custom.embedder.max_length]
    if variant.precision.startswith("int8-full"):
        calibration = [c.text for c in synthetic_chunks(plan.calibration, seed=CALIBRATION_SEED)]
        model = full_int8_embedder(custom, calibration, _say, keep_ffn_output=variant.precision == "int8-full-ffn")
        return OpenVINOEmbedder(model, custom.embedder, openvino_core(custom))
    if variant.precision == "fp32-f32":
        core = openvino_core(custom)
        core.set_property("CPU", {"INFERENCE_PRECISION_HINT": ov.Type.f32})
        return OpenVINOEmbedder(prepare("embedder", custom, _say), custom.embedder, core)
    custom.embedder.precision = variant.precision  # type: ignore[assignment]
    return load_embedder(custom, _say)


class EmbedEngine:
    """One variant loaded in a worker process; the parent calls ``one_pass`` round by round."""

    def __init__(self, settings: Settings, plan: Plan, variant: Variant, queries: list[str]) -> None:
        self.texts = [c.text for c in synthetic_chunks(plan.chunks)]
        self.queries = queries
        self.variant = variant
        self.embedder: Any = None
        started = time.perf_counter()
        self.info: dict[str, Any] = {"engine": variant.engine, "precision": variant.precision}
        self.info["shapes"] = variant.shapes_label
        self.info["buckets"] = variant.buckets
        if variant.engine == "torch":
            import torch

            model = sentence_transformer(settings, "torch")
            self.info["torch_threads"] = torch.get_num_threads()
            self.info["shapes"] = "dynamic (length-sorted batches of 32)"
            self.info["execution_precision"] = "f32 (torch)"

            def embed(batch: list[str]) -> np.ndarray:
                return np.asarray(model.encode(batch, normalize_embeddings=True, convert_to_numpy=True))

            self.embed = embed
        elif variant.engine == "st-openvino":
            self.embed = self._st_openvino(settings)
        else:
            self.embedder = _openvino_embedder(settings, plan, variant)
            compiled = self.embedder.primary
            self.info["execution_precision"] = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            self.info["shapes"] = self.embedder.shapes_label
            self.embed = self.embedder.embed
        self.info["load_s"] = round(time.perf_counter() - started, 2)
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self._round_stats = (0, 0, 0, 0)

    def _st_openvino(self, settings: Settings) -> Any:
        """sentence-transformers' own OpenVINO backend (optimum-intel), as a user would call it: exported from
        the same source model on load, dynamic shapes, its default batches of 32 sorted by length."""
        model = sentence_transformer(settings, "openvino")
        self.info["shapes"] = "dynamic (length-sorted batches of 32)"
        compiled: Any = getattr(model[0].auto_model, "request", None)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT") if hasattr(compiled, "get_property") else None
        self.info["execution_precision"] = hint.get_type_name() if hint is not None else "openvino default"

        def embed(batch: list[str]) -> np.ndarray:
            return np.asarray(model.encode(batch, normalize_embeddings=True, convert_to_numpy=True))

        return embed

    def warmup(self) -> None:
        self.embed(self.texts[:WARMUP_TEXTS])

    def embed_slice(self, start: int, end: int) -> float:
        """Seconds to embed texts[start:end]; a pass is its slices, and the last pass's vectors are compared."""
        stats = self.embedder.stats if self.embedder is not None else None
        if start == 0 and stats:
            self._round_stats = (stats.padded_rows, stats.truncated, stats.tokens, stats.padded_tokens)
        started = time.perf_counter()
        vectors = self.embed(self.texts[start:end]).astype(np.float32)
        seconds = time.perf_counter() - started
        if self.vectors.shape[0] != len(self.texts):
            self.vectors = np.zeros((len(self.texts), vectors.shape[1]), dtype=np.float32)
        self.vectors[start:end] = vectors
        if end == len(self.texts) and stats:
            self.info["padded_rows_per_pass"] = stats.padded_rows - self._round_stats[0]
            self.info["truncated_per_pass"] = stats.truncated - self._round_stats[1]
            tokens, padded = stats.tokens - self._round_stats[2], stats.padded_tokens - self._round_stats[3]
            self.info["padding_share"] = round(padded / max(tokens + padded, 1), 4)
        return seconds

    def results(self) -> dict[str, Any]:
        query_vectors = self.embed(self.queries).astype(np.float32)
        return {**self.info, "vectors": self.vectors, "query_vectors": query_vectors, "peak_rss_mb": peak_rss_mb()}


def _rotated(names: list[str], by: int) -> list[str]:
    return names[by % len(names) :] + names[: by % len(names)]


def _measure(settings: Settings, plan: Plan, queries: list[str], say: Any) -> dict[str, dict[str, Any]]:
    """Load every variant, then time the passes slice by slice across variants.

    A pass over the 2,000 chunks takes 30-200 s per variant; on a shared machine a burst of load lasts
    about that long, so timing whole passes one variant after another charges the burst to whichever
    variant ran then. Interleaving slices of ``SLICE`` chunks (order rotating) spreads it over all.
    """
    workers: dict[str, Worker] = {}
    results: dict[str, dict[str, Any]] = {}
    try:
        for variant in variants(plan, settings):
            say(f"bench embed: loading {variant.name}")
            try:
                workers[variant.name] = Worker(EmbedEngine, settings, plan, variant, queries)
                workers[variant.name].call("warmup")
            except Exception as exc:
                results[variant.name] = engine_failure("embed", variant.name, exc, variant.name == BASELINE, say)
        rates: dict[str, list[float]] = {name: [] for name in workers if name not in results}
        slices = [(start, min(start + SLICE, plan.chunks)) for start in range(0, plan.chunks, SLICE)]
        for run in range(plan.runs):
            say(f"bench embed: run {run + 1}/{plan.runs}, {plan.chunks} chunks per variant")
            seconds = dict.fromkeys(rates, 0.0)
            for index, (start, end) in enumerate(slices):
                for name in _rotated(list(rates), run + index):
                    try:
                        seconds[name] += workers[name].call("embed_slice", start, end)
                    except Exception as exc:
                        results[name] = engine_failure("embed", name, exc, name == BASELINE, say)
                        del rates[name], seconds[name]
                    time.sleep(PAUSE_S)
            for name in rates:
                rates[name].append(plan.chunks / seconds[name])
        for name in rates:
            results[name] = {**workers[name].call("results"), "chunks_per_s": summary(rates[name], 2)}
    finally:
        for worker in workers.values():
            worker.close()
    return results


def _dynamic_flops(config: dict[str, Any], lengths: list[int]) -> float:
    """FLOPs executed by the dynamic-shape embedder on ``lengths``, called ``SLICE`` texts at a time as timed."""
    from rag.models.embedder import BATCH_TOKENS, MAX_ROWS, PAD_MULTIPLE, length_batches

    total = 0.0
    for start in range(0, len(lengths), SLICE):
        part = lengths[start : start + SLICE]
        for padded, rows in length_batches(part, BATCH_TOKENS, MAX_ROWS, PAD_MULTIPLE):
            total += len(rows) * encoder_flops(config, padded)
    return total


def _flops_per_chunk(settings: Settings, plan: Plan, buckets: bool) -> dict[str, float | dict[str, int]]:
    """GFLOP per chunk actually executed at the compiled shapes (padding included) and for real tokens."""
    from transformers import AutoTokenizer

    from rag.models.prepare import prepare

    model = prepare("embedder", settings)
    config = read_config(model.path)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    texts = [c.text for c in synthetic_chunks(plan.chunks)]
    lengths = [min(len(ids), settings.embedder.max_length) for ids in tokenizer(texts)["input_ids"]]
    shapes = settings.embedder.shapes() if buckets else [settings.embedder.max_length]
    batch = settings.embedder.batch_size
    per_bucket: dict[int, int] = {}
    for length in lengths:
        bucket = next(s for s in shapes if s >= length)
        per_bucket[bucket] = per_bucket.get(bucket, 0) + 1
    executed = sum(-(-n // batch) * batch * encoder_flops(config, s) for s, n in per_bucket.items())
    useful = sum(encoder_flops(config, n) for n in lengths)
    return {
        "executed_gflop_per_chunk": round(executed / len(lengths) / 1e9, 3),
        "useful_gflop_per_chunk": round(useful / len(lengths) / 1e9, 3),
        "dynamic_gflop_per_chunk": round(_dynamic_flops(config, lengths) / len(lengths) / 1e9, 3),
        "mean_tokens": round(sum(lengths) / len(lengths), 1),
        "chunks_per_bucket": {str(k): v for k, v in sorted(per_bucket.items())},
    }


def _top(queries: np.ndarray, chunks: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ chunks.T
    return np.argsort(-scores, axis=1)[:, :k]


def run(settings: Settings, plan: Plan, say: Any) -> dict[str, Any]:
    chunks = synthetic_chunks(plan.chunks)
    rng = random.Random(11)
    truth = rng.sample(range(len(chunks)), min(plan.queries, len(chunks)))
    queries = [chunks[i].question for i in truth]
    results = _measure(settings, plan, queries, say)
    reference = results.get(BASELINE, {})
    fp32_name = next(v.name for v in variants(plan, settings) if v.precision == "fp32" and v.engine == "openvino")
    fp32 = results.get(fp32_name, {})
    truth_array = np.array(truth)
    for name, info in results.items():
        if "vectors" not in info:
            continue
        if "vectors" in reference:
            cosines = np.sum(info["vectors"] * reference["vectors"], axis=1)
            info["cosine_vs_torch"] = {"min": round(float(cosines.min()), 5), "mean": round(float(cosines.mean()), 5)}
        top = _top(info["query_vectors"], info["vectors"], 10)
        info["hit_at_1"] = round(float(np.mean(top[:, 0] == truth_array)), 4)
        if "vectors" in fp32 and name != fp32_name and info["engine"] == "openvino":
            base_top = _top(fp32["query_vectors"], fp32["vectors"], 10)
            info["top1_agreement_vs_fp32"] = round(float(np.mean(top[:, 0] == base_top[:, 0])), 4)
            overlap = [len(set(a) & set(b)) / 10 for a, b in zip(top, base_top, strict=True)]
            info["top10_overlap_vs_fp32"] = round(float(np.mean(overlap)), 4)
        for key, base in (("ratio_vs_torch", reference), ("ratio_vs_st_openvino", results.get(ST_OPENVINO, {}))):
            if "chunks_per_s" in base and "chunks_per_s" in info:
                info[key] = round(info["chunks_per_s"]["median"] / base["chunks_per_s"]["median"], 2)
    for info in results.values():
        info.pop("vectors", None)
        info.pop("query_vectors", None)
    flops = {
        "buckets": _flops_per_chunk(settings, plan, True),
        "max_length_only": _flops_per_chunk(settings, plan, False),
    }
    for info in results.values():
        if "chunks_per_s" in info:
            useful = info["chunks_per_s"]["median"] * float(flops["buckets"]["useful_gflop_per_chunk"])  # type: ignore[arg-type]
            info["useful_gflop_per_s"] = round(useful, 1)
            info["peak_kind"] = _peak_kind(info)
    return {
        "chunks": plan.chunks,
        "queries": len(queries),
        "words": _words(chunks),
        "baseline": BASELINE,
        "fp32_variant": fp32_name,
        "variants": results,
        "flops": flops,
    }


def _peak_kind(info: dict[str, Any]) -> str:
    """The matmul peak a variant is judged against: full int8 runs VNNI int8 dot products, the rest what they
    execute in (OpenVINO runs fp32 IRs in bf16 on CPUs with avx512_bf16 or AMX; PyTorch stays fp32)."""
    if str(info.get("precision")).startswith("int8-full"):
        return "int8"
    return "bf16" if "bf16" in str(info.get("execution_precision", "")) else "fp32"


def _words(chunks: list[Any]) -> dict[str, int]:
    words = sorted(c.words for c in chunks)
    return {"min": words[0], "median": words[len(words) // 2], "max": words[-1]}
