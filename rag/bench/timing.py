"""The run plan and the statistics every figure goes through."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """How much work each benchmark does; ``--quick`` is a smoke run, not a measurement."""

    quick: bool
    runs: int  # timed runs per figure, each after one warm-up
    chunks: int  # synthetic chunks embedded per run
    queries: int  # queries for int8-vs-fp32 top-1 agreement
    calibration: int  # chunks nncf calibrates full int8 quantization on (never the measured ones)
    prompt_tokens: int  # LLM prompt length for TTFT
    new_tokens: int  # greedy tokens decoded per LLM run
    retrieve_sizes: tuple[int, ...]
    retrieve_queries: int  # queries per retrieval run
    e2e_questions: int  # questions per e2e run (distinct across runs)
    concurrency: tuple[int, ...]
    extra_variants: bool  # int8 LLM/embedder and full-int8 quantization: each needs a conversion first
    ingest_runs: int  # runs of each ingest side: a large folder takes minutes per side

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 2, 200, 50, 64, 256, 16, (1_000, 10_000), 20, 1, (1, 2, 4), False, 1)
        return cls(False, 5, 2_000, 256, 300, 1_000, 128, (1_000, 10_000, 100_000), 100, 5, (1, 2, 4), True, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(samples: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median (the figure reported) with min, max and every run, so noise is visible in the JSON."""
    values = [float(v) for v in samples]
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without importing numpy for it."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def repeat(fn: Callable[[int], T], runs: int, warmup: int = 1) -> list[T]:
    """Call ``fn(run_index)`` ``warmup`` times (discarded) then ``runs`` times; the index lets callers vary inputs."""
    for index in range(warmup):
        fn(-1 - index)
    return [fn(index) for index in range(runs)]


def peak_rss_mb() -> float:
    """The highest resident set size this process has had, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: on a shared 2-core machine they say how noisy a figure is."""
    return [round(v, 2) for v in os.getloadavg()]


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
