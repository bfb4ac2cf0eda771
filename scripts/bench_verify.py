"""What a click on a citation costs the server: a PDF page rendered to PNG, and the evidence boxes found on it.

    python scripts/bench_verify.py [--pdf data/sample/security-policy.pdf] [--runs 20] [--json]

Cold: a new renderer (empty cache) for every page, so each one opens the file, draws the page at
``verify.scale``, encodes the PNG and reads the page's words; the file's content hash is computed once per
run, as the server does once per file version. Cached: the same page asked for again (a second click, a
page flipped back to). Also timed: the whole route, over HTTP in process (FastAPI's TestClient), cold.
Prints p50 and p95 in milliseconds for each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rag.config import load_settings  # noqa: E402
from rag.pages import FileVersions, PdfiumPages, load_pages  # noqa: E402

SENTENCE = "Every suspected incident must be reported within 4 hours of discovery"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "n": len(ordered),
    }


def click(pages: PdfiumPages, versions: FileVersions, pdf: Path, page: int) -> float:
    """One citation's server work: the page image and the evidence boxes; milliseconds."""
    started = time.perf_counter()
    version = versions.of(pdf)
    pages.render(version, page)
    pages.highlight(version, page, [SENTENCE])
    return (time.perf_counter() - started) * 1000


def route_timings(pdf: Path, runs: int, count: int) -> list[float]:
    """The page image's route, cold each time: a new app with a new renderer, a collection holding ``pdf``."""
    import gradio as gr
    from fastapi.testclient import TestClient

    from ingest.collection import Collection
    from tests.conftest import write_config
    from tests.fakes import HashEmbedder
    from ui.server import create_app
    from ui.verify import Verifier

    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(write_config(Path(folder)))
        docs = Path(folder) / "docs"
        docs.mkdir()
        (docs / pdf.name).write_bytes(pdf.read_bytes())
        Collection(settings, "kura").ingest([docs], HashEmbedder())
        doc = Collection(settings, "kura").documents()[0].id
        with gr.Blocks() as demo:
            gr.Markdown("Kura")
        samples = []
        for run in range(runs):
            verifier = Verifier(settings, login=False)
            app = create_app(settings, demo, "127.0.0.1", 7860, None, routers=[verifier.router()])
            client = TestClient(app, base_url="http://127.0.0.1:7860")
            started = time.perf_counter()
            response = client.get(f"/kura/docs/kura/{doc}/pages/{run % count + 1}.png")
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pdf", type=Path, default=REPO / "data" / "sample" / "security-policy.pdf")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(REPO / "config.yaml")
    count = load_pages(settings).page_count(FileVersions().of(args.pdf))
    cold, cached = [], []
    for run in range(args.runs):
        page = run % count + 1
        pages, versions = load_pages(settings), FileVersions()
        versions.of(args.pdf)  # the hash is taken once per file version, not per click
        cold.append(click(pages, versions, args.pdf, page))
        cached.append(click(pages, versions, args.pdf, page))
    result = {
        "pdf": str(args.pdf),
        "pages": count,
        "scale": settings.verify.scale,
        "cold": percentiles(cold),
        "cached": percentiles(cached),
        "route_cold": percentiles(route_timings(args.pdf, args.runs, count)),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.pdf.name}: {count} pages at scale {settings.verify.scale}, {args.runs} clicks each")
    for name in ("cold", "cached", "route_cold"):
        print(f"{name:>11}: p50 {result[name]['p50_ms']:7.1f} ms   p95 {result[name]['p95_ms']:7.1f} ms")


if __name__ == "__main__":
    main()
