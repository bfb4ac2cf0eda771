"""``kura eval``'s scoring with a scripted LLM and the hashed embedder: follow-ups, concise accuracy, latency
and the stage that lost each miss, each produced by a constructed case. The real eval is test_eval_real.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rag.answer import Answer, Assistant
from rag.config import Settings
from rag.errors import KuraError
from rag.evaluate import Question, Scored, evaluate, lost_at, read_questions, summarize, words
from rag.prompt import Turn
from rag.store import ChromaStore, open_store
from tests.fakes import HashEmbedder, ScriptedLLM
from tests.helpers import fake_collection

DOCS = {
    "vault.md": "# Vault\n\nThe vault code is 4711 and only Alice may know it.\n",
    "canteen.md": "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n",
}
VAULT = "What is the vault code?"
# The scripted LLM's window in which the prompt holds the first-ranked source only (vault.md).
ONE_SOURCE_WINDOW = 200


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, HashEmbedder, ChromaStore]:
    settings, embedder = fake_collection(tmp_path_factory.mktemp("evaluate"), DOCS)
    return settings, embedder, open_store(settings, embedder)


def assistant(filled: Any, *replies: str, window: int = 4096, **retrieval: Any) -> Assistant:
    """The model's own words kept (``generate``), so a test decides what the answer says."""
    settings, embedder, store = filled
    custom = settings.model_copy(deep=True)
    custom.llm.answer_mode = "generate"
    custom.llm.max_new_tokens = 16
    custom.retrieval = custom.retrieval.model_copy(update=retrieval)
    return Assistant(custom, embedder, ScriptedLLM(list(replies) or ["OK"], context_window=window), store)


def run(assistant: Assistant, *questions: Question) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    return evaluate(assistant, list(questions), on_result=rows.append), rows


def vault(answers: Sequence[str] = ("4711",), **fields: Any) -> Question:
    return Question("q1", VAULT, list(answers), "factoid", **fields)


# --- follow-ups ----------------------------------------------------------------------------------------
def test_the_history_is_asked_in_order_and_each_answer_becomes_a_turn(
    filled: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each follow-up carries the previous question over by rule (no model call), then is answered.
    chat = assistant(filled, "First answer.", "Second answer.", "It is 4711 [1].")
    asked: list[tuple[str, list[Turn]]] = []
    answer = chat.answer

    def recording(question: str, history: Sequence[Turn] = (), **kwargs: Any) -> Answer:
        asked.append((question, list(history)))
        return answer(question, history, **kwargs)

    monkeypatch.setattr(chat, "answer", recording)
    follow_up = Question("f1", "And who may know it?", ["4711"], "factoid", history=[VAULT, "Is it secret?"])
    metrics, [row] = run(chat, follow_up)
    first, second = "First answer.", "Second answer."
    assert asked == [
        (VAULT, []),
        ("Is it secret?", [(VAULT, first)]),
        ("And who may know it?", [(VAULT, first), ("Is it secret?", second)]),
    ]
    assert row["history"] == [VAULT, "Is it secret?"] and row["right"]
    assert (metrics["follow_ups"], metrics["follow_up_accuracy"]) == (1, 1.0)


def test_follow_up_accuracy_counts_only_questions_with_a_history(filled: Any) -> None:
    chat = assistant(filled, "The code is 4711 [1].")
    metrics, _ = run(chat, vault(), Question("f1", "And the code?", ["noon"], "factoid", history=[VAULT]))
    assert metrics["answer_accuracy"] == 0.5 and metrics["follow_up_accuracy"] == 0.0
    assert metrics["follow_ups"] == 1


def test_old_question_files_without_history_still_read(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    lines = [
        {"id": "a", "question": VAULT, "answers": ["4711"], "kind": "factoid", "source": "vault.md"},
        {"id": "b", "question": "And who?", "answers": ["Alice"], "history": [VAULT]},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    old, follow_up = read_questions(path)
    assert (old.history, old.source, follow_up.history, follow_up.kind) == ([], "vault.md", [VAULT], "factoid")


def test_a_history_that_is_not_a_list_of_questions_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "b", "question": "And who?", "answers": ["Alice"], "history": VAULT}) + "\n")
    with pytest.raises(KuraError, match=r"q.jsonl:1: not a question line \(history must be a list"):
        read_questions(path)


def test_a_split_keeps_only_its_questions_and_an_unknown_one_names_the_splits(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    lines = [
        {"id": "a", "question": VAULT, "answers": ["4711"], "split": "dev"},
        {"id": "b", "question": "Who?", "answers": ["Alice"], "split": "holdout"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert [q.id for q in read_questions(path, "holdout")] == ["b"]
    assert len(read_questions(path)) == 2
    with pytest.raises(KuraError, match="no questions in split 'test'; its splits: dev, holdout"):
        read_questions(path, "test")


# --- concise accuracy and latency ----------------------------------------------------------------------
def test_concise_accuracy_needs_a_right_answer_of_at_most_60_words(filled: Any) -> None:
    long = "The vault code is 4711. " + " ".join(f"word{n}" for n in range(60))  # varied: a loop is cut short
    metrics, rows = run(assistant(filled, long), vault())
    assert rows[0]["right"] and not rows[0]["concise"] and rows[0]["words"] > 60
    assert (metrics["answer_accuracy"], metrics["concise_accuracy"]) == (1.0, 0.0)
    metrics, rows = run(assistant(filled, "The vault code is 4711 [1]."), vault())
    assert rows[0]["concise"] and (metrics["answer_accuracy"], metrics["concise_accuracy"]) == (1.0, 1.0)


def test_concise_accuracy_is_reported_per_kind(filled: Any) -> None:
    how_to = Question("h1", "How is the vault code used?", ["4711"], "how-to")
    metrics, _ = run(assistant(filled, "Type 4711 [1]."), vault(), how_to, Question("u1", VAULT, [], "unanswerable"))
    assert set(metrics["by_kind"]) == {"factoid", "how-to", "unanswerable"}
    assert metrics["by_kind"]["how-to"]["concise_accuracy"] == 1.0
    assert metrics["by_kind"]["unanswerable"]["concise_accuracy"] is None


def test_words_leave_out_citations_and_count_three_japanese_characters_as_one() -> None:
    assert words("The code is 4711 [1]. Alice knows it [1, 2].") == 7
    assert words("既定値は 1 GB です [2]") == 2 + 1 + 1  # 1, GB, and 既定値はです: 6 characters
    assert words("") == 0


def test_each_scored_answer_is_timed_and_the_summary_has_p50_and_p95(filled: Any) -> None:
    metrics, rows = run(assistant(filled, "The code is 4711 [1]."), vault(), vault())
    assert all(row["latency_ms"] > 0 for row in rows)
    assert 0 < metrics["latency_p50_ms"] <= metrics["latency_p95_ms"]


def test_latency_percentiles_interpolate_between_answers() -> None:
    scored = [Scored(vault(), 1, True, True, False, None, None, latency_ms=float(ms)) for ms in range(10, 110, 10)]
    metrics = summarize(scored)
    assert (metrics["latency_p50_ms"], metrics["latency_p95_ms"]) == (55.0, 95.5)


def test_the_model_text_kept_and_right_is_counted_apart_from_the_answer(filled: Any) -> None:
    metrics, rows = run(assistant(filled, "The code is 4711 [1]."), vault())
    assert rows[0]["answer_source"] == "generated"
    assert (metrics["model_text_kept"], metrics["model_text_kept_right"], metrics["model_text_right"]) == (1, 1, 1)
    metrics, _ = run(assistant(filled, "The code is 1234 [1]."), vault())
    assert (metrics["model_text_kept"], metrics["model_text_kept_right"], metrics["model_text_right"]) == (1, 0, 0)


# --- the stage that lost each miss ---------------------------------------------------------------------
def test_an_answer_in_no_retrieved_chunk_was_not_retrieved(filled: Any) -> None:
    metrics, [row] = run(assistant(filled, "The code is 4711 [1]."), vault(["9999"]))
    assert row["lost_at"] == "not retrieved"
    assert metrics["lost_at"] == {
        "not retrieved": 1,
        "not packed": 0,
        "packed but not chosen": 0,
        "chosen but abstained": 0,
    }


def test_an_answer_outside_the_gold_file_was_not_retrieved(filled: Any) -> None:
    _, [row] = run(assistant(filled, "Nothing."), vault(source="missing.md"))
    assert row["lost_at"] == "not retrieved"


def test_an_answer_retrieved_but_left_out_of_the_window_was_not_packed(filled: Any) -> None:
    chat = assistant(filled, "The vault code is 4711 [1].", window=ONE_SOURCE_WINDOW)
    question = vault(["noon"])  # in canteen.md, ranked second
    answer = chat.answer(VAULT)
    assert answer.retrieved == ["vault.md", "canteen.md"] and answer.packed_texts == [DOCS["vault.md"][9:].strip()]
    assert lost_at(question, answer) == "not packed"


def test_an_answer_packed_but_not_written_was_not_chosen(filled: Any) -> None:
    metrics, [row] = run(assistant(filled, "The code is a secret [1]."), vault())
    assert (row["lost_at"], row["abstained"]) == ("packed but not chosen", False)
    assert metrics["lost_at"]["packed but not chosen"] == 1


def test_an_abstention_on_packed_sources_was_chosen_but_abstained(filled: Any) -> None:
    chat = assistant(filled, min_evidence=2.0)  # no sentence scores that: the evidence gate abstains
    answer = chat.answer(VAULT)
    assert answer.abstained and answer.packed_texts and answer.sources == []
    assert lost_at(vault(), answer) == "chosen but abstained"


def test_an_abstention_at_the_retrieval_gate_on_a_retrieved_answer_was_chosen_but_abstained(filled: Any) -> None:
    metrics, [row] = run(assistant(filled, min_score=1.0), vault())
    assert row["abstained"] and row["lost_at"] == "chosen but abstained"
    assert metrics["false_abstention"] == 1.0 and metrics["lost_at"]["chosen but abstained"] == 1


def test_without_a_gold_file_the_rank_is_of_the_first_retrieved_chunk_holding_an_answer(filled: Any) -> None:
    chat = assistant(filled, min_score=1.0)  # abstains at the retrieval gate: nothing is packed
    metrics, _ = run(chat, vault(["noon"]))
    assert (metrics["hit@1"], metrics["hit@5"], metrics["mrr"]) == (0.0, 1.0, 0.5)


def test_right_answers_and_unanswerable_questions_have_no_stage(filled: Any) -> None:
    metrics, rows = run(assistant(filled, "The code is 4711 [1]."), vault(), Question("u", VAULT, [], "unanswerable"))
    assert [row["lost_at"] for row in rows] == [None, None]
    assert sum(metrics["lost_at"].values()) == 0
