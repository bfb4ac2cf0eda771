"""An extracted answer as a short passage: the best evidence sentence, marked, with what follows it.

A lone sentence loses the value whenever a document puts it in the next sentence: in a definition list
the term's line ("checkpoint_timeout (integer)") names what was asked, and the line holding the value
("The default is 5min.") does not. Continuing the best sentence with the sentences after it, within the
words a concise answer may have, keeps the term and its value together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from rag.answer_types import AnswerType, holds_value
from rag.evidence import Evidence, units
from rag.grounding import PREFIX, content_terms
from rag.retrieval import keyword_tokens

# Issue #14: a concise answer has at most 60 words without its citations.
PASSAGE_WORDS = 60
_CITATION = re.compile(r"\[\d+(?:,\s*\d+)*\]")
# Japanese runs without spaces: three kana or kanji count as a word. The Japanese maint-guide (10 chapters,
# code blocks left out) has 2.85 of them for each English word of its original that it does not keep in Latin.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")


class Numbered(Protocol):
    n: int
    text: str


def words(text: str) -> int:
    """Words of an answer without its citations; three Japanese characters count as one."""
    text = _CITATION.sub(" ", text)
    cjk = len(_CJK.findall(text))
    spaced = [word for word in _CJK.sub(" ", text).split() if any(char.isalnum() for char in word)]
    return len(spaced) + (cjk + 2) // 3


def _around(best: str, source: Numbered, lead_ins: bool) -> tuple[str, list[str]]:
    """The unit of the source just before ``best`` ("" when ``best`` opens it) and the units after it, cut as the
    evidence was; ("", []) when ``best`` cannot be found again."""
    found = units(source.text, lead_ins)
    if best not in found:
        return "", []
    at = found.index(best)
    return (found[at - 1] if at else ""), found[at + 1 :]


def clipped(sentence: str, question: str, limit: int) -> str:
    """A key sentence longer than ``limit`` words cut to the ``limit`` words sharing most of the question's.

    A definition table flattened into one "sentence" ("Description: ... Syntax: ... Default: SSLSessionCacheTimeout
    300 Context: ...", 74 words) holds its answer near the question's words; the rest is the next rows.
    """
    spaced = sentence.split()
    if len(spaced) <= limit:  # Japanese runs without spaces are never cut
        return sentence
    asked = {term[:PREFIX] for term in content_terms(question)}
    shared = [bool(asked & {token[:PREFIX] for token in keyword_tokens(word)}) for word in spaced]
    counts = [sum(shared[first : first + limit]) for first in range(len(spaced) - limit + 1)]
    best = [first for first, count in enumerate(counts) if count == max(counts)]
    # of the windows sharing most, the one opening a quarter of the limit before its first shared word,
    # so the words after it (the value: "... SSLSessionCacheTimeout 300") stay in
    wanted = next((i for i in range(best[0], len(shared)) if shared[i]), best[0]) - limit // 4
    start = min(best, key=lambda first: abs(first - wanted))
    cut = " ".join(spaced[start : start + limit])
    return f"{'… ' if start else ''}{cut} …"


# A heading longer than this is a sentence of its own, not a label for the entry under it.
HEADING_WORDS = 10


BULLET = re.compile(r"^[-*•]\s+")
# The least text two chunks must share to count as the splitter's overlap, not a coincidence ("." or "a").
MIN_OVERLAP_CHARS = 10


def after_overlap(current: str, following: str) -> str:
    """``following`` without the text it repeats from the end of ``current`` (the splitter's chunk overlap)."""
    current, following = current.rstrip(), following.strip()
    for size in range(min(len(current), len(following)), MIN_OVERLAP_CHARS - 1, -1):
        if current.endswith(following[:size]):
            return following[size:].lstrip()
    return following


def lead_in(best: str, source: Numbered | None, lead_ins: bool = False) -> str:
    """The source's nearest heading when ``best`` opens the source and does not repeat it, else "".

    A reference entry names itself only in its heading ("string.rep (s, n)" over "Returns a string that is
    the concatenation of n copies of the string s."), so a passage opening the entry starts with it.
    """
    heading = str(getattr(source, "heading", None) or "").split(" > ")[-1].strip(" ¶:：")  # "注:" is no "注::"
    opening = units(source.text, lead_ins)[:1] if source is not None else []
    if not heading or "*" in heading or opening != [best] or words(heading) > HEADING_WORDS:
        return ""
    return "" if heading.lower() in best.lower() else heading


def passage(
    evidence: Sequence[Evidence],
    sources: Sequence[Numbered],
    limit: int = PASSAGE_WORDS,
    question: str = "",
    heading: bool = False,
    lead_ins: bool = False,
    asked: AnswerType | None = None,
    more: Callable[[], str | None] | None = None,
) -> str:
    """The best evidence sentence in bold, then the sentences after it while the passage stays in ``limit``.

    With ``question`` a key sentence over the limit is cut to its words nearest the question's (:func:`clipped`);
    without, it is kept whole, since cutting it blindly could cut the answer. With ``heading`` a key sentence
    opening its source follows that source's heading (:func:`lead_in`). ``lead_ins`` says the evidence was
    cut with lead-ins joined to what they introduce (:func:`rag.evidence.units`), so the source is cut alike.
    With ``asked`` (the kind of value the question asks for) a key sentence holding none follows the sentence
    before it when that one holds one: a reference table gives a setting's default in the row above its
    description ('"integer", "10", "no"' over "This setting specifies how often files are polled").
    With ``more`` (the text of the chunk after the source, asked for only when the source ends before the limit)
    the passage goes on into it: a lead-in ending its chunk ("... for connections from the loopback interface:")
    is followed by what it introduces ("debug_peer_list = 127.0.0.1"), which the splitter put in the next chunk.
    """
    best = evidence[0]
    source = next((s for s in sources if s.n == best.n), None)
    key = clipped(best.text, question, limit) if question else best.text
    label = lead_in(best.text, source, lead_ins) if heading else ""
    if words(label) + words(key) > limit:  # the key sentence alone fills the passage: it goes first
        label = ""
    # A sentence with bold of its own would nest ** inside ** (Markdown has no nested bold): left as it is.
    # In italics: a heading like "3. Password manager" opening a line would otherwise render as a numbered list.
    parts = [f"*{label}*:"] if label else []
    parts.append(key if "**" in key else f"**{key}**")
    used = words(key) + words(label)
    previous, following = _around(best.text, source, lead_ins) if source is not None else ("", [])
    if (
        asked is not None
        and not label
        and not holds_value(key, asked)
        and previous
        and holds_value(previous, asked)
        and used + words(previous) <= limit
    ):
        parts.insert(0, previous)
        used += words(previous)
    for sentence in _continued(following, source, lead_ins, more):
        used += words(sentence)
        if used > limit:
            break
        parts.append(sentence)
    # A passage opening on a list item is one paragraph, not a list: without its bullet Markdown keeps it so.
    return f"{BULLET.sub('', ' '.join(parts), count=1)} [{best.n}]"


def _continued(
    following: list[str], source: Numbered | None, lead_ins: bool, more: Callable[[], str | None] | None
) -> Iterator[str]:
    """The units after the key sentence, then (asked for only once those run out) the next chunk's."""
    yield from following
    if more is None or source is None:
        return
    text = more()
    if text:
        yield from units(after_overlap(source.text, text), lead_ins)
