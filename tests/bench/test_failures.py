"""A benchmark engine that crashes: a baseline is marked unavailable and the run goes on; Kura's own fails it.

The engines here are tiny stand-ins run in real spawned worker processes, so a crash is a real signal
(the way a llama.cpp built for another CPU dies), not a raised exception.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from rag.bench.failures import UNAVAILABLE
from rag.bench.generation import Generation
from rag.bench.llm import LLAMA, _measure
from rag.bench.report import floors, llm_table
from rag.bench.runner import _has_error

KURA_ENGINE = "Kura openvino-genai int4"


class SteadyEngine:
    def info(self) -> dict[str, Any]:
        return {"weight_bytes": 1000}

    def peak_rss_mb(self) -> float:
        return 1.0

    def generate(self, prompt: str, new_tokens: int) -> Generation:
        return Generation(ttft_s=0.01, total_s=0.01 + 0.01 * new_tokens, tokens=new_tokens, prompt_tokens=3)


class SegfaultingEngine(SteadyEngine):
    def generate(self, prompt: str, new_tokens: int) -> Generation:
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


def _run(engines: list[tuple[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    said: list[str] = []
    results = _measure([(name, factory, ()) for name, factory in engines], ["a", "b", "c"], 4, said.append)
    return results, said


def test_a_crashing_baseline_is_unavailable_and_kura_still_measured() -> None:
    results, said = _run([(KURA_ENGINE, SteadyEngine), (LLAMA, SegfaultingEngine)])
    assert results[LLAMA] == {UNAVAILABLE: "RuntimeError: the worker process died (killed by SIGSEGV)"}
    assert results[KURA_ENGINE]["decode_tokens_per_s"]["median"] > 0
    assert [line for line in said if "unavailable" in line] == [
        f"bench llm: baseline {LLAMA} unavailable (RuntimeError: the worker process died (killed by SIGSEGV)); "
        "the other engines still run"
    ]
    assert not _has_error({"llm": {"engines": results}})

    _, rows = llm_table({"engines": results})
    assert rows[1][:2] == [LLAMA, "baseline unavailable"]
    judged = {f.name: f for f in floors({"llm": {"engines": results}})}
    assert judged["decode int4 vs llama.cpp"].met is None
    assert judged["decode int4 vs llama.cpp"].measured.startswith("baseline unavailable (RuntimeError")


def test_a_crashing_kura_engine_is_an_error() -> None:
    results, said = _run([(KURA_ENGINE, SegfaultingEngine), (LLAMA, SteadyEngine)])
    assert results[KURA_ENGINE] == {"error": "RuntimeError: the worker process died (killed by SIGSEGV)"}
    assert _has_error({"llm": {"engines": results}})
    assert not [line for line in said if "unavailable" in line]
