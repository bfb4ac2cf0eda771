"""The BM25 keyword index's build time and memory per keyword analyzer, over a real collection.

Why: issue 14's ``language`` analyzer cuts Japanese into words with Janome, which is pure Python and far
slower than character bigrams; its terms are cached (``rag.analyzers``). The index is built in memory on
a process's first keyword search (and again after the collection changes), so its build time is the first
question's wait. This reads the collection's chunks once, then builds the index with ``bigram``, with
``language`` and an empty cache (the first process after an upgrade), and with ``language`` and the cache
that build left (every later process). Memory is how much the process's resident set grew while the index
was built and held (tracemalloc would slow Janome several times), and its peak RSS at the end. A benchmark,
not a test: it prints figures.

    PYTHONPATH=. .venv/bin/python scripts/bench_keywords.py --collection large-eval
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from rag.analyzers import keyword_analyzer
from rag.config import load_settings
from rag.retrieval import KeywordIndex
from rag.store import connect


class Listed:
    """The chunks read once, served to each build as the store would."""

    def __init__(self, name: str, chunks: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.name, self.chunks, self.writes = name, chunks, 0

    def count(self) -> int:
        return len(self.chunks)

    def all_chunks(self) -> list[tuple[str, str, dict[str, Any]]]:
        return self.chunks


def build(kind: str, store: Listed, cache: Path) -> dict[str, Any]:
    process = psutil.Process()
    before = process.memory_info().rss
    index = KeywordIndex(keyword_analyzer(kind, cache), file_names=True)
    started = time.perf_counter()
    index.search(store, "warm up", 5)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    grown = process.memory_info().rss - before
    del index
    return {"analyzer": kind, "seconds": round(seconds, 1), "index_mb": round(grown / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    name = args.collection or settings.vectorstore.collection
    started = time.perf_counter()
    chunks = connect(settings).open(name).all_chunks()
    read = round(time.perf_counter() - started, 1)
    store = Listed(name, chunks)
    with tempfile.TemporaryDirectory() as cache:
        rows = [build("bigram", store, Path(cache)), build("language", store, Path(cache))]
        rows.append({**build("language", store, Path(cache)), "analyzer": "language (cached)"})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"chunks": len(chunks), "read_s": read, "builds": rows, "peak_rss_mb": round(peak)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{len(chunks)} chunks of '{name}', read in {read} s")
    for row in rows:
        print(f"  {row['analyzer']:18s} {row['seconds']:7.1f} s  index {row['index_mb']} MB")
    print(f"peak RSS {result['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
