"""Score several settings on one question set with the models and the keyword index loaded once.

How README Quality's ablation rows are made: each variant is a list of ``section.key=value`` overrides
of the loaded settings (``base`` = none), all run in one process on one collection, so the rows compare
like with like. A variant's JSON lines go to ``--out-dir`` for reading its misses.

    .venv/bin/python scripts/eval_variants.py data/eval/questions-large.jsonl --collection large-eval \\
        --split dev base passage0:llm.passage_words=0 generate:llm.answer_mode=auto
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rag.answer import Assistant
from rag.assistant import open_assistant
from rag.config import Settings, load_settings
from rag.evaluate import evaluate, read_questions

SHOWN = (
    "answer_accuracy",
    "concise_accuracy",
    "follow_up_accuracy",
    "abstention_on_unanswerable",
    "false_abstention",
    "hit@5",
    "answer_in_context",
    "latency_p50_ms",
    "latency_p95_ms",
    "model_text_kept",
    "model_text_kept_right",
    "model_text_right",
)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def overridden(settings: Settings, overrides: list[str]) -> Settings:
    """A deep copy of ``settings`` with each ``section.key=value`` set (validated like config.yaml)."""
    data = settings.model_dump()
    for override in overrides:
        dotted, _, value = override.partition("=")
        section, key = dotted.split(".")
        data[section][key] = _value(value)
    return Settings.model_validate(data)


def variant(base: Assistant, settings: Settings) -> Assistant:
    """An Assistant with other settings that shares the models, the store and the built keyword index."""
    other = Assistant(settings, base.embedder, base.llm, base.store, base.retriever.reranker)
    other.retriever.keywords = base.retriever.keywords
    return other


def by_kind(metrics: dict[str, Any]) -> dict[str, Any]:
    groups = {**metrics.get("by_kind", {}), **metrics.get("by_lang", {})}
    return {name: group.get("concise_accuracy") for name, group in groups.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("variants", nargs="+", help="name or name:section.key=value[,section.key=value]")
    parser.add_argument("--collection", default=None)
    parser.add_argument("--split", default=None)
    parser.add_argument("--out-dir", type=Path, default=Path("data/eval/variants"))
    args = parser.parse_args()
    settings = load_settings()
    questions = read_questions(args.questions, args.split)
    base = open_assistant(settings, args.collection)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for spec in args.variants:
        name, _, overrides = spec.partition(":")
        assistant = variant(base, overridden(settings, [o for o in overrides.split(",") if o]))
        with (args.out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            metrics = evaluate(assistant, questions, on_result=lambda row: out.write(json.dumps(row) + "\n"))
        row = {key: metrics.get(key) for key in SHOWN} | {"by": by_kind(metrics), "lost_at": metrics["lost_at"]}
        print(json.dumps({"variant": name, **row}), flush=True)


if __name__ == "__main__":
    main()
