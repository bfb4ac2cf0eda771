"""Vector query latency through Kura's store adapter, embedded Chroma and a ``chroma run`` server.

The stored vectors are random unit vectors (what matters for HNSW latency is count and dimension,
not meaning); the query vectors are real, from Kura's embedder, and each query asks for the top
``retrieval.top_k`` with documents and metadata, as the answer chain does.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.bench.corpus import synthetic_chunks
from rag.bench.isolate import in_child
from rag.bench.timing import Plan, peak_rss_mb, percentile, repeat, summary
from rag.config import Settings

WARMUP_QUERIES = 20
SYNTHETIC_BLOCK = 10_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chroma_server(folder: Path) -> Iterator[tuple[str, int]]:
    """``chroma run`` on a free 127.0.0.1 port for the duration of the block; yields (url, pid)."""
    import chromadb

    port = _free_port()
    chroma = str(Path(sys.executable).with_name("chroma"))
    log_path = folder / "chroma-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [chroma, "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
                    break
                except Exception:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"chroma run did not start: {log_path.read_text()[-500:]}") from None
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", server.pid
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def add_synthetic(store: Any, rng: np.random.Generator, start: int, stop: int, dimension: int) -> None:
    """Random unit vectors ``c{start}`` .. ``c{stop - 1}``, upserted in blocks: HNSW latency depends on the count
    and the dimension, not on meaning."""
    for first in range(start, stop, SYNTHETIC_BLOCK):
        count = min(SYNTHETIC_BLOCK, stop - first)
        block = rng.standard_normal((count, dimension)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        ids = [f"c{first + i}" for i in range(count)]
        texts = [f"synthetic chunk {first + i}" for i in range(count)]
        metas = [{"key": f"file-{(first + i) % 500}", "chunk": first + i} for i in range(count)]
        store.upsert(ids, block, texts, metas)


def query_ms(store: Any, vectors: np.ndarray, k: int) -> list[float]:
    """Milliseconds of each query, asked as the answer chain asks (top ``k`` with documents and metadata)."""
    latencies = []
    for vector in vectors:
        started = time.perf_counter()
        store.query(vector.tolist(), k)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _measure(settings: Settings, plan: Plan, folder: str, url: str | None) -> dict[str, Any]:
    """In a child: real query vectors, then for each size a fresh collection, its insert time and latencies."""
    from ingest.collection import Collection
    from rag.models.factory import load_embedder
    from rag.store import open_store

    custom = settings.model_copy(deep=True)
    custom.vectorstore.url = url
    custom.vectorstore.path = Path(folder) / "embedded"
    custom.paths.store = Path(folder)  # the manifest and lock of the collections it drops: in the bench's folder
    embedder = load_embedder(custom)
    questions = [c.question for c in synthetic_chunks(plan.retrieve_queries + WARMUP_QUERIES, seed=23)]
    vectors = embedder.embed(questions)
    k = settings.retrieval.top_k
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for size in plan.retrieve_sizes:
        store = open_store(custom, embedder, f"bench-{size}")
        started = time.perf_counter()
        add_synthetic(store, rng, 0, size, embedder.dimension)
        insert_s = time.perf_counter() - started
        query_ms(store, vectors[:WARMUP_QUERIES], k)

        def one_run(_: int, store: Any = store) -> tuple[float, float]:
            latencies = query_ms(store, vectors[WARMUP_QUERIES:], k)
            return percentile(latencies, 50), percentile(latencies, 95)

        runs = repeat(one_run, plan.runs, warmup=0)
        out[str(size)] = {
            "insert_s": round(insert_s, 2),
            "p50_ms": summary([r[0] for r in runs], 2),
            "p95_ms": summary([r[1] for r in runs], 2),
            "count": store.count(),
        }
        Collection(custom, store.name).delete()
    out["dimension"] = embedder.dimension
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def run(settings: Settings, plan: Plan, say: Any) -> dict[str, Any]:
    import psutil

    folder = Path(tempfile.mkdtemp(prefix="kura-bench-retrieve-"))
    results: dict[str, Any] = {}
    sizes = ", ".join(f"{s:,}" for s in plan.retrieve_sizes)
    try:
        say(f"bench retrieve: embedded Chroma, {sizes} vectors, {plan.runs} runs of {plan.retrieve_queries} queries")
        try:
            results["embedded"] = in_child(_measure, settings, plan, str(folder / "embedded"), None)
        except Exception as exc:
            results["embedded"] = {"error": f"{type(exc).__name__}: {exc}"}
        say(f"bench retrieve: Chroma server (chroma run on 127.0.0.1), {sizes} vectors")
        try:
            (folder / "server").mkdir()
            with chroma_server(folder / "server") as (url, pid):
                results["server"] = in_child(_measure, settings, plan, str(folder / "client"), url)
                results["server"]["server_rss_mb"] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
        except Exception as exc:
            results["server"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    dimension = next((r["dimension"] for r in results.values() if "dimension" in r), None)
    return {
        "dimension": dimension,
        "top_k": settings.retrieval.top_k,
        "sizes": list(plan.retrieve_sizes),
        "backends": results,
    }
