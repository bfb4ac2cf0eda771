"""How cost grows: retrieval latency and memory against the store's size, ingest time against the folder's.

Why (issue 20): a user's store grows from a sample to a company's documents; this says what each tenfold
step costs. Two measurements, one run:

- retrieval: random unit vectors (HNSW latency depends on count and dimension, not meaning) added to one
  collection in steps (10k, then up to 100k, ...), through Kura's store adapter, in embedded Chroma and in
  a ``chroma run`` server on 127.0.0.1; at each size ``--queries`` real query embeddings (Kura's embedder)
  ask for ``retrieval.top_k`` with documents and metadata, as the answer chain does: p50/p95 and the RSS
  of the process that holds the index (this one when embedded, the server's otherwise), less the RSS
  before the collection existed. Sizes not measured (``--extrapolate``, 1M by default) are extrapolated
  from the last two measured ones and labelled so: latency linear in log(size) (HNSW's hops), memory
  linear in size. ``--serve-largest`` measures the server at the largest size on the files the embedded
  run wrote (served by ``chroma run`` as they lie), so 1M vectors are inserted once, not twice.
- ingest: ``Collection.ingest`` of 100, 1,000 and 10,000 small generated text files (one synthetic
  company-document paragraph of 50-250 words each) into a fresh store, with the real embedder.

``--plot PNG`` draws the curves (Pillow: matplotlib is not a dependency). Prints a Markdown table.

    PYTHONPATH=. .venv/bin/python scripts/bench_scaling.py --json scaling.json --plot docs/scaling.png
    PYTHONPATH=. .venv/bin/python scripts/bench_scaling.py --from-json scaling.json --plot docs/scaling.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.bench.timing import percentile


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb(pid: int | None = None) -> float:
    pages = int(Path(f"/proc/{pid or 'self'}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@contextmanager
def peak_rss(pid: int | None = None) -> Iterator[list[float]]:
    """The highest RSS sampled every 0.2 s while the block runs (in the list yielded, once it ends)."""
    peak = [rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss_mb(pid))


def question_vectors(embedder: Any, queries: int) -> np.ndarray:
    """Real query embeddings of synthetic questions: the warm-up ones first, then ``queries`` timed ones."""
    from rag.bench.corpus import synthetic_chunks
    from rag.bench.retrieve import WARMUP_QUERIES

    return embedder.embed([c.question for c in synthetic_chunks(queries + WARMUP_QUERIES, seed=23)])


def query_latencies(store: Any, vectors: np.ndarray, k: int) -> list[float]:
    """Milliseconds per query after the first ``WARMUP_QUERIES`` warm the index up."""
    from rag.bench.retrieve import WARMUP_QUERIES, query_ms

    query_ms(store, vectors[:WARMUP_QUERIES], k)
    return query_ms(store, vectors[WARMUP_QUERIES:], k)


def figures(latencies: list[float], rss: float, before: float, insert_s: float) -> dict[str, Any]:
    """One size's row: latency percentiles, the index holder's RSS and its growth since the store opened."""
    return {
        "insert_s": round(insert_s, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "rss_mb": round(rss, 1),
        "store_rss_mb": round(rss - before, 1),
    }


def settings_for(folder: Path, url: str | None) -> Any:
    from rag.config import load_settings

    settings = load_settings()
    settings.paths.store = folder
    settings.vectorstore.path = folder / "chroma"
    settings.vectorstore.url = url
    return settings


def retrieval(backend: str, sizes: list[int], queries: int, folder: Path, url: str | None, pid: int | None) -> Any:
    """One collection grown size by size; latency and the index holder's RSS at each."""
    from rag.bench.retrieve import add_synthetic
    from rag.models.factory import load_embedder
    from rag.store import open_store

    settings = settings_for(folder, url)
    embedder = load_embedder(settings)
    vectors = question_vectors(embedder, queries)
    k = settings.retrieval.top_k
    before = rss_mb(pid)
    store = open_store(settings, embedder, f"scaling-{backend}")
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"rss_before_mb": round(before, 1)}
    stored = 0
    for size in sizes:
        started = time.perf_counter()
        add_synthetic(store, rng, stored, size, embedder.dimension)
        stored = size
        insert_s = time.perf_counter() - started
        out[str(size)] = figures(query_latencies(store, vectors, k), rss_mb(pid), before, insert_s)
        say(f"  {backend} {size:,}: {out[str(size)]}")
    return out


def served_largest(size: int, queries: int, embedded: Path, folder: Path) -> dict[str, Any]:
    """The embedded run's store, served by ``chroma run`` as it lies on disk: the server measured at the
    largest size without inserting every vector a second time (900k more took ~30 min per backend here)."""
    import chromadb

    from rag.bench.retrieve import chroma_server
    from rag.models.factory import load_embedder
    from rag.store import open_store

    chromadb.api.client.SharedSystemClient.clear_system_cache()
    folder.mkdir(parents=True)
    (folder / "db").symlink_to(embedded / "chroma", target_is_directory=True)
    with chroma_server(folder) as (url, pid):
        before = rss_mb(pid)
        settings = settings_for(folder / "client", url)
        embedder = load_embedder(settings)
        vectors = question_vectors(embedder, queries)
        store = open_store(settings, embedder, "scaling-embedded")
        k = settings.retrieval.top_k
        out = figures(query_latencies(store, vectors, k), rss_mb(pid), before, 0.0)
        out.update(served_from_embedded=True, count=store.count())
    say(f"  server {size:,} (the embedded run's files): {out}")
    return out


def extrapolate(measured: dict[str, Any], sizes: list[int], targets: list[int]) -> dict[str, Any]:
    """Latency linear in log10(size), memory linear in size, from the last two measured sizes."""
    a, b = sizes[-2], sizes[-1]
    ra, rb = measured[str(a)], measured[str(b)]
    out: dict[str, Any] = {}
    for target in targets:
        steps = (math.log10(target) - math.log10(b)) / (math.log10(b) - math.log10(a))
        per_vector = (rb["store_rss_mb"] - ra["store_rss_mb"]) / (b - a)
        store = rb["store_rss_mb"] + per_vector * (target - b)
        out[str(target)] = {
            "extrapolated": True,
            "p50_ms": round(rb["p50_ms"] + steps * (rb["p50_ms"] - ra["p50_ms"]), 2),
            "p95_ms": round(rb["p95_ms"] + steps * (rb["p95_ms"] - ra["p95_ms"]), 2),
            "store_rss_mb": round(store, 1),
            "rss_mb": round(measured["rss_before_mb"] + store, 1),
            "insert_s": round(rb["insert_s"] / (b - a) * (target - b), 1),
        }
    return out


def write_files(folder: Path, count: int) -> None:
    from rag.bench.corpus import synthetic_chunks

    folder.mkdir(parents=True)
    for index, chunk in enumerate(synthetic_chunks(count, seed=7)):
        (folder / f"note-{index:05d}.txt").write_text(chunk.text + "\n", encoding="utf-8")


def ingest(sizes: list[int], folder: Path) -> dict[str, Any]:
    """Each folder size into its own fresh store, the embedder loaded once (real, fp32, the default)."""
    from ingest.collection import Collection
    from rag.models.factory import load_embedder

    embedder = load_embedder(settings_for(folder / "load", None))
    out: dict[str, Any] = {}
    for size in sizes:
        files = folder / f"files-{size}"
        write_files(files, size)
        settings = settings_for(folder / f"store-{size}", None)
        with peak_rss() as peak:
            report = Collection(settings, "scaling-ingest").ingest([files], embedder)
        out[str(size)] = {
            "files": report.counts()["added"],
            "chunks": report.chunks_written,
            "seconds": round(report.seconds, 1),
            "files_per_s": round(report.counts()["added"] / report.seconds, 1),
            "chunks_per_s": round(report.chunks_written / report.seconds, 1),
            "embed_share": round(report.embed_seconds / report.seconds, 2),
            "peak_rss_mb": round(peak[0], 1),
            "megabytes": round(sum(p.stat().st_size for p in files.iterdir()) / 1e6, 2),
        }
        say(f"  ingest {size:,} files: {out[str(size)]}")
        shutil.rmtree(files, ignore_errors=True)
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from rag.bench.retrieve import chroma_server

    sizes = [int(s) for s in args.sizes.split(",")]
    targets = [int(s) for s in args.extrapolate.split(",") if s]
    folder = Path(tempfile.mkdtemp(prefix="kura-bench-scaling-"))
    results: dict[str, Any] = {"sizes": sizes, "load_average_start": list(os.getloadavg())}
    try:
        say(f"retrieval, embedded Chroma: {args.sizes} vectors")
        results["embedded"] = retrieval("embedded", sizes, args.queries, folder / "embedded", None, None)
        say(f"retrieval, chroma run on 127.0.0.1: {args.sizes} vectors")
        server_sizes = sizes[:-1] if args.serve_largest else sizes
        (folder / "server").mkdir()
        with chroma_server(folder / "server") as (url, pid):
            results["server"] = retrieval("server", server_sizes, args.queries, folder / "client", url, pid)
        if args.serve_largest:
            results["server"][str(sizes[-1])] = served_largest(
                sizes[-1], args.queries, folder / "embedded", folder / "served"
            )
        for backend in ("embedded", "server"):
            if targets:
                results[backend].update(extrapolate(results[backend], server_sizes, targets))
        if args.files:
            say(f"ingest: {args.files} generated files")
            results["ingest"] = ingest([int(s) for s in args.files.split(",")], folder / "ingest")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results["load_average_end"] = list(os.getloadavg())
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| Chroma | chunks | p50 ms | p95 ms | index holder RSS MB (store's share) | insert s (from the last size) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend in ("embedded", "server"):
        sizes = sorted((k for k in results[backend] if k.isdigit()), key=int)
        for size in sizes:
            r = results[backend][size]
            mark = " (extrapolated)" if r.get("extrapolated") else ""
            mark = " (serving the embedded run's files)" if r.get("served_from_embedded") else mark
            lines.append(
                f"| {backend} | {int(size):,}{mark} | {r['p50_ms']} | {r['p95_ms']} | "
                f"{r['rss_mb']:,.0f} ({r['store_rss_mb']:,.0f}) | {r['insert_s']:,} |"
            )
    if "ingest" in results:
        lines += [
            "",
            "| files | MB | chunks | ingest s | files/s | chunks/s | embedder share | peak RSS MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size, r in results["ingest"].items():
            lines.append(
                f"| {int(size):,} | {r['megabytes']} | {r['chunks']:,} | {r['seconds']} | {r['files_per_s']} | "
                f"{r['chunks_per_s']} | {r['embed_share']:.0%} | {r['peak_rss_mb']:,.0f} |"
            )
    return "\n".join(lines)


def log_axis(lo: float, hi: float, start: int, end: int) -> Callable[[float], float]:
    span = math.log10(hi) - math.log10(lo)
    return lambda value: start + (math.log10(value) - math.log10(lo)) / span * (end - start)


def lin_axis(lo: float, hi: float, start: int, end: int) -> Callable[[float], float]:
    return lambda value: start + (value - lo) / (hi - lo) * (end - start)


def panel(draw: Any, box: tuple[int, int, int, int], title: str, series: list[dict[str, Any]], xlog: bool) -> None:
    """One chart: axes, ticks, and each series as a line (dashed where extrapolated) with its label."""
    from PIL import ImageFont

    font = ImageFont.load_default()
    left, top, right, bottom = box
    xs = [x for s in series for x, _ in s["points"]]
    ys = [y for s in series for _, y in s["points"]]
    x_lo, x_hi = (min(xs) / 1.5, max(xs) * 1.5) if xlog else (0, max(xs) * 1.1)
    y_hi = max(ys) * 1.15
    fx = log_axis(x_lo, x_hi, left, right) if xlog else lin_axis(x_lo, x_hi, left, right)
    fy = lin_axis(0, y_hi, bottom, top)
    draw.rectangle(box, outline="black")
    draw.text((left, top - 16), title, fill="black", font=font)
    for tick in sorted(set(xs)):
        x = fx(tick)
        draw.line([(x, bottom), (x, bottom + 4)], fill="black")
        label = f"{tick / 1e6:g}M" if tick >= 1e6 else f"{tick / 1000:g}k" if tick >= 1000 else f"{tick:g}"
        draw.text((x - 8, bottom + 6), label, fill="black", font=font)
    for i in range(5):
        value = y_hi * i / 4
        y = fy(value)
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
        draw.text((left - 40, y - 6), f"{value:,.0f}" if y_hi > 20 else f"{value:.1f}", fill="black", font=font)
    for index, s in enumerate(series):
        points = [(fx(x), fy(y)) for x, y in s["points"]]
        measured = points[: len(points) - s.get("extrapolated", 0)]
        if len(measured) > 1:
            draw.line(measured, fill=s["color"], width=2)
        for start, end in zip(points[len(measured) - 1 :], points[len(measured) :], strict=False):
            steps = 12
            for step in range(0, steps, 2):
                a, b = step / steps, (step + 1) / steps
                draw.line(
                    [(start[0] + (end[0] - start[0]) * a, start[1] + (end[1] - start[1]) * a),
                     (start[0] + (end[0] - start[0]) * b, start[1] + (end[1] - start[1]) * b)],
                    fill=s["color"], width=2,
                )  # fmt: skip
        for x, y in points:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=s["color"])
        draw.text((left + 8, top + 6 + 13 * index), s["label"], fill=s["color"], font=font)


def plot(results: dict[str, Any], path: Path) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (960, 300), "white")
    draw = ImageDraw.Draw(image)
    colors = {"embedded": (31, 119, 180), "server": (214, 39, 40)}
    latency, memory = [], []
    for backend, color in colors.items():
        sizes = sorted(int(k) for k in results[backend] if k.isdigit())
        rows = [results[backend][str(s)] for s in sizes]
        extra = sum(bool(r.get("extrapolated")) for r in rows)
        latency.append({
            "label": f"{backend} p95", "color": color, "extrapolated": extra,
            "points": [(s, r["p95_ms"]) for s, r in zip(sizes, rows, strict=True)],
        })  # fmt: skip
        memory.append({
            "label": f"{backend}: index holder", "color": color, "extrapolated": extra,
            "points": [(s, r["rss_mb"]) for s, r in zip(sizes, rows, strict=True)],
        })  # fmt: skip
    panel(draw, (60, 30, 330, 260), "retrieval p95 ms vs chunks (dashed: extrapolated)", latency, True)
    panel(draw, (380, 30, 640, 260), "RSS MB vs chunks", memory, True)
    if "ingest" in results:
        ingest = results["ingest"]
        points = [(int(k), r["seconds"]) for k, r in ingest.items()]
        series = [{"label": "real embedder, fp32", "color": (44, 160, 44), "points": points}]
        panel(draw, (690, 30, 940, 260), "ingest seconds vs files", series, True)
    start, end = results["load_average_start"][0], results["load_average_end"][0]
    footer = results.get("note") or (
        f"one run of scripts/bench_scaling.py; load average {start:.1f} at the start, {end:.1f} at the end"
    )
    draw.text((60, 282), footer, fill=(90, 90, 90))
    image.save(path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="measured store sizes, ascending")
    parser.add_argument("--extrapolate", default="1000000", help="sizes extrapolated from the last two measured")
    parser.add_argument(
        "--serve-largest",
        action="store_true",
        help="measure the server at the largest size on the embedded run's files instead of inserting again",
    )
    parser.add_argument("--queries", type=int, default=200, help="timed queries at each size")
    parser.add_argument("--files", default="100,1000,10000", help="folder sizes to ingest ('' to skip)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--from-json", type=Path, help="re-render a saved run instead of measuring")
    parser.add_argument("--plot", type=Path, help="draw the curves into this PNG")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = json.loads(args.from_json.read_text()) if args.from_json else measure(args)
    if args.json and not args.from_json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results))
    start, end = results["load_average_start"], results["load_average_end"]
    print(f"load average (1, 5, 15 min) at the start {start}, at the end {end}")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
