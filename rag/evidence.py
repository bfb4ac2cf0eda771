"""Evidence: the sentences of the sources that answer the question, and whether an answer stands on them.

A 135M model copies badly but the embedder ranks sentences well: on the sample set the best evidence
sentence held the answer for 15 of 23 questions and the top three for 22, while the model's own
answers held it for 4. So every answer carries its evidence, and an answer the sources do not
support is replaced by the best evidence sentence (``llm.answer_mode``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.analyzers import WORD
from rag.answer_types import expected_form, expected_type, holds_form, holds_value
from rag.citations import without_citations
from rag.grounding import STOPWORDS, content_terms
from rag.models.embedder import Embedder
from rag.retrieval import keyword_tokens

ITEM_START = re.compile(r"^\s*([-*•]|\d+(\.\d+)*[.)]?\s|\|)")
SENTENCE_END = re.compile(r"(?<=[.!?。])\s+(?=[A-Z0-9\u3040-\u9fff\"'(])")
LEXICAL_WEIGHT = 0.5
MIN_SENTENCE_CHARS = 8
# A field: a short label, a colon, its value ("- Port: TCP 4443", "**Default:** 300"); the label's words only.
FIELD = re.compile(r"^[\s\-*•|]*([^\W\d_][\w .-]{0,40}?)\s*:\s*\S")


@dataclass(frozen=True)
class Evidence:
    n: int
    text: str
    score: float


def sentences(text: str) -> list[str]:
    """Sentences and list items; lines wrapped inside a paragraph (as PDFs wrap them) are joined."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        units: list[str] = []
        current = ""
        for line in (raw.strip() for raw in paragraph.splitlines()):
            if not line:
                continue
            if ITEM_START.match(line) and current:
                units.append(current)
                current = line
            else:
                current = f"{current} {line}".strip()
        if current:
            units.append(current)
        for unit in units:
            out += [s.strip() for s in SENTENCE_END.split(unit) if len(s.strip()) >= MIN_SENTENCE_CHARS]
    return out


# A sentence that only introduces what follows: it ends in a colon or in "for example" and the like (en, de, ja).
LEAD_IN = re.compile(
    r"([:：]|\b(for example|for instance|e\.g\.|as follows|zum Beispiel|z\.\s?B\.|beispielsweise)[,.]?"
    r"|(例えば|たとえば|次のように|以下のように)[、,]?)\s*$",
    re.IGNORECASE,
)


def units(text: str, lead_ins: bool = False) -> list[str]:
    """The :func:`sentences` of a text; with ``lead_ins`` a sentence introducing what follows (:data:`LEAD_IN`)
    joined to the next one.

    A how-to's key sentence is often a lead-in ("To check a full rsyslog configuration, run rsyslog
    interactively as follows:") whose command is the next line; alone, it names the task without the answer,
    and the command line alone does not name the task, so neither ranks first among thousands of distractors.
    """
    out = sentences(text)
    if not lead_ins:
        return out
    joined: list[str] = []
    waiting = False  # the last unit is a lead-in not yet joined to what it introduces
    for sentence in out:
        if waiting:
            joined[-1] = f"{joined[-1]} {sentence}"
            waiting = False
        else:
            joined.append(sentence)
            waiting = bool(LEAD_IN.search(sentence))
    return joined


def _prefixes(text: str) -> set[str]:
    return {token[:5] for token in keyword_tokens(text)}


# A word written as an identifier: an inner capital (SSLSessionCacheTimeout), a digit (H2MaxSessionStreams) or a
# dot inside (Ratelimit.Burst).
IDENTIFIER = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]|\d|\w\.\w")


def _keys(text: str) -> set[str]:
    """What a sentence's words are matched by: their first five letters, and long words whole too."""
    tokens = keyword_tokens(text)
    return {token[:5] for token in tokens} | {token for token in tokens if len(token) > 5}


def _question_keys(question: str, identifiers: bool) -> set[str]:
    """A question's content words by their first five letters, an identifier (with ``identifiers``) whole: by its
    prefix "SSLSessionCacheTimeout" is "SSLSessionTickets", and a sentence naming the wrong one scored as high."""
    whole = {word.lower() for word in WORD.findall(question) if IDENTIFIER.search(word)} if identifiers else set()
    return {term if term in whole else term[:5] for term in content_terms(question)}


def _file_words(source: Any) -> str:
    """A source's file name without its extension, its parts as words ("rsyslog-8.2302-configuration-modules-
    imjournal.txt" -> "rsyslog 8.2302 configuration modules imjournal")."""
    name = str(getattr(source, "path", None) or "").rsplit("/", 1)[-1]
    return re.sub(r"[-_]+", " ", name.rsplit(".", 1)[0])


def _section(source: Any) -> str:
    """The nearest heading above a source's text (the last part of its heading path), or nothing."""
    return str(getattr(source, "heading", None) or "").split(" > ")[-1]


def _shared_words(source: Any, heading_terms: bool, file_terms: bool) -> set[str]:
    """The words every sentence of a source shares besides its own: its section heading's, its file name's."""
    words = _keys(_section(source)) if heading_terms else set()
    return words | _keys(_file_words(source)) if file_terms else words


@dataclass(frozen=True)
class _Cues:
    """What a sentence scores besides its cosine: the question's words it shares, a value or a form asked for."""

    value_weight: float
    form_weight: float
    identifiers: bool

    def scores(self, question: str, candidates: list[tuple[Any, str]], sections: dict[int, set[str]]) -> Any:
        terms = _question_keys(question, self.identifiers)
        shared = [len(terms & (_keys(s) | sections[id(source)])) for source, s in candidates]
        scores = LEXICAL_WEIGHT * np.array(shared) / max(1, len(terms))
        kind = expected_type(question)
        if kind is not None and self.value_weight:
            scores = scores + self.value_weight * np.array([holds_value(s, kind) for _, s in candidates])
        form = expected_form(question)
        if form is not None and self.form_weight:  # an option or a command asked for: the sentence showing one
            scores = scores + self.form_weight * np.array([holds_form(s, form) for _, s in candidates])
        return scores


def select_evidence(
    question: str,
    sources: list[Any],
    embedder: Embedder,
    k: int = 3,
    value_weight: float = 0.0,
    heading_terms: bool = False,
    form_weight: float = 0.0,
    lead_ins: bool = False,
    file_terms: bool = False,
    also: str | None = None,
    identifiers: bool = False,
) -> list[Evidence]:
    """The ``k`` sentences of the sources closest to the question (embedding + shared content words).

    A question asking for a value (a quantity, a version, a date) adds ``value_weight`` to each sentence
    holding one: among thousands of distractors the sentence that names the term without its value
    otherwise outranks the one that gives it. With ``heading_terms`` a sentence also shares the words of
    its section's heading: a list item or a table row often names its subject only there ("- Port: TCP
    4443" under "4. VPN (remote access)"). A question asking for an option or a command adds ``form_weight``
    to each sentence showing one. With ``lead_ins`` a sentence introducing the next is ranked joined to it
    (:func:`units`). With ``file_terms`` it shares the words of its file's name too: among reference pages alike
    ("RateLimit.Burst" in imuxsock's and in imjournal's) the page named for what was asked answers. With
    ``also`` (a follow-up alone, beside its standalone question) a sentence's score is the mean of both. With
    ``identifiers`` a question's identifier is matched whole (:func:`_question_keys`).
    """
    candidates = [(source, sentence) for source in sources for sentence in units(source.text, lead_ins)]
    if not candidates:
        return []
    asked = [question] if also is None else [question, also]
    queries = embedder.embed(asked, kind="query")
    vectors = embedder.embed([sentence for _, sentence in candidates], kind="document")
    sections = {id(source): _shared_words(source, heading_terms, file_terms) for source in sources}
    cues = _Cues(value_weight, form_weight, identifiers)
    scores = np.mean(
        [vectors @ query + cues.scores(text, candidates, sections) for text, query in zip(asked, queries, strict=True)],
        axis=0,
    )
    order = np.argsort(-scores)[:k]
    return [Evidence(candidates[i][0].n, candidates[i][1], round(float(scores[i]), 4)) for i in order]


def names_field(question: str, sentence: str) -> bool:
    """Whether the sentence is a field whose label the question asks for by name: "Which TCP port ...?" and
    "- Port: TCP 4443". A list of fields names its subject once, in the heading or the item before, so the
    item that holds the value shares few words with the question and its score stays low (data/sample q01:
    0.70 against ``retrieval.min_evidence`` 0.78)."""
    match = FIELD.match(sentence.replace("*", "").replace("`", ""))
    if match is None:
        return False
    label = {token[:5] for token in keyword_tokens(match.group(1))}
    return bool(label) and label <= {term[:5] for term in content_terms(question)}


def _facts(text: str) -> list[str]:
    """The checkable words of an answer: numbers, codes and names rather than filler, never its [n] citations."""
    words = [t for t in keyword_tokens(without_citations(text)) if t not in STOPWORDS]
    return [t for t in words if any(c.isdigit() for c in t) or len(t) >= 4 or not t.isascii()]


def is_loop(text: str) -> bool:
    """The small model's failure mode: the same line or sentence again and again."""
    parts = [p.strip().lower() for p in re.split(r"[\n.!?。]+", text) if len(p.strip()) > 10]
    return len(parts) >= 3 and len(set(parts)) <= len(parts) // 2


def supported(answer: str, source_texts: list[str], question: str) -> bool:
    """Most of the answer's facts (beyond the words of the question) occur in the sources."""
    asked = {term[:5] for term in content_terms(question)}
    facts = [f for f in _facts(answer) if f[:5] not in asked]
    if not facts or is_loop(answer):
        return False
    known = set().union(*(_prefixes(text) for text in source_texts)) if source_texts else set()
    return sum(f[:5] in known for f in facts) / len(facts) >= 0.8


# Issue 17: the share of an answer sentence's facts one source sentence must hold to support it, the same
# share ``supported`` asks of a whole answer.
SUPPORT_SHARE = 0.8


@dataclass(frozen=True)
class Support:
    """One sentence of an answer and the source sentence that supports it (``n`` and ``span`` None: none does)."""

    text: str
    n: int | None
    span: str | None


# A passage joins list items into one line ("... UDP 1194). - Profile: import ..."): each is a claim of its own.
INLINE_ITEM = re.compile(r"(?<=[.!?)])\s+[-•]\s+(?=\S)")


def _spans(source: Any) -> list[tuple[str, set[str]]]:
    """A source's sentences, and each two and three in a row, with the prefixes of their words: an answer's passage
    joins a line to the list item after it ("... your security key. - Shared team credentials ..."), and a lead-in
    to the code line and the sentence after it ("... the loopback interface: /etc/postfix/main.cf: debug_peer_list
    = 127.0.0.1 You can ..."), which the source keeps as two or three sentences. A run's prefixes are its
    sentences' together (no word spans the space joining them), so each sentence is read once."""
    units = sentences(source.text)
    keys = [_prefixes(unit) for unit in units]
    return [
        (" ".join(units[at : at + width]), set().union(*keys[at : at + width]))
        for width in (1, 2, 3)
        for at in range(len(units) - width + 1)
    ]


def sentence_support(answer: str, sources: list[Any]) -> list[Support]:
    """Each sentence of the answer that states something checkable, with the source span (a sentence, or two or
    three in a row) holding most of its facts (numbers, codes, names), if it holds at least ``SUPPORT_SHARE`` of them;
    of spans holding as many, the shortest.

    Sentences without facts ("Yes.") are left out: there is nothing in them to check.
    """
    spans = [(source.n, span, keys) for source in sources for span, keys in _spans(source)]
    out: list[Support] = []
    lines = sentences(without_citations(answer).replace("**", ""))
    for claim in (item for line in lines for item in INLINE_ITEM.split(line)):
        facts = {fact[:5] for fact in _facts(claim)}
        if not facts:
            continue
        best = max(spans, key=lambda item: (len(facts & item[2]), -len(item[1])), default=None)
        if best is not None and len(facts & best[2]) >= SUPPORT_SHARE * len(facts):
            out.append(Support(claim, best[0], best[1]))
        else:
            out.append(Support(claim, None, None))
    return out
