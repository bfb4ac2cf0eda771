"""Folder sync at scale: a generated folder of small files watched by ``FolderSync`` (``kura ingest --watch``).

    PYTHONPATH=. .venv/bin/python scripts/bench_sync.py [--files 10000] [--edits 10] [--fake-embedder] [--json]

1. the first pass (files/s, chunks/s), 2. a pass with nothing changed (stat only; median of 3), 3. ``--edits``
files touched (mtime only: hashed, nothing embedded) and the time until the watcher has recorded them,
4. ``--edits`` files edited one after another, each with a new fact, and the latency from the save to an
answer of the assistant (``open_assistant``, the configured answer mode) that holds it: p50/p95, also to the
first retrieval that finds it. The embedder is the configured one unless ``--fake-embedder`` (hashed words,
from tests/fakes.py): then the numbers say what the sync itself costs, and are labelled so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from ingest.collection import Collection, IngestOptions  # noqa: E402
from ingest.manifest import Manifest, manifest_path  # noqa: E402
from ingest.watch import FolderSync  # noqa: E402
from rag.config import Settings, load_settings  # noqa: E402

TOPICS = ["badge", "printer", "parking", "kitchen", "travel", "payroll", "backup", "visitor", "locker", "canteen"]
POLL_S = 0.02


def note(i: int, code: str) -> str:
    topic = TOPICS[i % len(TOPICS)]
    return (
        f"# Room {i}\n\nThe locker code of room {i} is {code}. The {topic} rule of room {i} "
        f"allows {i % 17 + 1} guests, and the {topic} desk opens at {7 + i % 5} o'clock.\n"
    )


def generate(folder: Path, files: int) -> list[Path]:
    """``files`` small notes in 100 sub-folders; each holds one locker code no other file has."""
    paths = []
    for i in range(files):
        path = folder / f"team-{i % 100:02d}" / f"room-{i:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(note(i, f"{i:05d}-A"), encoding="utf-8")
        paths.append(path)
    return paths


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_until(condition: Any, timeout_s: float = 600.0) -> float:
    """Seconds until ``condition()`` holds, polled every 20 ms."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f} s")
        time.sleep(POLL_S)
    return time.perf_counter() - started


def recorded_mtimes(settings: Settings, keys: list[str]) -> dict[str, int]:
    manifest = Manifest(manifest_path(settings))
    try:
        records = manifest.files(settings.vectorstore.collection)
    finally:
        manifest.close()
    return {key: records[key].mtime_ns for key in keys if key in records}


def say(result: dict[str, Any]) -> None:
    """The figures so far on stderr: a long run that fails later still leaves them."""
    print(json.dumps(result), file=sys.stderr, flush=True)


def load_embedder(settings: Settings, fake: bool) -> Any:
    if fake:
        from tests.fakes import HashEmbedder

        return HashEmbedder()
    from rag.models.factory import load_embedder as real

    return real(settings, lambda message: print(message, file=sys.stderr))


def edit_latency(settings: Settings, embedder: Any, paths: list[Path], edits: int) -> dict[str, Any]:
    """Save a new fact into each of ``edits`` files in turn; seconds to retrieving it and to an answer with it."""
    from rag.assistant import open_assistant

    assistant = open_assistant(settings, embedder=embedder)
    assistant.answer("What is the locker code of room 0?")  # loads the LLM and builds keyword search once
    retrieved, answered, held = [], [], 0
    step = max(1, len(paths) // edits)
    for n, i in enumerate(range(0, step * edits, step)):
        code = f"{i:05d}-E{n}"
        question = f"What is the locker code of room {i}?"
        saved = time.perf_counter()
        paths[i].write_text(note(i, code), encoding="utf-8")
        wait_until(lambda q=question, c=code: any(c in h.text for h in assistant.retrieve(q, q).hits))
        retrieved.append(time.perf_counter() - saved)
        answer = assistant.answer(question)
        answered.append(time.perf_counter() - saved)
        held += code in answer.answer
    return {
        "edits": edits,
        "retrieved_p50_s": round(statistics.median(retrieved), 2),
        "retrieved_p95_s": round(percentile(retrieved, 0.95), 2),
        "answer_p50_s": round(statistics.median(answered), 2),
        "answer_p95_s": round(percentile(answered, 0.95), 2),
        "answers_with_the_new_fact": held,
    }


def run(files: int, edits: int, fake: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kura-bench-sync-"))
    folder = work / "docs"
    paths = generate(folder, files)
    settings = load_settings(HERE / "config.yaml", paths={"store": str(work / "store"), "uploads": str(work / "up")})
    embedder = load_embedder(settings, fake)
    result: dict[str, Any] = {"files": files, "embedder": "hashed words (fake)" if fake else embedder.name}
    result["settle_s"] = settings.ingest.watch_settle_s

    folders = FolderSync(Collection(settings), [folder], embedder, settings.ingest.watch_settle_s)
    report = folders.first_pass()
    result["first_pass_s"] = round(report.seconds, 1)
    result["first_pass_files_per_s"] = round(files / report.seconds, 1)
    result["first_pass_chunks_per_s"] = round(report.chunks_per_s, 1)
    result["embed_share"] = round(report.embed_seconds / report.seconds, 2)

    say(result)
    rescans = [Collection(settings).ingest([folder], embedder, IngestOptions(prune=True)).seconds for _ in range(3)]
    result["no_change_rescan_s"] = round(statistics.median(rescans), 3)

    watching = threading.Thread(target=folders.watch)
    watching.start()
    try:
        touched = paths[1 :: max(1, files // edits)][:edits]
        now = time.time_ns()
        for path in touched:
            os.utime(path, ns=(now, now))
        keys = [str(path) for path in touched]
        result["touched_synced_s"] = round(
            wait_until(lambda: all(m == now for m in recorded_mtimes(settings, keys).values())), 2
        )
        say(result)
        result.update(edit_latency(settings, embedder, paths, edits))
    finally:
        folders.stop.set()
        watching.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--fake-embedder", action="store_true", help="hashed words: the sync's own cost only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.files, args.edits, args.fake_embedder)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
