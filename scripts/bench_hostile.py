"""Seconds and peak memory of parsing each hostile document of issue 15, with an older checkout and this one.

    python scripts/bench_hostile.py [--before /path/to/old/checkout] [--cap 120]

Each case is built in a temporary folder and parsed (load, then chunk with the embedder's tokenizer) in a
fresh process, as an ingest worker would; the peak is that process's maximum resident size. With this
checkout the process has the worker's limits (ingest.parse_memory_mb, ingest.parse_timeout_s); the older
one runs until ``--cap`` seconds. The numbers go to docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rag.config import load_settings  # noqa: E402
from tests.helpers import (  # noqa: E402
    csv_wide_header,
    docx_empty_paragraphs,
    docx_zero_part,
    markdown_heading_bomb,
    pdf_one_stream,
)

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import tokenizers
from ingest.chunking import chunk_sections
from ingest import loaders
backend = tokenizers.Tokenizer.from_file(sys.argv[3])
backend.no_padding(); backend.no_truncation()
count = lambda text: len(backend.encode(text, add_special_tokens=True).ids)
limits = json.loads(sys.argv[4])
if limits:
    memory = limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
started = time.perf_counter()
try:
    if limits:
        from ingest.documents import TextCaps
        sections = loaders.load_file(Path(sys.argv[2]), TextCaps(limits["per_file"], limits["per_page"]))
    else:
        sections = loaders.load_file(Path(sys.argv[2]))
    outcome = f"{len(chunk_sections(sections, count, 200, 30, 256))} chunks"
except MemoryError:
    outcome = "MemoryError (the memory limit)"
except Exception as exc:
    outcome = str(exc)[:160]
print(json.dumps({"seconds": time.perf_counter() - started, "outcome": outcome,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_cases(folder: Path) -> dict[str, Path]:
    cases = {
        "docx, 1 GB zero-filled part": docx_zero_part(folder / "zero-part.docx", 1024),
        "docx, 3 million empty paragraphs": docx_empty_paragraphs(folder / "paragraphs.docx", 3_000_000),
        "pdf, one 5 MB content stream": pdf_one_stream(folder / "stream.pdf", 5 * 1024 * 1024),
        "pdf, the 5 MB stream on 10 pages": pdf_one_stream(folder / "stream10.pdf", 5 * 1024 * 1024, pages=10),
    }
    texts = {
        "md, '# a' + 80,000 spaces + 'b'": ("heading.md", markdown_heading_bomb(80_000)),
        "csv, 1M-column header": ("wide.csv", csv_wide_header(1_000_000, 2_000)),
        "txt, 200 KB without whitespace": ("solid.txt", "kura." * 40_000),
    }
    for label, (name, text) in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
        cases[label] = folder / name
    return cases


def parse(checkout: Path, path: Path, tokenizer: Path, limits: dict[str, float], cap: float) -> dict[str, object]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(checkout), str(path), str(tokenizer), json.dumps(limits)],
            capture_output=True,
            text=True,
            timeout=cap,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": cap, "outcome": f"still running after {cap:g} s (stopped)", "peak_mb": None}
    if done.returncode:
        return {"seconds": time.perf_counter() - started, "outcome": f"died ({done.returncode})", "peak_mb": None}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def zip_staging(members: int) -> dict[str, object]:
    """5,000 members of one name through the web upload's staging (ui.uploads)."""
    from ui.uploads import stage_uploads

    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "same.zip"
        with zipfile.ZipFile(archive, "w") as out:
            for _ in range(members):
                out.writestr("notes.md", "# Notes\n\nthe same name\n")
        started = time.perf_counter()
        staged = stage_uploads([(archive, "same.zip")], Path(tmp) / "up", "docs", 50, 32)
        files = sum(1 for p in staged.folder.rglob("*") if p.is_file())
        return {"seconds": time.perf_counter() - started, "outcome": f"{files} files staged", "peak_mb": None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="an older checkout to measure too")
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--tokenizer", type=Path, help="the embedder's tokenizer.json")
    args = parser.parse_args()
    ingest = load_settings(REPO / "config.yaml").ingest
    limits = {
        "memory_mb": ingest.parse_memory_mb,
        "per_file": ingest.max_chars_per_file,
        "per_page": ingest.max_chars_per_page,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in build_cases(Path(tmp)).items():
            row: dict[str, object] = {"case": label, "bytes": path.stat().st_size}
            if args.before:
                row["before"] = parse(args.before, path, args.tokenizer, {}, args.cap)
            row["after"] = parse(REPO, path, args.tokenizer, limits, ingest.parse_timeout_s)
            print(json.dumps(row), flush=True)
    print(json.dumps({"case": "zip, 5,000 members of one name", "after": zip_staging(5000)}), flush=True)


if __name__ == "__main__":
    main()
