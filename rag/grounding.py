"""Does the retrieved text talk about what the question asks? A check made before the LLM is called.

Cosine similarity of whole chunks measures topic, not answer: "opening hours of the parking garage"
is close to a handbook about the office. Questions about something absent from the documents usually
name it ("parking garage", "dental insurance") and those words are then missing from every retrieved
chunk. Coverage is the share of the question's content words found in the retrieved text (by a
5-character prefix, so "reaches" matches "reached"); CJK text counts by character bigrams.
"""

from __future__ import annotations

from collections.abc import Iterable

from rag.retrieval import keyword_tokens

_STOPWORDS_TEXT = """
a an the of to in on at for by with from and or not no is are was were be been being which what who whom whose
when where why how does do did done can could should would will shall may might must have has had your you
our their its it this that these those there here about into than then as per each any all some much many more
most other such only also very just over under after before between during within without via up out
der die das den dem des ein eine einer eines einem einen und oder nicht ist sind war waren wird werden wer was
wann wo wie warum welche welcher welches welchem welchen gibt es im in am an auf aus bei mit nach von vor zu zum
zur für über unter um durch sich sie er wir ihr man kann können muss müssen darf soll sollen viel viele
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
PREFIX = 5


def content_terms(text: str) -> list[str]:
    return [t for t in dict.fromkeys(keyword_tokens(text)) if t not in STOPWORDS and (len(t) > 2 or not t.isascii())]


def coverage(question: str, texts: Iterable[str]) -> float:
    """Share of the question's content words that occur in ``texts`` (1.0 when it has none)."""
    terms = content_terms(question)
    if not terms:
        return 1.0
    seen = {t[:PREFIX] for text in texts for t in keyword_tokens(text)}
    return sum(term[:PREFIX] in seen for term in terms) / len(terms)
