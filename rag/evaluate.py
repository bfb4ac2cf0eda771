"""``kura eval``: retrieval and answer quality on a question set, with the models loaded once.

Lines of the question file: ``{id, question, answers[], kind}`` (+ optional ``source``, the file that
answers it, ``lang``, ``format``, and ``history``: the earlier questions of a conversation, asked first in
order through the same assistant, each answer becoming a turn of the history the question is asked with).
``kind: "unanswerable"`` questions should be abstained on; other kinds (factoid, how-to...) are answerable.

An answer is right when it holds an expected answer (case and whitespace aside), and concise when it is
also at most :data:`CONCISE_WORDS` words without its citations. Each miss is put down to the first stage
of the chain that lost the answer: see :func:`lost_at`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from rag.answer import Answer, Assistant
from rag.errors import KuraError
from rag.passage import PASSAGE_WORDS, words
from rag.prompt import Turn

# Issue #14: an answer is a short passage; a whole 200-token chunk pasted back is not.
CONCISE_WORDS = PASSAGE_WORDS
Stage = Literal["not retrieved", "not packed", "packed but not chosen", "chosen but abstained"]


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    kind: str
    source: str | None = None
    lang: str = "en"
    format: str | None = None
    history: list[str] = field(default_factory=list)
    # "dev" (tuned on) or "holdout" (the final check, never tuned on); None when the set has no split.
    split: str | None = None

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def _question(data: dict[str, Any]) -> Question:
    history = data.get("history", [])
    if not isinstance(history, list) or not all(isinstance(turn, str) for turn in history):
        raise TypeError("history must be a list of earlier questions")
    return Question(
        str(data["id"]),
        data["question"],
        list(data.get("answers", [])),
        data.get("kind", "factoid"),
        data.get("source"),
        data.get("lang", "en"),
        data.get("format"),
        history,
        data.get("split"),
    )


def read_questions(path: Path, split: str | None = None) -> list[Question]:
    """The questions of the file (of one split when asked); every line is checked, whatever its split."""
    if not path.is_file():
        raise KuraError(f"question file {path} does not exist")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            questions.append(_question(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise KuraError(
                f"{path}:{number}: not a question line ({exc}); expected {{id, question, answers}}"
            ) from None
    if not questions:
        raise KuraError(f"{path} holds no questions")
    if split is None:
        return questions
    chosen = [q for q in questions if q.split == split]
    if not chosen:
        splits = sorted({q.split for q in questions if q.split}) or ["none"]
        raise KuraError(f"{path} has no questions in split '{split}'; its splits: {', '.join(splits)}")
    return chosen


def _collapse(text: str) -> str:
    """Whitespace collapsed, case folded, and the bold marking an extracted answer's key sentence dropped."""
    return " ".join(text.replace("**", "").split()).lower()


def _contains(text: str, answers: list[str]) -> bool:
    collapsed = _collapse(text)
    return any(_collapse(answer) in collapsed for answer in answers)


def _rank(question: Question, answer: Answer) -> int | None:
    """1-based rank of the first retrieved chunk from the right file (or holding an expected answer).

    Ranked over what retrieval found, also when Kura then abstained: abstaining is an answering
    decision, counted in false abstention, not a retrieval miss.
    """
    if question.source is not None:
        names = [Path(path).name for path in answer.retrieved]
        return names.index(question.source) + 1 if question.source in names else None
    return next((n for n, text in enumerate(answer.retrieved_texts, 1) if _contains(text, question.answers)), None)


def _right(question: Question, answer: Answer) -> bool:
    return not answer.abstained and _contains(answer.answer, question.answers)


def lost_at(question: Question, answer: Answer) -> Stage | None:
    """The stage that lost an answerable question's answer, in the order the chain runs; None when right.

    An abstention at the retrieval gate, before anything was packed, counts as ``chosen but abstained``
    when retrieval had found the answer: the gate threw away what the later stages would have had.
    """
    if not question.answerable or _right(question, answer):
        return None
    files = {Path(path).name for path in answer.retrieved}
    wrong_file = question.source is not None and question.source not in files
    if wrong_file or not any(_contains(text, question.answers) for text in answer.retrieved_texts):
        return "not retrieved"
    if answer.abstained and answer.packed_texts is None:
        return "chosen but abstained"
    if not any(_contains(text, question.answers) for text in answer.packed_texts or []):
        return "not packed"
    return "chosen but abstained" if answer.abstained else "packed but not chosen"


@dataclass
class Scored:
    question: Question
    rank: int | None
    in_context: bool
    correct: bool
    abstained: bool
    ttft_ms: float | None
    tokens_per_s: float | None
    concise: bool = False
    latency_ms: float = 0.0
    lost_at: Stage | None = None
    # Issue 14's "no work thrown away": whether the model's own text was the answer, and whether that
    # text held an expected answer (also when the evidence check replaced it).
    model_text_kept: bool = False
    model_text_right: bool = False


def score(question: Question, answer: Answer, latency_ms: float) -> Scored:
    correct = _right(question, answer)
    return Scored(
        question,
        _rank(question, answer) if question.answerable else None,
        any(_contains(s.text, question.answers) for s in answer.sources),
        correct,
        answer.abstained,
        answer.timings.ttft_ms,
        answer.timings.decode_tokens_per_s,
        concise=correct and words(answer.answer) <= CONCISE_WORDS,
        latency_ms=latency_ms,
        lost_at=lost_at(question, answer),
        model_text_kept=answer.answer_source == "generated" and not answer.abstained,
        model_text_right=bool(answer.generated) and _contains(answer.generated, question.answers),
    )


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarize(scored: list[Scored]) -> dict[str, Any]:
    answerable = [s for s in scored if s.question.answerable]
    unanswerable = [s for s in scored if not s.question.answerable]
    follow_ups = [s for s in answerable if s.question.history]
    ranks = [s.rank for s in answerable]
    latencies = [s.latency_ms for s in scored]
    return {
        "questions": len(scored),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "follow_ups": len(follow_ups),
        "hit@1": _share([r == 1 for r in ranks]),
        "hit@5": _share([r is not None and r <= 5 for r in ranks]),
        "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3) if ranks else None,
        "answer_in_context": _share([s.in_context for s in answerable]),
        "answer_accuracy": _share([s.correct for s in answerable]),
        "concise_accuracy": _share([s.concise for s in answerable]),
        "follow_up_accuracy": _share([s.correct for s in follow_ups]),
        "follow_up_concise_accuracy": _share([s.concise for s in follow_ups]),
        "abstention_on_unanswerable": _share([s.abstained for s in unanswerable]),
        "false_abstention": _share([s.abstained for s in answerable]),
        "lost_at": {stage: sum(s.lost_at == stage for s in answerable) for stage in get_args(Stage)},
        "model_text_kept": _share([s.model_text_kept for s in answerable]),
        "model_text_kept_right": _share([s.correct for s in answerable if s.model_text_kept]),
        "model_text_right": _share([s.model_text_right for s in answerable]),
        "latency_p50_ms": _percentile(latencies, 50),
        "latency_p95_ms": _percentile(latencies, 95),
        "median_ttft_ms": _median([s.ttft_ms for s in scored if s.ttft_ms is not None]),
        "median_decode_tokens_per_s": _median([s.tokens_per_s for s in scored if s.tokens_per_s]),
    }


def ask(assistant: Assistant, question: Question, k: int | None = None) -> tuple[Answer, float]:
    """The answer to a question after its conversation's earlier questions, and its wall time in ms.

    Only the question itself is timed: the earlier turns are its setting, each scored where it is asked
    on its own line (if at all).
    """
    history: list[Turn] = []
    for earlier in question.history:
        history.append((earlier, assistant.answer(earlier, tuple(history), k=k).answer))
    started = time.perf_counter()
    answer = assistant.answer(question.question, history, k=k)
    return answer, round((time.perf_counter() - started) * 1000, 1)


def result_row(scored: Scored, answer: Answer) -> dict[str, Any]:
    """One line of ``--output``: the answer with what it was scored."""
    question = scored.question
    return {
        "id": question.id,
        "question": question.question,
        "kind": question.kind,
        "history": question.history,
        "standalone_question": answer.standalone_question,
        "answer": answer.answer,
        "answer_source": answer.answer_source,
        "generated": answer.generated,
        "reasoning": answer.reasoning,
        "abstained": answer.abstained,
        "right": scored.correct,
        "concise": scored.concise,
        "words": words(answer.answer),
        "lost_at": scored.lost_at,
        "latency_ms": scored.latency_ms,
        # what the abstention gates decide on, so their thresholds can be swept from one run's rows
        "retrieval_score": answer.retrieval_score,
        "coverage": answer.coverage,
        "evidence": [{"n": e.n, "text": e.text, "score": e.score} for e in answer.evidence],
        "sources": [{"path": s.path, "page": s.page, "text": s.text, "score": s.score} for s in answer.sources],
    }


def evaluate(
    assistant: Assistant, questions: list[Question], k: int | None = None, on_result: Callable[[dict], None] = print
) -> dict[str, Any]:
    """Overall metrics, plus the same per question kind, language and document format."""
    scored: list[Scored] = []
    for question in questions:
        answer, latency_ms = ask(assistant, question, k)
        scored.append(score(question, answer, latency_ms))
        on_result(result_row(scored[-1], answer))
    metrics = summarize(scored)
    for field_name in ("kind", "lang", "format", "split"):
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
