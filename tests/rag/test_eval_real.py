"""The real-document eval in reduced form: a fixed subset of Debian manuals and 12 questions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.collection import Collection
from rag.answer import Assistant
from rag.config import Settings
from rag.evaluate import evaluate, read_questions
from rag.store import open_store
from tests.conftest import REPO

pytestmark = pytest.mark.slow
EVAL = REPO / "data" / "eval"


def test_ci_subset_of_the_real_eval(settings: Settings, embedder: Any, llm: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus-ci"
    build = subprocess.run(
        [sys.executable, str(EVAL / "build.py"), "--subset", "ci", "--out", str(corpus), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    custom = settings.model_copy(deep=True)
    custom.paths.store = tmp_path / "store"
    report = Collection(custom).ingest([corpus], embedder)
    assert report.counts()["skipped"] == 0
    assistant = Assistant(custom, embedder, llm, open_store(custom, embedder))
    rows: list[dict] = []
    metrics = evaluate(assistant, read_questions(EVAL / "questions-ci.jsonl"), on_result=rows.append)
    print(metrics)
    assert metrics["questions"] == 12 and len(rows) == 12
    assert metrics["hit@5"] >= 0.7
    assert metrics["answer_in_context"] >= 0.6
    assert metrics["answer_accuracy"] >= 0.3
    assert metrics["abstention_on_unanswerable"] >= 0.5
    assert metrics["false_abstention"] <= 0.2
