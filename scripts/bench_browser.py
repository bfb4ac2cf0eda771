"""Time from question to final answer in a real browser, against the same answers computed in-process.

Why: every other figure in README's Performance section stops at ``Assistant``; a user waits for the page.
This measures what the user sees (issue #14): the sample corpus ingested into a temporary collection
through ``ingest.collection.Collection``, a real ``kura serve`` on a free loopback port (temporary config,
no users), and headless Chromium typing each factoid question of data/sample/questions.jsonl into the page,
pressing Ask and waiting for the answer's footer (the page renders it only with the final, checked answer).
The same questions are answered in this process by ``open_assistant(...).answer(q)``, interleaved question
by question, as the baseline: the figure reported is browser / in-process, measured in the same run, so a
busy machine shifts both alike. One warm-up question on each side is not counted.

    PYTHONPATH=. .venv/bin/python scripts/bench_browser.py --answer-mode extract
    PYTHONPATH=. .venv/bin/python scripts/bench_browser.py --answer-mode auto --questions 10 --json

Models come from the configured models folder (``paths.models`` of ./config.yaml or --config): run
``kura models prepare`` once first, or the first run converts them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.offline import OFFLINE_ENV, apply_offline_environment

apply_offline_environment()

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
COLLECTION = "bench-browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ANSWER_TIMEOUT_S = 300.0
START_TIMEOUT_S = 600.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Installed before each question: stamps the click on Ask, the first answer text the page shows, and the
# moment the turn gets its footer (the final answer) or an error, all on the page's own clock.
WATCH_JS = """() => {
  const t = {start: null, first: null, done: null, error: null, partials: [], final: null, source: null};
  window.__kuraBench = t;
  const check = () => {
    if (t.start === null || t.done !== null) return;
    const turn = [...document.querySelectorAll('#kura-chat .kura-turn')].pop();
    if (!turn) return;
    const now = performance.now();
    const failed = turn.querySelector('.kura-error');
    if (failed || turn.querySelector('.kura-footer')) {
      t.done = now;
      t.error = failed ? failed.innerText : null;
      const answer = turn.querySelector('.kura-a');
      t.final = answer ? answer.innerText.trim() : '';
      const footer = turn.querySelector('.kura-footer');
      t.footer = footer ? footer.innerText : null;
      t.extracted = !!turn.querySelector('.kura-note');
      if (t.first === null) t.first = now;
      observer.disconnect();
      return;
    }
    const pending = turn.querySelector('.kura-pending');
    const text = pending ? pending.innerText.trim() : '';
    if (text && text !== '…') {
      if (t.first === null) t.first = now;
      if (t.partials[t.partials.length - 1] !== text) t.partials.push(text);
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  document.querySelector('#kura-ask').addEventListener('click', () => { t.start = performance.now(); },
                                                       {capture: true, once: true});
}"""


class BenchError(Exception):
    """A failure the user can act on: printed as one line, exit status 1."""


@dataclass
class Timed:
    """One question asked both ways; times in milliseconds."""

    id: str
    question: str
    browser_ms: float
    browser_first_text_ms: float
    inprocess_ms: float
    server_total_s: float | None  # the footer's "total", as the server measured it
    abstained: bool
    partial_updates: int
    replaced: bool  # the streamed text was not the start of the final answer
    answer: str  # as the page shows it
    streamed: str  # the last text the page showed before the final answer
    inprocess_answer: str  # Markdown, as Assistant returned it
    order: str  # which side ran first for this question


@dataclass
class Run:
    answer_mode: str
    questions: list[Timed] = field(default_factory=list)
    skipped_unanswerable: int = 0
    warmup: str = ""
    server_ready_s: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpus: int = 0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_questions(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The answerable (factoid) questions, and how many unanswerable ones were left out."""
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    factoid = [item for item in items if item.get("kind", "factoid") != "unanswerable"]
    return factoid, len(items) - len(factoid)


def write_config(base: Path | None, folder: Path, answer_mode: str | None) -> Path:
    """The user's config with every data path in ``folder`` except the models, no users, one collection."""
    import yaml

    from rag.config import load_settings

    settings = load_settings(base)
    source = settings.config_file
    data: dict[str, Any] = (yaml.safe_load(source.read_text(encoding="utf-8")) if source else None) or {}
    data["paths"] = {"models": str(settings.models_dir), "store": str(folder / "store"), "uploads": str(folder / "up")}
    data["vectorstore"] = {**data.get("vectorstore", {}), "path": None, "url": None, "collection": COLLECTION}
    data["ui"] = {**data.get("ui", {}), "users": {}, "users_file": str(folder / "users.json"), "collection_access": {}}
    for section, key in (("embedder", "source"), ("llm", "source"), ("retrieval", "reranker")):
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and not value.startswith("pkg:") and (settings.base_dir / value).exists():
            data[section][key] = str((settings.base_dir / value).resolve())  # a model folder next to the config
    if answer_mode:
        data["llm"] = {**data.get("llm", {}), "answer_mode": answer_mode}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    ready_s: float

    def last_line(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def serving(config: Path, folder: Path) -> Iterator[Server]:
    """``kura serve`` on a free loopback port; ready when the page answers; always stopped afterwards."""
    port = free_port()
    kura = Path(sys.executable).with_name("kura")
    entry = [str(kura)] if kura.exists() else [sys.executable, "-c", "from rag.cli.main import main; main()"]
    command = [*entry, "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        "GRADIO_TEMP_DIR": str(folder / "gradio-tmp"),
    }
    log = folder / "serve.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    server = Server(f"http://127.0.0.1:{port}/", proc, log, 0.0)
    try:
        while True:
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                _NO_PROXY.open(server.url, timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if proc.poll() is not None:
                raise BenchError(f"kura serve exited with status {proc.returncode}: {server.last_line()}")
            if time.monotonic() - started > START_TIMEOUT_S:
                raise BenchError(f"kura serve was not ready after {START_TIMEOUT_S:.0f} s: {server.last_line()}")
            time.sleep(0.2)
        server.ready_s = time.monotonic() - started
        yield server
    finally:
        server.stop()


def check_browser(executable: str) -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise BenchError(
            "the playwright package is missing: install it into this venv with `pip install playwright` "
            "(no browser download is needed: the system Chromium is used)"
        ) from None
    if not Path(executable).is_file():
        raise BenchError(f"Chromium not found at {executable}: install it with `apt-get install -y chromium`")


class Page:
    """The chat page in headless Chromium: a new chat per question, so no question becomes a follow-up."""

    def __init__(self, page: Any, url: str) -> None:
        from playwright.sync_api import expect

        self.page = page
        self.expect = expect
        page.goto(url)
        expect(page.locator("#kura-question textarea")).to_be_visible(timeout=120_000)
        expect(page.locator("#kura-collection input")).to_have_value(COLLECTION)

    def ask(self, question: str) -> dict[str, Any]:
        page = self.page
        if page.locator("#kura-chat .kura-turn").count():
            page.locator("#kura-clear").click()
            self.expect(page.locator("#kura-chat .kura-turn")).to_have_count(0)
        page.locator("#kura-question textarea").fill(question)
        page.evaluate(WATCH_JS)
        page.locator("#kura-ask").click()
        page.wait_for_function("() => window.__kuraBench.done !== null", timeout=ANSWER_TIMEOUT_S * 1000, polling=20)
        state: dict[str, Any] = page.evaluate("() => window.__kuraBench")
        if state["start"] is None:
            raise BenchError("the click on Ask was not seen by the page")
        if state["error"]:
            raise BenchError(f"the page showed an error for {question!r}: {state['error']}")
        return state


def in_process(assistant: Any, question: str) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = assistant.answer(question)
    return (time.perf_counter() - started) * 1000, answer


def timed_browser(page: Page, question: str) -> dict[str, Any]:
    state = page.ask(question)
    footer = state.get("footer") or ""
    total = re.search(r"total ([\d.]+) s", footer)
    partials: list[str] = state["partials"]
    final = re.sub(r"\s+", " ", state["final"] or "")
    last = re.sub(r"\s+", " ", partials[-1]) if partials else ""
    return {
        "ms": state["done"] - state["start"],
        "first_text_ms": state["first"] - state["start"],
        "server_total_s": float(total.group(1)) if total else None,
        "abstained": "model not called" in footer,
        "partial_updates": len(partials),
        "replaced": bool(last) and not final.startswith(last.rstrip("…").strip()),
        "answer": state["final"] or "",
        "streamed": partials[-1] if partials else "",
    }


def measure(args: argparse.Namespace, folder: Path) -> Run:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from ingest.collection import Collection
    from rag.assistant import open_assistant
    from rag.config import load_settings
    from rag.models.factory import load_embedder, load_llm

    questions, unanswerable = read_questions(args.questions_file)
    if len(questions) < 2:
        raise BenchError(f"{args.questions_file} needs at least 2 answerable questions (one is the warm-up)")
    run = Run(args.answer_mode or "config", skipped_unanswerable=unanswerable)
    run.cpus, run.load_before = os.cpu_count() or 0, os.getloadavg()

    if args.answer_mode:
        os.environ["KURA_LLM__ANSWER_MODE"] = args.answer_mode  # wins over a KURA_ variable already set
    config = write_config(args.config, folder, args.answer_mode)
    settings = load_settings(config)
    run.answer_mode = settings.llm.answer_mode
    say(f"loading models from {settings.models_dir}")
    embedder = load_embedder(settings, say)
    llm = load_llm(settings, say)  # before the server starts, so a first conversion happens once
    report = Collection(settings, COLLECTION).ingest([args.sample], embedder)
    if not report.counts().get("added"):
        raise BenchError(f"nothing was ingested from {args.sample}: {report.counts()}")
    say(f"ingested {args.sample} into a temporary collection: {report.counts()}")
    assistant = open_assistant(settings, COLLECTION, embedder=embedder, llm=llm)

    say("starting kura serve")
    with serving(config, folder) as server, sync_playwright() as playwright:
        run.server_ready_s = server.ready_s
        say(f"kura serve ready in {server.ready_s:.1f} s at {server.url}")
        try:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            raise BenchError(f"Chromium at {args.chromium} did not start: {str(exc).splitlines()[0]}") from None
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            context.set_default_timeout(60_000)
            page = Page(context.new_page(), server.url)
            # Warm-up: from the end of the list, the first question that reaches past the abstention gates
            # (an abstention would leave the LLM cold); it is then left out of the timed questions.
            for warmup in reversed(questions[-5:]):
                if not in_process(assistant, warmup["question"])[1].abstained:
                    break
            say(f"warm-up ({warmup['id']}), not counted: {warmup['question']}")
            timed_browser(page, warmup["question"])
            run.warmup = warmup["id"]
            pool = [q for q in questions if q is not warmup]
            chosen = pool[: args.questions] if args.questions else pool
            for i, item in enumerate(chosen):
                browser_first = i % 2 == 0  # alternate, so drift in the machine's load hits both sides alike
                seen: dict[str, Any] = {}
                for side in ("browser", "in-process") if browser_first else ("in-process", "browser"):
                    if side == "browser":
                        seen["browser"] = timed_browser(page, item["question"])
                    else:
                        seen["in-process"], seen["answer"] = in_process(assistant, item["question"])
                seen_b = seen["browser"]
                timed = Timed(
                    id=item["id"],
                    question=item["question"],
                    browser_ms=round(seen_b["ms"], 1),
                    browser_first_text_ms=round(seen_b["first_text_ms"], 1),
                    inprocess_ms=round(seen["in-process"], 1),
                    server_total_s=seen_b["server_total_s"],
                    abstained=seen_b["abstained"] or bool(seen["answer"].abstained),
                    partial_updates=seen_b["partial_updates"],
                    replaced=seen_b["replaced"],
                    answer=seen_b["answer"],
                    streamed=seen_b["streamed"],
                    inprocess_answer=seen["answer"].answer,
                    order="browser first" if browser_first else "in-process first",
                )
                run.questions.append(timed)
                say(
                    f"{item['id']}: browser {timed.browser_ms:,.0f} ms, in-process {timed.inprocess_ms:,.0f} ms"
                    + (" (abstained)" if timed.abstained else "")
                )
        except PlaywrightError as exc:
            raise BenchError(f"the browser failed: {str(exc).splitlines()[0]}") from None
        finally:
            browser.close()
    run.load_after = os.getloadavg()
    return run


def summarize(run: Run) -> dict[str, Any]:
    browser = [q.browser_ms for q in run.questions]
    local = [q.inprocess_ms for q in run.questions]
    first = [q.browser_first_text_ms for q in run.questions]
    ratios = [b / i for b, i in zip(browser, local, strict=True) if i > 0]
    # What the page adds on top of the server's own total (its footer, 0.1 s resolution): transport and rendering.
    page = [q.browser_ms - q.server_total_s * 1000 for q in run.questions if q.server_total_s is not None]
    stats = {
        "browser_ms": {"p50": percentile(browser, 50), "p95": percentile(browser, 95)},
        "inprocess_ms": {"p50": percentile(local, 50), "p95": percentile(local, 95)},
        "browser_first_text_ms": {"p50": percentile(first, 50), "p95": percentile(first, 95)},
    }
    stats["ratio"] = {
        "p50": stats["browser_ms"]["p50"] / stats["inprocess_ms"]["p50"],
        "p95": stats["browser_ms"]["p95"] / stats["inprocess_ms"]["p95"],
        "median_per_question": statistics.median(ratios),
    }
    stats["browser_minus_server_total_ms"] = {"p50": percentile(page, 50)} if page else None
    return stats


def row(label: str, values: dict[str, float]) -> str:
    return f"| {label} | {values['p50']:,.0f} | {values['p95']:,.0f} |"


def table(run: Run, stats: dict[str, Any]) -> str:
    n = len(run.questions)
    abstained = sum(q.abstained for q in run.questions)
    replaced = sum(q.replaced for q in run.questions)
    ratio = stats["ratio"]
    lines = [
        f"answer_mode {run.answer_mode}: {n} factoid questions ({abstained} abstained, still timed), "
        f"{run.skipped_unanswerable} unanswerable skipped, warm-up {run.warmup} not counted",
        f"{run.cpus} CPUs, load average {run.load_before[0]:.2f} before / {run.load_after[0]:.2f} after; "
        f"kura serve ready in {run.server_ready_s:.1f} s",
        "",
        "| question → final answer | p50 ms | p95 ms |",
        "|---|---:|---:|",
        row("browser (click Ask → footer shown)", stats["browser_ms"]),
        row("in-process `Assistant.answer`", stats["inprocess_ms"]),
        f"| browser / in-process | {ratio['p50']:.2f}× | {ratio['p95']:.2f}× |",
        "",
        f"per-question ratio, median: {ratio['median_per_question']:.2f}×; browser first answer text p50 "
        f"{stats['browser_first_text_ms']['p50']:,.0f} ms; streamed text replaced by a different final answer "
        f"in {replaced} of {n}",
    ]
    if stats["browser_minus_server_total_ms"]:
        lines.append(
            f"browser time minus the server's own total (footer, 0.1 s steps), p50: "
            f"{stats['browser_minus_server_total_ms']['p50']:,.0f} ms"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--answer-mode", choices=["auto", "generate", "extract", "copy"], default=None)
    parser.add_argument("--questions", type=int, default=0, help="time the first N factoid questions (default all)")
    parser.add_argument("--json", action="store_true", help="print every number as JSON (the table goes to stderr)")
    parser.add_argument("--config", type=Path, default=None, help="config to start from (default ./config.yaml)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium executable (default {CHROMIUM})")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.questions_file = args.sample / "questions.jsonl"
    if args.questions < 0:
        parser.error("--questions must be 0 (all) or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from rag.errors import KuraError

    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="kura-bench-browser-"))
    try:
        check_browser(args.chromium)
        if not args.questions_file.is_file():
            raise BenchError(f"no question set at {args.questions_file}")
        run = measure(args, folder)
        stats = summarize(run)
        if args.json:  # the numbers on stdout, the table still readable on stderr
            print(json.dumps({"stats": stats, **asdict(run)}, indent=2, ensure_ascii=False))
            say(table(run, stats))
        else:
            print(table(run, stats))
        return 0
    except (BenchError, KuraError) as exc:
        print(f"bench_browser: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_browser: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
