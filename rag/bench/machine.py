"""The machine a run was taken on, and the physical limits its figures are judged against.

A speed-up over a baseline says little if both are far from what the hardware allows. Embedding is
compute-bound (an encoder pass is dense matmuls), so it is set against the peak matmul GFLOP/s two
threads reach; decoding one token reads every weight once, so it is set against memory bandwidth.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
PACKAGES = (
    "openvino", "openvino-genai", "torch", "transformers", "sentence-transformers", "llama_cpp_python",
    "chromadb", "nncf", "numpy",
)  # fmt: skip


def _cpuinfo() -> tuple[str, list[str]]:
    """The CPU's model name and every flag the kernel reports (figures differ between CPUs of one kind)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown", []

    def field(name: str) -> str:
        return next((line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == name), "")

    return field("model name") or "unknown", field("flags").split()


def machine_info() -> dict[str, Any]:
    """Cores, CPU model and vector extensions, memory, OS, and the versions of every engine measured."""
    import psutil

    model, all_flags = _cpuinfo()
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_flags": [flag for flag in FLAGS if flag in all_flags],
        "cpu_flags_all": all_flags,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


def measure_limits(quick: bool, threads: int = 2) -> dict[str, Any]:
    """Peak fp32 matmul GFLOP/s and copy bandwidth on ``threads`` threads (run in a child process)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    size = 2048 if quick else 4096
    runs = 3 if quick else 5
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    gflops = []
    with threadpool_limits(limits=threads):
        a @ b  # warm-up: BLAS threads, page faults
        for _ in range(runs):
            started = time.perf_counter()
            a @ b
            gflops.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    # 512 MiB arrays, far beyond any cache: a copy reads one and writes the other.
    count = (256 if quick else 512) * 2**20 // 8
    src = np.ones(count)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    bandwidth = []
    for _ in range(runs):
        started = time.perf_counter()
        np.copyto(dst, src)
        bandwidth.append(2 * src.nbytes / (time.perf_counter() - started) / 1e9)
    return {
        **_bf16_peak(size, runs, threads),
        **_int8_peak(size, runs, threads),
        "threads": threads,
        "matmul_size": size,
        "peak_gflops": round(statistics.median(gflops), 1),
        "peak_gflops_runs": [round(g, 1) for g in gflops],
        "copy_bandwidth_gbs": round(statistics.median(bandwidth), 2),
        "copy_bandwidth_runs": [round(b, 2) for b in bandwidth],
    }


def _bf16_peak(size: int, runs: int, threads: int) -> dict[str, Any]:
    """bf16 matmul GFLOP/s through PyTorch (oneDNN): OpenVINO runs fp32 IRs in bf16 on CPUs that have it."""
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    a @ b
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        a @ b
        rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    return {
        "peak_gflops_bf16": round(statistics.median(rates), 1),
        "peak_gflops_bf16_runs": [round(r, 1) for r in rates],
    }


def _int8_peak(size: int, runs: int, threads: int) -> dict[str, Any]:
    """int8 x int8 -> int32 matmul GOP/s through PyTorch (oneDNN, VNNI dot products where the CPU has them):
    the ceiling a fully int8-quantized encoder is judged against."""
    try:
        import torch

        torch.set_num_threads(threads)
        a = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        torch._int_mm(a, b)
    except (ImportError, RuntimeError):
        return {}
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        torch._int_mm(a, b)
        rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    return {"peak_gops_int8": round(statistics.median(rates), 1), "peak_gops_int8_runs": [round(r, 1) for r in rates]}


def encoder_flops(config: dict[str, Any], length: int) -> float:
    """FLOPs of one BERT-style encoder pass over ``length`` tokens (2 per multiply-add).

    Per layer and token: Q, K, V and output projections (4 h^2), the feed-forward (2 h i), and
    attention scores plus the weighted sum of values (2 L h). Embeddings, norms and softmax are noise.
    """
    hidden = int(config["hidden_size"])
    inner = int(config["intermediate_size"])
    layers = int(config["num_hidden_layers"])
    macs = 4 * hidden * hidden + 2 * hidden * inner + 2 * length * hidden
    return 2.0 * macs * length * layers


def read_config(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return data


def kv_bytes_per_token(config: dict[str, Any], context: int, bytes_per_value: float) -> float:
    """KV cache bytes one decode step reads: keys and values of every layer for the whole context."""
    layers = int(config["num_hidden_layers"])
    heads = int(config.get("num_key_value_heads") or config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // int(config["num_attention_heads"]))
    return 2.0 * layers * heads * head_dim * context * bytes_per_value
