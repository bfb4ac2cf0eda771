"""Coverage: the share of the question's content words the retrieved text holds, checked before the LLM."""

from __future__ import annotations

import pytest

from rag.grounding import content_terms, coverage


def test_content_terms_drop_stopwords_short_words_and_repeats() -> None:
    assert content_terms("What is the opening time of the parking garage, the garage?") == [
        "opening",
        "time",
        "parking",
        "garage",
    ]


def test_content_terms_know_german_stopwords() -> None:
    assert content_terms("Wann öffnet die Kantine am Montag?") == ["öffnet", "kantine", "montag"]


def test_content_terms_keep_short_cjk_bigrams() -> None:
    assert content_terms("会議室") == ["会議", "議室"]


def test_a_question_without_content_words_is_fully_covered() -> None:
    assert coverage("what is it?", []) == 1.0


def test_absent_subject_lowers_coverage() -> None:
    texts = ["The office opens at 8:00.", "The garage is under the building."]
    # "opens" and "opening" differ in their first five characters; hours and parking are absent: garage alone.
    assert coverage("opening hours of the parking garage", texts) == 0.25


def test_five_character_prefix_matches_inflections() -> None:
    assert coverage("When was the server reached?", ["The servers reaches its limit."]) == 1.0


@pytest.mark.parametrize(
    ("question", "expected"),
    [("vault code", 1.0), ("vault password", 0.5), ("dental insurance", 0.0)],
)
def test_coverage_is_the_share_of_terms_found(question: str, expected: float) -> None:
    assert coverage(question, ["The vault code is 4711."]) == expected


def test_cjk_question_is_covered_by_bigrams() -> None:
    assert coverage("会議室", ["三階の会議室は予約が必要です。"]) == 1.0
    assert coverage("会議室", ["駐車場は地下にあります。"]) == 0.0
