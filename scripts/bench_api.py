"""Load on the API, MCP and the page at once: nothing lost, and each door's latency (p50/p95).

Why: issue 19 puts other programs (chat front-ends, IDE assistants, agents) on the same ``kura serve`` as the
people in the browser. This starts a real ``kura serve`` on a free loopback port over the sample corpus
(ingested into a temporary store with ``ingest.collection.Collection``), with one user and one API key per
API client, and for ``--seconds`` runs at once:

- ``--api`` API clients (default 8), in turn: the official ``openai`` client, the same streaming, the
  ``openai`` client again, and an ``mcp`` SDK client calling the ``ask`` tool over streamable HTTP (of 8:
  4, 2 and 2);
- ``--browsers`` browser-like clients (default 2): ``gradio_client`` logged in as the user, asking through the
  page's own queue and event stream, as the page does.

Each client asks the sample questions in turn, one at a time, until the time is up. A request counts as
lost when it raises, returns an error, or ends without a complete answer (text and a citation, or the
abstain message). The per-key rate limit is raised for the run (``--rate-limit``) so that it measures
serving, not the limiter. It is a benchmark, not a test: it prints figures and exits 1 only when something
was lost.

    PYTHONPATH=. .venv/bin/python scripts/bench_api.py                  # 8 API + 2 browser clients, 60 s
    PYTHONPATH=. .venv/bin/python scripts/bench_api.py --seconds 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.offline import OFFLINE_ENV, apply_offline_environment

apply_offline_environment()

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
COLLECTION = "bench-api"
USER, PASSWORD = "bench", "bench-long-password"
ABSTAIN = "I couldn't find this in your documents."
CITATION = re.compile(r"\[\d+\]")
START_TIMEOUT_S = 600.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def questions() -> list[str]:
    items = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines() if line.strip()]
    return [item["question"] for item in items]


def complete(text: str) -> str:
    """'answered' (text with a citation) or 'abstained'; anything else is a lost request."""
    if text.strip() == ABSTAIN:
        return "abstained"
    if text.strip() and CITATION.search(text):
        return "answered"
    raise ValueError(f"incomplete answer: {text[:120]!r}")


@dataclass
class Tally:
    """Every request of one kind of client: latencies of the complete ones, and what was lost."""

    latencies: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, kind: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.kinds.append(kind)

    def fail(self, why: str) -> None:
        with self.lock:
            self.lost.append(why)

    def figures(self) -> dict[str, Any]:
        done = self.latencies
        return {
            "requests": len(done) + len(self.lost),
            "complete": len(done),
            "answered": self.kinds.count("answered"),
            "abstained": self.kinds.count("abstained"),
            "lost": len(self.lost),
            "p50_s": round(percentile(done, 50), 3) if done else None,
            "p95_s": round(percentile(done, 95), 3) if done else None,
            "max_s": round(max(done), 3) if done else None,
            "lost_examples": self.lost[:3],
        }


def setup(folder: Path, base_config: Path | None, clients: int, rate_limit: int) -> tuple[Path, list[str]]:
    """A config over a temporary store holding the sample corpus, one user, and one key per API client."""
    import yaml

    from ingest.collection import Collection
    from rag.config import load_settings
    from rag.keys import add_key
    from rag.models.factory import load_embedder
    from rag.users import add_user

    settings = load_settings(base_config)
    source = settings.config_file
    data: dict[str, Any] = (yaml.safe_load(source.read_text(encoding="utf-8")) if source else None) or {}
    data["paths"] = {"models": str(settings.models_dir), "store": str(folder / "store"), "uploads": str(folder / "up")}
    data["vectorstore"] = {**data.get("vectorstore", {}), "path": None, "url": None, "collection": COLLECTION}
    data["ui"] = {**data.get("ui", {}), "users": {}, "users_file": str(folder / "users.json"), "collection_access": {}}
    data["api"] = {"keys_file": str(folder / "keys.json"), "rate_limit_per_minute": rate_limit}
    data["audit"] = {**data.get("audit", {}), "folder": str(folder / "audit")}
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    bench = load_settings(config)
    say("ingesting the sample corpus into a temporary store...")
    Collection(bench).ingest([SAMPLE], load_embedder(bench, say))
    add_user(bench, USER, PASSWORD)
    return config, [add_key(bench, USER)[1] for _ in range(clients)]


@contextlib.contextmanager
def serving(config: Path, folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``kura serve`` on a free loopback port; ready when the page answers; always stopped afterwards."""
    port = free_port()
    kura = Path(sys.executable).with_name("kura")
    command = [str(kura), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        "GRADIO_TEMP_DIR": str(folder / "gradio-tmp"),
    }
    url = f"http://127.0.0.1:{port}/"
    with (folder / "serve.log").open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    started = time.monotonic()
    try:
        while True:
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                _NO_PROXY.open(url, timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if proc.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                raise SystemExit(f"error: kura serve did not start; see {folder / 'serve.log'}")
            time.sleep(0.2)
        say(f"kura serve ready in {time.monotonic() - started:.1f} s at {url}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def openai_asker(url: str, key: str, stream: bool) -> Callable[[str], str]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}v1", api_key=key, max_retries=0, timeout=300)
    model = f"kura/{COLLECTION}"

    def ask(question: str) -> str:
        messages = [{"role": "user", "content": question}]
        if not stream:
            return client.chat.completions.create(model=model, messages=messages).choices[0].message.content or ""
        chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True))
        if chunks[-1].choices[0].finish_reason != "stop":
            raise ValueError("the stream ended without finish_reason stop")
        return "".join(c.choices[0].delta.content or "" for c in chunks)

    return ask


def mcp_asker(url: str, key: str) -> Callable[[str], str]:
    """A new MCP connection per question, as an agent calling one tool does."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def call(question: str) -> str:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
        async with Client(streamable_http_client(f"{url}mcp", http_client=http)) as client:
            result = await client.call_tool("ask", {"collection": COLLECTION, "question": question})
        if result.is_error:
            raise ValueError(result.content[0].text if result.content else "tool error")
        return str(result.structured_content["answer"])

    return lambda question: asyncio.run(call(question))


def browser_asker(url: str) -> Callable[[str], str]:
    """The page's own event, through Gradio's login, queue and event stream: a complete turn has a footer and
    either the abstain message or a citation button (the text itself is HTML)."""
    from gradio_client import Client

    client = Client(url, auth=(USER, PASSWORD), verbose=False)

    def ask(question: str) -> str:
        output = client.predict(question, COLLECTION, 5, 0.0, 256, False, api_name="/ask")
        html = next(part for part in output if isinstance(part, str))
        if "kura-error" in html or 'class="kura-footer"' not in html:
            raise ValueError(f"the turn has no footer or shows an error: {html[:200]!r}")
        if ABSTAIN.replace("'", "&#x27;") in html:
            return ABSTAIN
        return "(the page's answer) [1]" if 'class="kura-cite"' in html else ""

    return ask


class RssSampler:
    """The server's RSS once a second while the load runs: the first third's peak against the last third's."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.samples: list[float] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.done.is_set():
            self.samples.append(self.process.memory_info().rss / 1e6)
            self.done.wait(1.0)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def figures(self) -> dict[str, Any]:
        third = max(len(self.samples) // 3, 1)
        return {
            "first_third_max": round(max(self.samples[:third])),
            "last_third_max": round(max(self.samples[-third:])),
            "samples": [round(x) for x in self.samples],
        }


def client_loop(ask: Callable[[str], str], tally: Tally, items: list[str], offset: int, until: float) -> None:
    n = offset
    while time.monotonic() < until:
        question = items[n % len(items)]
        n += 1
        started = time.monotonic()
        try:
            kind = complete(ask(question))
        except Exception as exc:
            tally.fail(f"{type(exc).__name__}: {str(exc)[:160]}")
            continue
        tally.add(time.monotonic() - started, kind)


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    config, keys = setup(folder, args.config, args.api, args.rate_limit)
    items = questions()
    tallies = {"openai": Tally(), "openai-stream": Tally(), "mcp": Tally(), "browser": Tally()}
    with serving(config, folder) as (url, proc):
        askers: list[tuple[str, Callable[[str], str]]] = []
        for i, key in enumerate(keys):
            if i % 4 == 3:
                askers.append(("mcp", mcp_asker(url, key)))
            else:
                kind = "openai-stream" if i % 4 == 1 else "openai"
                askers.append((kind, openai_asker(url, key, kind == "openai-stream")))
        askers += [("browser", browser_asker(url)) for _ in range(args.browsers)]
        for question in items[:2]:
            complete(askers[0][1](question))  # first retrieval and caches before the clock starts
        rss = RssSampler(proc.pid)
        load_before = os.getloadavg()
        until = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [
            threading.Thread(target=client_loop, args=(ask, tallies[kind], items, i * 3, until))
            for i, (kind, ask) in enumerate(askers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 600)
        wall = time.monotonic() - started
        rss.stop()
        audit_lines = sum(len(p.read_text().splitlines()) for p in (folder / "audit").glob("*.jsonl"))
    every = list(tallies.values())
    api_latencies = [s for name in ("openai", "openai-stream", "mcp") for s in tallies[name].latencies]
    return {
        "api_clients": args.api,
        "browser_clients": args.browsers,
        "seconds": args.seconds,
        "wall_s": round(wall, 1),
        "by_door": {name: tally.figures() for name, tally in tallies.items()},
        "api_p50_s": round(percentile(api_latencies, 50), 3) if api_latencies else None,
        "api_p95_s": round(percentile(api_latencies, 95), 3) if api_latencies else None,
        "requests": sum(len(t.latencies) + len(t.lost) for t in every),
        "lost": sum(len(t.lost) for t in every),
        "throughput_per_s": round(sum(len(t.latencies) for t in every) / wall, 2),
        "audit_lines": audit_lines,
        "server_rss_mb": rss.figures(),
        "load_avg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }


def table(figures: dict[str, Any]) -> str:
    rss = figures["server_rss_mb"]
    rows = [f"{'door':<14} {'requests':>8} {'answered':>8} {'abstained':>9} {'lost':>5} {'p50 s':>7} {'p95 s':>7}"]
    for name, f in figures["by_door"].items():
        p50 = f"{f['p50_s']:.2f}" if f["p50_s"] is not None else "-"
        p95 = f"{f['p95_s']:.2f}" if f["p95_s"] is not None else "-"
        rows.append(
            f"{name:<14} {f['requests']:>8} {f['answered']:>8} {f['abstained']:>9} {f['lost']:>5} {p50:>7} {p95:>7}"
        )
    rows.append(
        f"{figures['api_clients']} API + {figures['browser_clients']} browser clients for {figures['wall_s']} s: "
        f"{figures['requests']} requests, {figures['lost']} lost, {figures['throughput_per_s']} answers/s; "
        f"API p50 {figures['api_p50_s']} s, p95 {figures['api_p95_s']} s; server RSS (first third, last third) "
        f"{rss['first_third_max']} -> {rss['last_third_max']} MB; {figures['audit_lines']} audit lines; "
        f"load {figures['load_avg_before_after'][0]} -> {figures['load_avg_before_after'][1]} on {figures['cpus']} CPUs"
    )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--api", type=int, default=8, help="API clients (every fourth one speaks MCP)")
    parser.add_argument("--browsers", type=int, default=2, help="browser-like clients (gradio_client, logged in)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--rate-limit", type=int, default=100_000, help="api.rate_limit_per_minute for the run")
    parser.add_argument("--config", type=Path, default=None, help="config to start from (default ./config.yaml)")
    parser.add_argument("--json", action="store_true", help="print every number as JSON (the table goes to stderr)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="kura-bench-api-"))
    try:
        figures = run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    say(table(figures))
    if args.json:
        print(json.dumps(figures, indent=2))
    return 1 if figures["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
