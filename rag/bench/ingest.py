"""Ingest: Kura against the notebook pipeline a user would write instead, on the same folder, in one run.

Each side runs in its own spawned process (``in_child``), so its peak RSS is its own, and with several
runs the sides alternate (Kura, baseline, Kura, ...) so load that comes and goes on a shared machine
slows both alike. Kura ingests into a fresh temporary store every run (an existing store would report
the files as unchanged and measure only hashing). Wall time is what a user waits for: the embedding
model's load, then the ingest; the load is also reported on its own.

The baseline, as a notebook would do it: the model first, then every file's text read one after the other,
LangChain's ``RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=50)`` (characters),
``SentenceTransformer(<the same bundled all-MiniLM-L6-v2>, backend="openvino")`` (sentence-transformers'
OpenVINO backend: the strongest thing a user would pick instead of Kura) and a fresh cosine Chroma
collection written in batches of 1,024. Its text comes from Kura's own loaders (``ingest.loaders``), so
both sides read the same text from every file; only the parsing is serial, as in a notebook.

Padding share is padded tokens over executed tokens: Kura's from its embedder's own counters
(``EmbedStats.tokens`` and ``padded_tokens``), sentence-transformers' from the attention mask of every
batch it feeds its model (each batch padded to its longest text).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.bench.isolate import in_child
from rag.bench.timing import Plan, peak_rss_mb, summary
from rag.config import Settings

KURA = "Kura"
BASELINE = "notebook (LangChain splitter, sentence-transformers OpenVINO, Chroma)"
SPLIT_CHARS = 400
SPLIT_OVERLAP = 50
WRITE_BATCH = 1024


def _kura(settings: Settings, path: str) -> dict[str, Any]:
    """One Kura ingest in this (child) process: the embedder's load, then ``Collection.ingest``."""
    from ingest.collection import Collection
    from rag.models.factory import load_embedder

    started = time.perf_counter()
    embedder = load_embedder(settings)
    load_s = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp(prefix="kura-bench-ingest-"))
    custom = settings.model_copy(deep=True)
    custom.paths.store = folder
    custom.vectorstore.path = None
    custom.vectorstore.url = None
    try:
        report = Collection(custom, "bench-ingest").ingest([Path(path)], embedder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    outcome = report.counts()
    counts = {"tokens": embedder.stats.tokens, "executed": embedder.stats.tokens + embedder.stats.padded_tokens}
    return _row(
        load_s + report.seconds,
        load_s,
        report.embed_seconds,
        outcome["added"],
        outcome["skipped"],
        report.chunks_written,
        counts,
    )


def _texts(path: Path, settings: Settings) -> tuple[list[tuple[str, str]], int]:
    """Every readable file's text, read serially through Kura's loaders (the same text Kura sees); and
    how many files were skipped (unsupported, too large, unreadable)."""
    from ingest.documents import SkipFile, TextCaps
    from ingest.loaders import load_document
    from ingest.walk import discover

    ingest = settings.ingest
    caps = TextCaps(ingest.max_chars_per_file, ingest.max_chars_per_page)
    texts: list[tuple[str, str]] = []
    skipped = 0
    for found in discover([path], ingest.max_file_mb * 1024 * 1024):
        if found.skip:
            skipped += 1
            continue
        try:
            loaded = load_document(found.path, caps, ingest.ocr)
        except SkipFile:
            skipped += 1
            continue
        texts.append((found.rel, "\n\n".join(section.text for section in loaded.sections)))
    return texts, skipped


def _count_st_tokens(model: Any) -> dict[str, int]:
    """Count the tokens of every batch ``encode`` feeds the model (its ``preprocess`` output's mask)."""
    counts = {"tokens": 0, "executed": 0}
    preprocess = model.preprocess

    def counted(*args: Any, **kwargs: Any) -> Any:
        features = preprocess(*args, **kwargs)
        mask = features["attention_mask"]
        counts["executed"] += int(mask.numel())
        counts["tokens"] += int(mask.sum())
        return features

    model.preprocess = counted
    return counts


def _baseline(settings: Settings, path: str) -> dict[str, Any]:
    """The notebook pipeline in this (child) process: model, texts, split, encode, Chroma."""
    import chromadb
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.bench.embed import sentence_transformer

    started = time.perf_counter()
    model = sentence_transformer(settings, "openvino")
    load_s = time.perf_counter() - started
    counts = _count_st_tokens(model)
    texts, skipped = _texts(Path(path), settings)
    splitter = RecursiveCharacterTextSplitter(chunk_size=SPLIT_CHARS, chunk_overlap=SPLIT_OVERLAP)
    chunks = [(rel, index, piece) for rel, text in texts for index, piece in enumerate(splitter.split_text(text))]
    embed_started = time.perf_counter()
    vectors = model.encode([piece for _, _, piece in chunks], normalize_embeddings=True)
    embed_s = time.perf_counter() - embed_started
    folder = tempfile.mkdtemp(prefix="kura-bench-baseline-")
    try:
        client = chromadb.PersistentClient(path=folder, settings=chromadb.Settings(anonymized_telemetry=False))
        collection = client.create_collection("baseline", metadata={"hnsw:space": "cosine"})
        for start in range(0, len(chunks), WRITE_BATCH):
            batch = chunks[start : start + WRITE_BATCH]
            collection.add(
                ids=[f"{rel}#{index}" for rel, index, _ in batch],
                embeddings=vectors[start : start + WRITE_BATCH],
                documents=[piece for _, _, piece in batch],
                metadatas=[{"source": rel, "chunk": index} for rel, index, _ in batch],
            )
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _row(seconds, load_s, embed_s, len(texts), skipped, len(chunks), counts)


def _row(
    seconds: float, load_s: float, embed_s: float, files: int, skipped: int, chunks: int, counts: dict[str, int]
) -> dict[str, Any]:
    executed = counts["executed"]
    return {
        "seconds": seconds,
        "load_s": load_s,
        "embed_seconds": embed_s,
        "files": files,
        "skipped": skipped,
        "chunks": chunks,
        "tokens": counts["tokens"],
        "padding_share": (executed - counts["tokens"]) / executed if executed else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def _summarized(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run figures as median (min-max); counts from the last run (every run reads the same folder)."""
    last = runs[-1]
    return {
        "files": last["files"],
        "skipped": last["skipped"],
        "chunks": last["chunks"],
        "tokens": last["tokens"],
        "seconds": summary([r["seconds"] for r in runs]),
        "load_s": summary([r["load_s"] for r in runs], 2),
        "files_per_s": summary([r["files"] / r["seconds"] for r in runs], 2),
        "chunks_per_s": summary([r["chunks"] / r["seconds"] for r in runs], 1),
        "tokens_per_s": summary([r["tokens"] / r["seconds"] for r in runs], 0),
        "embed_tokens_per_s": summary([r["tokens"] / r["embed_seconds"] for r in runs if r["embed_seconds"]], 0),
        "embed_share": summary([r["embed_seconds"] / r["seconds"] for r in runs]),
        "padding_share": last["padding_share"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def _warm(path: Path) -> None:
    """Read every file once, so the first side measured does not pay for the disk alone."""
    for file in [path] if path.is_file() else path.rglob("*"):
        if file.is_file():
            file.read_bytes()


def run(settings: Settings, plan: Plan, say: Any, path: Path) -> dict[str, Any]:
    """Both sides ``plan.ingest_runs`` times, alternating, each run in a fresh process."""
    folder = path.resolve()
    _warm(folder)
    sides = {KURA: _kura, BASELINE: _baseline}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    errors: dict[str, str] = {}
    for index in range(plan.ingest_runs):
        order = list(sides) if index % 2 == 0 else list(reversed(sides))
        for name in order:
            if name in errors:
                continue
            say(f"bench ingest: {name}, run {index + 1} of {plan.ingest_runs}, {folder}")
            try:
                runs[name].append(in_child(sides[name], settings, str(folder)))
            except Exception as exc:  # the baseline's missing extra must not lose Kura's figures
                errors[name] = f"{type(exc).__name__}: {exc}"
    engines: dict[str, dict[str, Any]] = {
        name: ({"error": errors[name]} if name in errors else _summarized(runs[name])) for name in sides
    }
    ratio = None
    if not errors:
        ratio = round(engines[KURA]["seconds"]["median"] / engines[BASELINE]["seconds"]["median"], 3)
    return {"path": str(folder), "runs": plan.ingest_runs, "engines": engines, "wall_ratio_vs_baseline": ratio}
