"""Four users at once against one, per LLM engine, and the server's memory over a 60 s load (issue 20).

Why: ``kura serve`` answers several people at once. ``llm.engine: pipeline`` decodes one answer at a time,
``batching`` (continuous batching) decodes every running answer in one step; batching is the serving
default only if it is faster with four users and its memory stays bounded. This ingests data/sample once
into a temporary store, then for each engine starts a child process (so RSS is that engine's own) that
builds the Assistant as ``kura serve`` does (``load_llm(concurrent=True)``, ``llm.answer_mode: generate``
so every answered question reaches the model) and:

1. asks the same answerable sample questions one at a time and four at a time, alternating, twice;
   aggregate tokens/s = generated tokens (the model's own text, counted with its tokenizer) / wall time;
2. runs ``--load-users`` threads asking in turn for ``--seconds`` and samples its RSS once a second:
   the last third's peak against the first third's is the memory bound (floor: at most 1.1x).

``--before CHECKOUT`` adds the same batching engine from another checkout (the code before the change),
so both memory curves come from one run. Ratios are within one child, one run; nothing is asserted.

    PYTHONPATH=. .venv/bin/python scripts/bench_concurrency.py                  # pipeline and batching
    PYTHONPATH=. .venv/bin/python scripts/bench_concurrency.py --before ../main --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "bench-concurrency"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb() -> float:
    """This process's resident set from /proc (pages in memory now, not the peak)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def store_settings(folder: str, engine: str) -> Any:
    from rag.config import load_settings

    settings = load_settings()
    settings.paths.store = Path(folder)
    settings.vectorstore.path = None
    settings.vectorstore.url = None
    settings.vectorstore.collection = COLLECTION
    # extract (the default answer mode) never asks the model
    settings.llm = settings.llm.model_copy(update={"engine": engine, "answer_mode": "generate"})
    return settings


def ingest(folder: str) -> None:
    from ingest.collection import Collection
    from rag.bench.corpus import SAMPLE
    from rag.models.factory import load_embedder

    settings = store_settings(folder, "pipeline")
    Collection(settings, COLLECTION).ingest([SAMPLE], load_embedder(settings, say))


def questions(count: int) -> list[str]:
    from rag.bench.corpus import sample_questions

    answerable = [q["question"] for q in sample_questions() if q.get("kind") != "unanswerable"]
    return answerable[:count]


class Users:
    """Threads asking the Assistant at once; the generated text of each answer is kept to count later."""

    def __init__(self, assistant: Any, new_tokens: int) -> None:
        self.assistant = assistant
        self.new_tokens = new_tokens
        self.texts: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def ask(self, question: str) -> None:
        try:
            answer = self.assistant.answer(question, max_new_tokens=self.new_tokens)
            text = answer.generated
        except Exception as exc:  # a benchmark reports a failed request instead of stopping
            text = ""
            with self._lock:
                self.failures.append(f"{type(exc).__name__}: {str(exc)[:120]}")
        with self._lock:
            self.texts.append(text)

    def tokens(self) -> int:
        """Counted after the threads end: a fast tokenizer is not re-entrant."""
        return sum(self.assistant.llm.count_tokens(text) for text in self.texts)


def at_once(assistant: Any, batch: list[str], new_tokens: int) -> tuple[int, float]:
    """All questions of ``batch`` asked together; (generated tokens, wall seconds)."""
    users = Users(assistant, new_tokens)
    threads = [threading.Thread(target=users.ask, args=(q,)) for q in batch]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return users.tokens(), time.perf_counter() - started


def rates(assistant: Any, items: list[str], levels: list[int], passes: int, new_tokens: int) -> dict[str, Any]:
    """Aggregate tokens/s per level over the same questions; levels alternate pass by pass."""
    totals = {level: [0, 0.0] for level in levels}
    per_pass: dict[int, list[float]] = {level: [] for level in levels}
    for index in range(passes):
        for level in levels if index % 2 == 0 else list(reversed(levels)):
            tokens, wall = 0, 0.0
            for start in range(0, len(items), level):
                t, w = at_once(assistant, items[start : start + level], new_tokens)
                tokens, wall = tokens + t, wall + w
            totals[level][0] += tokens
            totals[level][1] += wall
            per_pass[level].append(round(tokens / wall, 1))
    one = totals[levels[0]][0] / totals[levels[0]][1]
    return {
        str(level): {
            "tokens": int(tokens),
            "wall_s": round(wall, 1),
            "aggregate_tokens_per_s": round(tokens / wall, 1),
            "per_pass": per_pass[level],
            "ratio_vs_one": round(tokens / wall / one, 2),
        }
        for level, (tokens, wall) in totals.items()
    }


def load(assistant: Any, items: list[str], users_count: int, seconds: float, new_tokens: int) -> dict[str, Any]:
    """``users_count`` users asking in turn for ``seconds``; RSS sampled once a second."""
    users = Users(assistant, new_tokens)
    until = time.monotonic() + seconds
    samples: list[float] = []

    def user(offset: int) -> None:
        turn = offset
        while time.monotonic() < until:
            users.ask(items[turn % len(items)])
            turn += 1

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users_count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        samples.append(round(rss_mb(), 1))
        time.sleep(1.0)
    wall = time.monotonic() - started
    third = max(1, len(samples) // 3)
    first, last = max(samples[:third]), max(samples[-third:])
    return {
        "users": users_count,
        "answers": len(users.texts),
        "failures": users.failures[:5],
        "failed": len(users.failures),
        "aggregate_tokens_per_s": round(users.tokens() / wall, 1),
        "rss_mb_each_s": samples,
        "rss_first_third_max_mb": first,
        "rss_last_third_max_mb": last,
        "rss_last_over_first": round(last / first, 3),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    from rag.assistant import open_assistant
    from rag.models.factory import load_embedder, load_llm

    settings = store_settings(args.store, args.engine)
    started = time.perf_counter()
    llm = load_llm(settings, say, concurrent=True)
    assistant = open_assistant(settings, COLLECTION, say, embedder=load_embedder(settings, say), llm=llm)
    loaded = rss_mb()
    items = questions(args.questions)
    at_once(assistant, items[:4], args.new_tokens)  # warm-up at the widest level
    warm = rss_mb()
    out: dict[str, Any] = {
        "engine": args.engine,
        "llm_class": type(llm).__name__,
        "load_s": round(time.perf_counter() - started, 1),
        "rss_loaded_mb": round(loaded, 1),
        "rss_after_warmup_mb": round(warm, 1),
        "at_once": rates(assistant, items, [1, 4], args.passes, args.new_tokens),
        "load": load(assistant, items, args.load_users, args.seconds, args.new_tokens),
    }
    close = getattr(llm, "close", None)
    if close is not None:
        close()
    return out


def run_child(args: argparse.Namespace, store: str, engine: str, checkout: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--store", store, "--engine", engine]
    command += ["--questions", str(args.questions), "--passes", str(args.passes), "--seconds", str(args.seconds)]
    command += ["--load-users", str(args.load_users), "--new-tokens", str(args.new_tokens)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, cwd=checkout, env=env, stdout=subprocess.PIPE, check=False)
    if done.returncode != 0:
        return {"engine": engine, "error": f"child exited {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def table(results: dict[str, Any]) -> str:
    lines = [
        "| engine | 1 at once tok/s | 4 at once tok/s | 4 / 1 | load tok/s | RSS first → last third MB | last/first |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | |")
            continue
        one, four, load_ = r["at_once"]["1"], r["at_once"]["4"], r["load"]
        lines.append(
            f"| {name} | {one['aggregate_tokens_per_s']} | {four['aggregate_tokens_per_s']} | "
            f"{four['ratio_vs_one']}× | {load_['aggregate_tokens_per_s']} | "
            f"{load_['rss_first_third_max_mb']:,.0f} → {load_['rss_last_third_max_mb']:,.0f} | "
            f"{load_['rss_last_over_first']}× |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="pipeline,batching", help="comma-separated llm.engine values")
    parser.add_argument("--before", type=Path, help="another checkout whose batching engine is measured too")
    parser.add_argument("--questions", type=int, default=8, help="answerable sample questions per pass")
    parser.add_argument("--passes", type=int, default=2, help="passes of the questions at each level")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--load-users", type=int, default=8, help="users asking at once during the load")
    parser.add_argument("--new-tokens", type=int, default=128, help="max_new_tokens per answer")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    store = tempfile.mkdtemp(prefix="kura-bench-concurrency-")
    try:
        say("ingesting data/sample into a temporary store...")
        ingest(store)
        runs = [(engine, engine, ROOT) for engine in args.engines.split(",")]
        if args.before:
            runs.append(("batching (before)", "batching", args.before.resolve()))
        results: dict[str, Any] = {}
        for name, engine, checkout in runs:
            say(f"engine {name}: 1 and 4 at once, then {args.load_users} users for {args.seconds:.0f} s")
            results[name] = run_child(args, store, engine, checkout)
        results["load_average"] = {"end": list(os.getloadavg())}
    finally:
        shutil.rmtree(store, ignore_errors=True)
    load_average = results.pop("load_average")
    print(table(results))
    print(f"load average at the end (1, 5, 15 min): {load_average['end']}")
    if args.json:
        args.json.write_text(json.dumps({**results, "load_average": load_average}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
