"""Chunk size and overlap measured on the real eval: ingest the corpus once per setting, then score retrieval.

Answers are taken in ``extract`` mode (the best evidence sentence, no LLM), so a setting costs one
ingest plus a retrieval pass: hit@k and answer-in-context@k depend on the chunks, not on the model.

    .venv/bin/python data/eval/sweep.py --corpus data/eval/corpus --work /tmp/kura-sweep \
        --sizes 100/15 150/20 200/30 250/40
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KURA = Path(sys.executable).with_name("kura")
COLUMNS = ("hit@1", "hit@5", "mrr", "answer_in_context", "answer_accuracy", "false_abstention")


def _run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run([str(KURA), *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"kura {args[0]} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout


def measure(corpus: Path, questions: Path, work: Path, size: int, overlap: int, models: Path) -> dict[str, object]:
    folder = work / f"chunks-{size}-{overlap}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(
        f"paths:\n  models: {models}\n  store: {folder / 'store'}\n"
        f"ingest:\n  chunk_size: {size}\n  chunk_overlap: {overlap}\n"
        "llm:\n  answer_mode: extract\n",
        encoding="utf-8",
    )
    env = dict(os.environ)  # --config: a config.yaml in the folder this runs from would win over $KURA_CONFIG
    ingested = json.loads(_run(["ingest", str(corpus), "--json", "--config", str(config)], env))
    metrics = json.loads(_run(["eval", str(questions), "--config", str(config)], env))
    return {"chunk_size": size, "overlap": overlap, "chunks": ingested.get("chunks_written"), **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / "corpus")
    parser.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    parser.add_argument("--work", type=Path, required=True, help="Stores are built here, one per setting.")
    parser.add_argument("--models", type=Path, default=HERE.parent / "models", help="Converted models folder.")
    parser.add_argument("--sizes", nargs="+", default=["100/15", "150/20", "200/30", "250/40"], help="SIZE/OVERLAP")
    args = parser.parse_args()
    rows = []
    for spec in args.sizes:
        size, overlap = (int(part) for part in spec.split("/"))
        rows.append(measure(args.corpus, args.questions, args.work, size, overlap, args.models))
        print(json.dumps({k: rows[-1][k] for k in ("chunk_size", "overlap", "chunks", *COLUMNS)}), flush=True)
    print("\n| chunk tokens / overlap | chunks | " + " | ".join(COLUMNS) + " |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    for row in rows:
        cells = " | ".join(str(row[c]) for c in COLUMNS)
        print(f"| {row['chunk_size']} / {row['overlap']} | {row['chunks']} | {cells} |")


if __name__ == "__main__":
    main()
