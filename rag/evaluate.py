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
                    str(data["id"]), data["question"], list(data.get("answers", [])), data.get("kind", "factoid"),
                    data.get("source"),
                )
            )  # fmt: skip
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
    """1-based rank of the first source from the right file (or holding an expected answer)."""
    for source in answer.sources:
        right_file = question.source is not None and Path(source.path).name == question.source
        if right_file or (question.source is None and _contains(source.text, question.answers)):
            return source.n
    return None


def evaluate(
    assistant: Assistant, questions: list[Question], k: int | None = None, on_result: Callable[[dict], None] = print
) -> dict[str, Any]:
    ranks: list[int | None] = []
    in_context: list[bool] = []
    correct: list[bool] = []
    abstained_on_unanswerable: list[bool] = []
    false_abstentions: list[bool] = []
    ttfts: list[float] = []
    rates: list[float] = []
    for question in questions:
        answer = assistant.answer(question.question, k=k)
        if answer.timings.ttft_ms is not None:
            ttfts.append(answer.timings.ttft_ms)
        if answer.timings.decode_tokens_per_s:
            rates.append(answer.timings.decode_tokens_per_s)
        if question.answerable:
            ranks.append(_rank(question, answer))
            in_context.append(any(_contains(s.text, question.answers) for s in answer.sources))
            correct.append(not answer.abstained and _contains(answer.answer, question.answers))
            false_abstentions.append(answer.abstained)
        else:
            abstained_on_unanswerable.append(answer.abstained)
        on_result(
            {
                "id": question.id,
                "question": question.question,
                "answer": answer.answer,
                "reasoning": answer.reasoning,
                "abstained": answer.abstained,
                "sources": [{"path": s.path, "page": s.page, "text": s.text, "score": s.score} for s in answer.sources],
            }
        )

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    def median(values: list[float]) -> float | None:
        return sorted(values)[len(values) // 2] if values else None

    return {
        "questions": len(questions),
        "answerable": len(ranks),
        "unanswerable": len(abstained_on_unanswerable),
        "hit@1": share([r == 1 for r in ranks]),
        "hit@5": share([r is not None and r <= 5 for r in ranks]),
        "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3) if ranks else None,
        "answer_in_context": share(in_context),
        "answer_accuracy": share(correct),
        "abstention_on_unanswerable": share(abstained_on_unanswerable),
        "false_abstention": share(false_abstentions),
        "median_ttft_ms": median(ttfts),
        "median_decode_tokens_per_s": median(rates),
    }


@contextlib.contextmanager
def write_results(path: Path | None) -> Iterator[Callable[[dict], None]]:
    """A callback writing one JSON line per question (or doing nothing without an output path)."""
    if path is None:
        yield lambda _: None
        return
    with path.open("w", encoding="utf-8") as out:
        yield lambda row: out.write(json.dumps(row, ensure_ascii=False) + "\n")
