"""Follow-up rewriting by rule and by the model's rewrite, checked (rag.followup)."""

from __future__ import annotations

from rag.followup import lost_subject, standalone

HISTORY = [("What does the MaxKeepAliveRequests directive limit?", "The number of requests [1].")]


def test_a_rewrite_that_drops_the_previous_questions_subject_is_not_kept() -> None:
    """The 135M model rewrote "And what is its default?" as "What is its default?" on the large eval."""
    assert lost_subject("What is its default?", "And what is its default?", HISTORY)
    assert standalone("And what is its default?", HISTORY, "What is its default?") == (
        "What does the MaxKeepAliveRequests directive limit? And what is its default?"
    )


def test_a_rewrite_that_carries_the_subject_is_kept() -> None:
    rewrite = "What is the default of MaxKeepAliveRequests?"
    assert not lost_subject(rewrite, "And what is its default?", HISTORY)
    assert standalone("And what is its default?", HISTORY, rewrite) == f"{rewrite} And what is its default?"
