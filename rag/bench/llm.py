"""LLM prefill and decode: Kura's openvino-genai pipeline against llama.cpp and transformers on PyTorch.

All engines get the same rendered prompts (Kura's answer prompt, ~``plan.prompt_tokens`` tokens,
each different so no prefix cache hits) and decode exactly ``plan.new_tokens`` greedy tokens (EOS
ignored), timed the same way from the caller's side: TTFT is the wall time until the first token
reaches the caller, decode rate is the remaining tokens over the remaining time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rag.bench.failures import engine_failure
from rag.bench.generation import Generation, genai_generate
from rag.bench.isolate import PAUSE_S, Worker, in_child
from rag.bench.lookup import measure_lookup
from rag.bench.machine import kv_bytes_per_token, read_config
from rag.bench.prompts import copy_prompts, hf_renderer, sized_prompts
from rag.bench.timing import Plan, peak_rss_mb, summary
from rag.config import Settings

LLAMA = "llama.cpp"
TORCH = "transformers (PyTorch fp32)"
BASELINES = (LLAMA, TORCH)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _gguf(settings: Settings) -> Path:
    from rag.models.sources import resolve_source

    source = resolve_source(settings.llm.source, "llm", settings.base_dir)
    if source.kind != "gguf":
        raise ValueError(f"llm.source {settings.llm.source} is not a GGUF; the llama.cpp baseline needs one")
    return source.path


def _exact_config(new_tokens: int) -> Any:
    import openvino_genai

    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = new_tokens
    config.min_new_tokens = new_tokens
    config.ignore_eos = True
    config.do_sample = False
    config.apply_chat_template = False
    return config


class _Engine:
    """What every engine worker offers besides ``generate`` and ``info``."""

    def peak_rss_mb(self) -> float:
        return peak_rss_mb()


class GenaiEngine(_Engine):
    """Kura's own LLM as the product loads it (``load_llm``), driven through its openvino-genai pipeline.

    Plain decoding, like the baselines: prompt lookup (the product default) is measured on its own.
    """

    def __init__(self, settings: Settings, weight_format: str) -> None:
        from rag.models.factory import load_llm

        custom = settings.model_copy(deep=True)
        custom.llm.weight_format = weight_format  # type: ignore[assignment]
        custom.llm.prompt_lookup = False
        started = time.perf_counter()
        self.llm: Any = load_llm(custom, _say)
        self.load_s = time.perf_counter() - started

    def info(self) -> dict[str, Any]:
        weights = (self.llm.model.path / "openvino_model.bin").stat().st_size
        return {"load_s": round(self.load_s, 2), "weight_bytes": weights, "device": self.llm.device}

    def generate(self, prompt: str, new_tokens: int) -> Generation:
        return genai_generate(self.llm.pipeline, prompt, _exact_config(new_tokens))


class TorchEngine(_Engine):
    """transformers on PyTorch with the GGUF dequantized to fp32, greedy, EOS suppressed by min_new_tokens."""

    def __init__(self, settings: Settings) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rag.models.prepare import prepare

        gguf = _gguf(settings)
        started = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        self.model.eval()
        # transformers' own GGUF tokenizer does not survive for SmolLM2; Kura's converted one is the GGUF's.
        self.tokenizer = AutoTokenizer.from_pretrained(prepare("llm", settings).path)
        self.load_s = time.perf_counter() - started

    def info(self) -> dict[str, Any]:
        import torch

        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return {"load_s": round(self.load_s, 2), "weight_bytes": weights, "threads": torch.get_num_threads()}

    def generate(self, prompt: str, new_tokens: int) -> Generation:
        import torch
        from transformers.generation.streamers import BaseStreamer

        class Clock(BaseStreamer):
            """transformers calls put() once with the prompt, then once per new token."""

            def __init__(self) -> None:
                self.times: list[float] = []

            def put(self, value: Any) -> None:
                self.times.append(time.perf_counter())

            def end(self) -> None:
                pass

        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        clock = Clock()
        started = time.perf_counter()
        with torch.inference_mode():
            # transformers types generate's self as a protocol that its own Auto models do not meet.
            out = self.model.generate(  # type: ignore[misc]
                **ids,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                streamer=clock,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        total = time.perf_counter() - started
        assert isinstance(out, torch.Tensor)  # the ids alone: return_dict_in_generate is off
        prompt_tokens = int(ids["input_ids"].shape[1])
        text = self.tokenizer.decode(out[0, prompt_tokens:], skip_special_tokens=True)
        assert isinstance(text, str)  # one sequence decodes to one string
        return Generation(clock.times[1] - started, total, int(out.shape[1]) - prompt_tokens, prompt_tokens, text)


class LlamaEngine(_Engine):
    """llama-cpp-python on the same GGUF, 2 threads, greedy; Llama.generate never stops at EOS by itself."""

    def __init__(self, settings: Settings) -> None:
        import llama_cpp

        self.gguf = _gguf(settings)
        started = time.perf_counter()
        self.llm = llama_cpp.Llama(model_path=str(self.gguf), n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
        self.load_s = time.perf_counter() - started

    def info(self) -> dict[str, Any]:
        return {"load_s": round(self.load_s, 2), "weight_bytes": self.gguf.stat().st_size, "threads": 2}

    def generate(self, prompt: str, new_tokens: int) -> Generation:
        started = time.perf_counter()
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        first = 0.0
        pieces = []
        for count, token in enumerate(self.llm.generate(tokens, temp=0.0, top_k=1, reset=True), 1):
            pieces.append(self.llm.detokenize([token]))
            if count == 1:
                first = time.perf_counter()
            if count == new_tokens:
                break
        total = time.perf_counter() - started
        text = b"".join(pieces).decode("utf-8", errors="replace")
        return Generation(first - started, total, len(pieces), len(tokens), text)


def _result(timed: list[Generation], info: dict[str, Any]) -> dict[str, Any]:
    return {
        **info,
        "ttft_ms": summary([g.ttft_s * 1000 for g in timed], 1),
        "decode_tokens_per_s": summary([g.decode_tokens_per_s for g in timed], 1),
        "prompt_tokens": [g.prompt_tokens for g in timed],
        "generated_tokens": [g.tokens for g in timed],
        "sample_text": timed[0].text[:160] if timed else "",
    }


def _measure(
    engines: list[tuple[str, Any, tuple[Any, ...]]], prompts: list[str], new_tokens: int, say: Any
) -> dict[str, Any]:
    """Every engine loaded in its worker, then prompt by prompt across engines (order rotating each round)."""
    workers: dict[str, Worker] = {}
    results: dict[str, Any] = {}
    try:
        for name, factory, args in engines:
            say(f"bench llm: loading {name}")
            try:
                workers[name] = Worker(factory, *args)
            except Exception as exc:
                results[name] = engine_failure("llm", name, exc, name in BASELINES, say)
        runs: dict[str, list[Generation]] = {name: [] for name in workers}
        names = list(workers)
        for index, prompt in enumerate(prompts):
            say(f"bench llm: {'warm-up' if index == 0 else f'round {index}/{len(prompts) - 1}'}")
            for name in names[index % len(names) :] + names[: index % len(names)]:
                if name in results:
                    continue
                try:
                    runs[name].append(workers[name].call("generate", prompt, new_tokens))
                except Exception as exc:
                    results[name] = engine_failure("llm", name, exc, name in BASELINES, say)
                time.sleep(PAUSE_S)
        for name, worker in workers.items():
            if name not in results:
                info = {**worker.call("info"), "peak_rss_mb": worker.call("peak_rss_mb")}
                results[name] = _result(runs[name][1:], info)
    finally:
        for worker in workers.values():
            worker.close()
    return {name: results[name] for name, _, _ in engines if name in results}


def run(settings: Settings, plan: Plan, say: Any, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    from rag.models.prepare import prepare

    model = prepare("llm", settings, say)
    render, count = hf_renderer(model.path)
    prompts = sized_prompts(render, count, plan.runs + 1, plan.prompt_tokens)
    settings_args = (settings,)
    engines: list[tuple[str, Any, tuple[Any, ...]]] = [("Kura openvino-genai int4", GenaiEngine, (settings, "int4"))]
    if plan.extra_variants:
        engines.append(("Kura openvino-genai int8", GenaiEngine, (settings, "int8")))
    engines += [(LLAMA, LlamaEngine, settings_args), (TORCH, TorchEngine, settings_args)]
    say(f"bench llm: {plan.runs} runs of ~{plan.prompt_tokens} prompt + {plan.new_tokens} new tokens per engine")
    results = _measure(engines, prompts, plan.new_tokens, say)
    _ratios(results)
    _limits(results, model.path, plan, limits)
    say(f"bench llm: prompt lookup on/off, {plan.runs} grounded copy prompts")
    try:
        lookup = in_child(measure_lookup, settings, copy_prompts(render, plan.runs + 1), plan.new_tokens, plan.quick)
    except Exception as exc:
        lookup = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "prompt_tokens_target": plan.prompt_tokens,
        "new_tokens": plan.new_tokens,
        "engines": results,
        "prompt_lookup": lookup,
    }


def _ratios(results: dict[str, Any]) -> None:
    llama = results.get(LLAMA, {})
    torch = results.get(TORCH, {})
    for info in results.values():
        if "ttft_ms" not in info:
            continue
        if "ttft_ms" in llama:
            info["ttft_ratio_vs_llama_cpp"] = round(info["ttft_ms"]["median"] / llama["ttft_ms"]["median"], 3)
            info["decode_ratio_vs_llama_cpp"] = round(
                info["decode_tokens_per_s"]["median"] / llama["decode_tokens_per_s"]["median"], 2
            )
        if "ttft_ms" in torch:
            info["decode_ratio_vs_torch"] = round(
                info["decode_tokens_per_s"]["median"] / torch["decode_tokens_per_s"]["median"], 2
            )


def _limits(results: dict[str, Any], model_path: Path, plan: Plan, limits: dict[str, Any] | None) -> None:
    """Decode ceiling: every weight byte plus the KV cache is read once per token, at copy bandwidth."""
    if not limits or "copy_bandwidth_gbs" not in limits:
        return
    config = read_config(model_path)
    context = plan.prompt_tokens + plan.new_tokens // 2
    bandwidth = limits["copy_bandwidth_gbs"] * 1e9
    for name, info in results.items():
        if "weight_bytes" not in info:
            continue
        # KV cache precision: u8 in OpenVINO on CPU, f16 in llama.cpp, fp32 in PyTorch.
        kv_value = 1 if name.startswith("Kura") else 2 if name == LLAMA else 4
        per_token = info["weight_bytes"] + kv_bytes_per_token(config, context, kv_value)
        info["bytes_per_token_mb"] = round(per_token / 1e6, 1)
        info["decode_limit_tokens_per_s"] = round(bandwidth / per_token, 1)
        if "decode_tokens_per_s" in info:
            info["decode_share_of_limit"] = round(
                info["decode_tokens_per_s"]["median"] / info["decode_limit_tokens_per_s"], 2
            )
