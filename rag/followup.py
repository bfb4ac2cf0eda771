"""A follow-up made standalone: the model's rewrite when it asks what the follow-up asks, else a rule's.

The bundled 135M model, asked to rewrite "And what is its maximum?", often answers with a sentence of the
previous answer ("This parameter can only be set in the postgresql.conf file ..."); on the large eval of
issue 14 no follow-up of 16 came back right. Retrieval then finds the previous answer again. So a rewrite
is kept only when it carries the follow-up's own content words and is not mostly borrowed from the previous
answer; otherwise the previous question carries its subject over to the follow-up, by rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.citations import without_citations
from rag.grounding import PREFIX, content_terms
from rag.guard import find_cut
from rag.prompt import Turn
from rag.reasoning import strip_reasoning

# The condense prompt's own labels: a rewrite that starts repeating the transcript is no question.
_TRANSCRIPT = re.compile(r"\b(?:Conversation|Last question|User|Assistant):")


def _terms(text: str) -> set[str]:
    return {term[:PREFIX] for term in content_terms(without_citations(text))}


def carried_over(question: str, history: Sequence[Turn]) -> str:
    """The rule: the previous question (its subject) and the follow-up, for retrieval to see both."""
    return f"{history[-1][0]} {question}"


def borrowed(rewrite: str, question: str, history: Sequence[Turn]) -> bool:
    """Most of the rewrite's content words come from the previous answer and from neither question."""
    last_question, last_answer = history[-1]
    terms = _terms(rewrite)
    from_answer = terms & _terms(strip_reasoning(last_answer)) - _terms(question) - _terms(last_question)
    return 2 * len(from_answer) > len(terms)


def lost_subject(rewrite: str, question: str, history: Sequence[Turn]) -> bool:
    """The rewrite keeps no word of the previous turn beyond the follow-up's own: "And what is its default?"
    came back as "What is its default?" (large eval), which retrieval cannot place."""
    last_question, last_answer = history[-1]
    subject = (_terms(last_question) | _terms(strip_reasoning(last_answer))) - _terms(question)
    return bool(subject) and not subject & _terms(rewrite)


def standalone(question: str, history: Sequence[Turn], reply: str) -> str:
    """The question retrieval searches for: the model's ``reply`` (its rewrite) if it holds, else the rule's."""
    lines = strip_reasoning(reply).strip().splitlines()
    rewrite = lines[0].strip() if lines else ""
    unusable = (
        not rewrite
        or len(rewrite) > 3 * len(question) + 200
        or _TRANSCRIPT.search(rewrite) is not None
        or find_cut(rewrite) is not None
        or not _terms(question) <= _terms(rewrite)  # it dropped what the follow-up asks
        or borrowed(rewrite, question, history)
        or lost_subject(rewrite, question, history)
    )
    if unusable:
        return carried_over(question, history)
    # The small model sometimes drops the follow-up's wording; keep both so retrieval sees it.
    return rewrite if question.lower() in rewrite.lower() else f"{rewrite} {question}"
