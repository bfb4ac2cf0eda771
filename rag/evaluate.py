"""``kura eval``: retrieval and answer quality on a question set, with the models loaded once.

Lines of the question file: ``{id, question, answers[], kind}`` (+ optional ``source``, the file that
answers it). ``kind: "unanswerable"`` questions should be abstained on.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.answer import Answer, Assistant
from rag.errors import KuraError


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    kind: str
    source: str | None = None
    lang: str = "en"
    format: str | None = None

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def read_questions(path: Path) -> list[Question]:
    if not path.is_file():
        raise KuraError(f"question file {path} does not exist")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            questions.append(
                Question(
                    str(data["id"]),
                    data["question"],
                    list(data.get("answers", [])),
                    data.get("kind", "factoid"),
                    data.get("source"),
                    data.get("lang", "en"),
                    data.get("format"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise KuraError(
                f"{path}:{number}: not a question line ({exc}); expected {{id, question, answers}}"
            ) from None
    if not questions:
        raise KuraError(f"{path} holds no questions")
    return questions


def _contains(text: str, answers: list[str]) -> bool:
    lowered = text.lower()
    return any(answer.lower() in lowered for answer in answers)


def _rank(question: Question, answer: Answer) -> int | None:
    """1-based rank of the first retrieved chunk from the right file (or holding an expected answer).

    Ranked over what retrieval found, also when Kura then abstained: abstaining is an answering
    decision, counted in false abstention, not a retrieval miss.
    """
    if question.source is not None:
        names = [Path(path).name for path in answer.retrieved]
        return names.index(question.source) + 1 if question.source in names else None
    for source in answer.sources:
        right_file = question.source is not None and Path(source.path).name == question.source
        if right_file or (question.source is None and _contains(source.text, question.answers)):
            return source.n
    return None


@dataclass
class Scored:
    question: Question
    rank: int | None
    in_context: bool
    correct: bool
    abstained: bool
    ttft_ms: float | None
    tokens_per_s: float | None


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def summarize(scored: list[Scored]) -> dict[str, Any]:
    answerable = [s for s in scored if s.question.answerable]
    unanswerable = [s for s in scored if not s.question.answerable]
    ranks = [s.rank for s in answerable]
    return {
        "questions": len(scored),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit@1": _share([r == 1 for r in ranks]),
        "hit@5": _share([r is not None and r <= 5 for r in ranks]),
        "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3) if ranks else None,
        "answer_in_context": _share([s.in_context for s in answerable]),
        "answer_accuracy": _share([s.correct for s in answerable]),
        "abstention_on_unanswerable": _share([s.abstained for s in unanswerable]),
        "false_abstention": _share([s.abstained for s in answerable]),
        "median_ttft_ms": _median([s.ttft_ms for s in scored if s.ttft_ms is not None]),
        "median_decode_tokens_per_s": _median([s.tokens_per_s for s in scored if s.tokens_per_s]),
    }


def evaluate(
    assistant: Assistant, questions: list[Question], k: int | None = None, on_result: Callable[[dict], None] = print
) -> dict[str, Any]:
    """Overall metrics, plus the same per language and per document format."""
    scored: list[Scored] = []
    for question in questions:
        answer = assistant.answer(question.question, k=k)
        scored.append(
            Scored(
                question,
                _rank(question, answer) if question.answerable else None,
                any(_contains(s.text, question.answers) for s in answer.sources),
                not answer.abstained and _contains(answer.answer, question.answers),
                answer.abstained,
                answer.timings.ttft_ms,
                answer.timings.decode_tokens_per_s,
            )
        )
        on_result(
            {
                "id": question.id,
                "question": question.question,
                "answer": answer.answer,
                "answer_source": answer.answer_source,
                "generated": answer.generated,
                "reasoning": answer.reasoning,
                "abstained": answer.abstained,
                "evidence": [{"n": e.n, "text": e.text, "score": e.score} for e in answer.evidence],
                "sources": [{"path": s.path, "page": s.page, "text": s.text, "score": s.score} for s in answer.sources],
            }
        )
    metrics = summarize(scored)
    for field_name in ("lang", "format"):
        groups = sorted({getattr(s.question, field_name) for s in scored if getattr(s.question, field_name)})
        if len(groups) > 1:
            metrics[f"by_{field_name}"] = {
                group: summarize([s for s in scored if getattr(s.question, field_name) == group]) for group in groups
            }
    return metrics


@contextlib.contextmanager
def write_results(path: Path | None) -> Iterator[Callable[[dict], None]]:
    """A callback writing one JSON line per question (or doing nothing without an output path)."""
    if path is None:
        yield lambda _: None
        return
    with path.open("w", encoding="utf-8") as out:

        def write(row: dict) -> None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")

        yield write
