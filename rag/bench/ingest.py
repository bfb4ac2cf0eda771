"""Ingest throughput: ``Collection.ingest`` on a folder into a fresh temporary store per run.

A fresh store each run means every file is parsed, chunked, embedded and written (an existing
store would report files as unchanged and measure only hashing). The embedder's share of the
wall time says whether parsing or embedding is the thing to speed up.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.bench.isolate import in_child
from rag.bench.timing import Plan, peak_rss_mb, repeat, summary
from rag.config import Settings


def _ingest(settings: Settings, plan: Plan, path: str) -> dict[str, Any]:
    from ingest.collection import Collection
    from rag.models.factory import load_embedder

    started = time.perf_counter()
    embedder = load_embedder(settings)
    load_s = time.perf_counter() - started

    def one(_: int) -> dict[str, Any]:
        folder = Path(tempfile.mkdtemp(prefix="kura-bench-ingest-"))
        custom = settings.model_copy(deep=True)
        custom.paths.store = folder
        custom.vectorstore.path = None
        custom.vectorstore.url = None
        try:
            report = Collection(custom, "bench-ingest").ingest([Path(path)], embedder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        counts = report.counts()
        return {
            "seconds": report.seconds,
            "embed_seconds": report.embed_seconds,
            "files": counts["added"],
            "skipped": counts["skipped"],
            "chunks": report.chunks_written,
        }

    runs = repeat(one, plan.runs)
    last = runs[-1]
    return {
        "path": path,
        "files": last["files"],
        "skipped": last["skipped"],
        "chunks": last["chunks"],
        "embedder_load_s": round(load_s, 2),
        "seconds": summary([r["seconds"] for r in runs]),
        "files_per_s": summary([r["files"] / r["seconds"] for r in runs], 2),
        "chunks_per_s": summary([r["chunks"] / r["seconds"] for r in runs], 2),
        "embed_share": summary([r["embed_seconds"] / r["seconds"] for r in runs]),
        "peak_rss_mb": peak_rss_mb(),
    }


def run(settings: Settings, plan: Plan, say: Any, path: Path) -> dict[str, Any]:
    say(f"bench ingest: {path}, {plan.runs} runs into fresh temporary stores")
    return in_child(_ingest, settings, plan, str(path.resolve()))
