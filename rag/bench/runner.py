"""``kura bench``: run the chosen benchmarks in order, then print the tables and write the JSON.

A benchmark that fails is recorded as an error and the others still run; the command then exits 1,
so a broken engine is never mistaken for a slow one.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from rag.bench import SECTIONS
from rag.bench.corpus import SAMPLE
from rag.bench.isolate import in_child
from rag.bench.machine import machine_info, measure_limits
from rag.bench.report import floors, floors_as_dicts, markdown, render, write_json
from rag.bench.timing import Plan, load_average
from rag.config import Settings
from rag.errors import KuraError

CHOICES = (*SECTIONS, "all")


class BenchUsageError(KuraError):
    """A wrong benchmark name or argument: exit code 2, like other usage errors."""

    exit_code = 2


def _section(name: str, settings: Settings, plan: Plan, say: Any, path: Path, limits: dict[str, Any]) -> dict[str, Any]:
    if name == "embed":
        from rag.bench import embed

        return embed.run(settings, plan, say)
    if name == "llm":
        from rag.bench import llm

        return llm.run(settings, plan, say, limits)
    if name == "retrieve":
        from rag.bench import retrieve

        return retrieve.run(settings, plan, say)
    if name == "e2e":
        from rag.bench import e2e

        return e2e.run(settings, plan, say)
    from rag.bench import ingest

    return ingest.run(settings, plan, say, path)


def run_bench(
    settings: Settings,
    what: str,
    path: Path | None,
    quick: bool,
    json_out: Path | None,
    say: Any,
    markdown_out: Path | None = None,
) -> dict[str, Any]:
    """Measure, print and (with ``json_out``) save; returns the results dictionary."""
    ingest_path = _checked_arguments(what, path)
    plan = Plan.make(quick)
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": _meta(what, quick, plan), "machine": machine_info()}
    say("bench: measuring peak matmul GFLOP/s and memory bandwidth (2 threads)")
    try:
        results["limits"] = in_child(measure_limits, quick)
    except Exception as exc:
        results["limits"] = {"error": f"{type(exc).__name__}: {exc}"}
    failed = []
    for name in SECTIONS if what == "all" else (what,):
        results[name] = _timed_section(name, settings, plan, say, ingest_path, results["limits"])
        if _has_error(results[name]):
            failed.append(name)
        if json_out is not None:  # a long run interrupted later keeps what it measured
            write_json(results, json_out)
    results["meta"].update(load_after=load_average(), seconds=round(time.perf_counter() - started, 1), failed=failed)
    results["floors"] = floors_as_dicts(floors(results))
    render(results)
    if json_out is not None:
        write_json(results, json_out)
        say(f"bench: wrote {json_out}")
    _write_markdown(results, markdown_out, say)
    return results


def _checked_arguments(what: str, path: Path | None) -> Path:
    """The folder the ingest benchmark reads, once the benchmark name and PATH are known to fit."""
    if what not in CHOICES:
        raise BenchUsageError(f"unknown benchmark '{what}'; choose one of {', '.join(CHOICES)}")
    if path is not None and what not in ("ingest", "all"):
        raise BenchUsageError("a PATH is only taken by `kura bench ingest PATH` (or `all`)")
    ingest_path = path or SAMPLE
    if not ingest_path.exists():
        raise BenchUsageError(f"no such file or folder: {ingest_path}")
    return ingest_path


def _meta(what: str, quick: bool, plan: Plan) -> dict[str, Any]:
    return {
        "what": what,
        "quick": quick,
        "command": shlex.join(["kura", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_before": load_average(),
        "plan": plan.to_dict(),
    }


def _timed_section(
    name: str, settings: Settings, plan: Plan, say: Any, path: Path, limits: dict[str, Any]
) -> dict[str, Any]:
    """One benchmark with its wall time and the load around it; a failure is recorded, never raised."""
    before = load_average()
    started = time.perf_counter()
    try:
        data = _section(name, settings, plan, say, path, limits)
    except Exception as exc:  # one section failing (a damaged model, a missing extra) keeps the others
        data = {"error": f"{type(exc).__name__}: {exc}"}
    data["seconds"] = round(time.perf_counter() - started, 1)
    data["load_average"] = {"before": before, "after": load_average()}
    return data


def rerender(saved: Path, markdown_out: Path | None, say: Any) -> dict[str, Any]:
    """Print (and optionally write as Markdown) a saved run, its floors judged again from its numbers."""
    try:
        results = json.loads(saved.read_text(encoding="utf-8"))
        if not isinstance(results, dict) or not isinstance(results.get("meta"), dict):
            raise ValueError("no 'meta' section")
        results["floors"] = floors_as_dicts(floors(results))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchUsageError(f"{saved} is not a saved `kura bench --json` run ({exc})") from None
    render(results)
    _write_markdown(results, markdown_out, say)
    return results


def _write_markdown(results: dict[str, Any], path: Path | None, say: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown(results), encoding="utf-8")
        say(f"bench: wrote {path}")


def _has_error(data: Any) -> bool:
    """An error anywhere in a section (a whole section, or one engine of it)."""
    if isinstance(data, dict):
        return "error" in data or any(_has_error(v) for v in data.values())
    return False
