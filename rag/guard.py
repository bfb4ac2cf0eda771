"""The model's answer ends where it starts echoing its prompt or repeating itself; nothing past that is shown.

A 135M model sometimes runs on past its answer into the prompt it was given (a ``<source id="6" file=...>``
fence, a "Question: ..." line, a sentence of the instructions) or loops ("`BASH` command `BASH` command").
On the large eval of issue 14, of six answers kept in the model's words one echoed a fence and one looped.

:class:`AnswerGuard` cuts the answer there. While it streams, the guard holds back only what could still turn
out to be such a start: the word being written, words that open an instruction sentence, and a repetition in
progress. So text it let through is never taken back, and the streamed pieces add up to the final answer.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from rag.prompt import CONDENSE, FENCE_TAG, SYSTEM

# Six words in a row of one instruction sentence are an echo. Neither these nor the loops below cut any of the
# 519 sections of data/sample and data/eval's 33 manuals (tests/rag/test_guard.py checks the sample).
ECHO_WORDS = 6
# A unit of words three times back to back, over at least this many words (so eight of one word, four of two), is
# a loop. Two copies were not enough: data/eval's manuals repeat a heading or "most of the time" once.
# Longer units than MAX_PERIOD words are left to rag.evidence.is_loop.
LOOP_WORDS = 8
COPIES = 3
MAX_PERIOD = 30
WINDOW = 400
# Words, and each CJK character on its own (Japanese has no spaces to split words at).
_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+"
)
_NOT_ALNUM = re.compile(r"[\W_]+")
_LABEL = re.compile(r"(?<!\S)(?:Question|Sources):|^[ \t]*(?:User|Assistant|System):", re.MULTILINE)
# Letters repeated four times in one word: "AES_CBC_CBC_CBC_CBC" (not the made-up commit ids of git's manual,
# "abcd1234abcd1234..."). Japanese repeats itself in characters, which count as words above.
_STUTTER = re.compile(r"([A-Za-z_]{2,10}?)\1{3,}")
Reason = Literal["echo", "loop"]


@lru_cache(maxsize=4096)
def _word(token: str) -> str:
    return _NOT_ALNUM.sub("", token.lower())


def _last_word(text: str) -> str:
    """The word ``text`` ends with: the one still being written, while it streams."""
    tokens = list(_TOKEN.finditer(text[-200:]))
    return tokens[-1].group() if tokens and tokens[-1].end() == len(text[-200:]) else ""


def _instruction_runs() -> frozenset[tuple[str, ...]]:
    """Every ECHO_WORDS words in a row inside one sentence of the instructions (placeholders left out)."""
    runs: set[tuple[str, ...]] = set()
    for sentence in re.split(r"(?<=\.)\s+", re.sub(r"\{\w+\}", " ", f"{SYSTEM} {CONDENSE}")):
        words = [w for w in map(_word, sentence.split()) if w]
        runs.update(tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1))
    return frozenset(runs)


RUNS = _instruction_runs()
OPENINGS = frozenset(run[:k] for run in RUNS for k in range(1, ECHO_WORDS))


@dataclass(frozen=True)
class Cut:
    end: int  # where the answer ends
    reason: Reason


@dataclass
class _Words:
    """The whole words of a text near and past ``shown``: where each starts, and each one normalised."""

    starts: list[int]
    words: list[str]
    first: int  # the first word past shown

    @classmethod
    def of(cls, text: str, complete: bool, shown: int) -> _Words:
        # Looking back WINDOW characters finds the MAX_PERIOD words a repeat is compared with, without reading
        # the whole answer again for every piece.
        start = max(0, shown - WINDOW)
        tokens = list(_TOKEN.finditer(text, start))[1 if start else 0 :]  # the first may be cut in two
        if tokens and not complete and tokens[-1].end() == len(text):
            tokens.pop()  # still being written
        # A token of punctuation alone is unlike every other, so a table's "| --- | --- |" is no loop.
        words = [_word(t.group()) or f"\0{t.start()}" for t in tokens]
        starts = [t.start() for t in tokens]
        return cls(starts, words, bisect_left(starts, shown))


def _echo(text: str, words: _Words, shown: int) -> int | None:
    """Where the first prompt markup or instruction sentence past ``shown`` begins."""
    found = [m.start() for m in (FENCE_TAG.search(text, shown), _LABEL.search(text, shown)) if m]
    w = words.words
    found += [words.starts[i] for i in range(words.first, len(w)) if tuple(w[i : i + ECHO_WORDS]) in RUNS]
    return min(found, default=None)


def _loop(words: _Words) -> int | None:
    """Where the second copy of a unit repeated COPIES times over LOOP_WORDS words begins, past ``shown``."""
    found: list[int] = []
    w = words.words
    for period in range(1, MAX_PERIOD + 1):
        run = 0
        for j in range(max(period, words.first), len(w)):
            run = run + 1 if w[j] == w[j - period] else 0
            if run >= max((COPIES - 1) * period, LOOP_WORDS - period):
                found.append(words.starts[j - run + 1])
                break
    return min(found, default=None)


def _stutter(text: str, shown: int) -> int | None:
    """The start of the first word past ``shown`` that repeats a part of itself (of two different letters)."""
    for match in _STUTTER.finditer(text, shown):
        if len(set(match.group(1))) > 1:
            return match.start() - len(_last_word(text[: match.start()]))
    return None


def find_cut(text: str, shown: int = 0, complete: bool = True) -> Cut | None:
    """Where ``text`` stops being an answer, looking past the first ``shown`` characters only."""
    words = _Words.of(text, complete, shown)
    echo = _echo(text, words, shown)
    loops = [at for at in (_loop(words), _stutter(text, shown)) if at is not None]
    loop = min(loops, default=None)
    if echo is not None and (loop is None or echo <= loop):
        return Cut(echo, "echo")
    return Cut(loop, "loop") if loop is not None else None


def _held(text: str, shown: int) -> int:
    """How much of ``text`` can be shown: all but a word being written, an instruction's opening, a repeat."""
    words = _Words.of(text, False, shown)
    hold = [len(text) - len(_last_word(text))]
    w = words.words
    for k in range(min(ECHO_WORDS - 1, len(w)), 0, -1):
        if tuple(w[-k:]) in OPENINGS:
            hold.append(words.starts[-k])
            break
    for period in range(1, min(MAX_PERIOD, len(w) - 1) + 1):
        run = 0
        while run < len(w) - period and w[-1 - run] == w[-1 - run - period]:
            run += 1
        if run:
            hold.append(words.starts[len(w) - run])
    return max(shown, min(hold))


class AnswerGuard:
    """Feed it the answer as it grows; it returns what may be shown, and stops at an echo or a loop."""

    def __init__(self) -> None:
        self.cut: Cut | None = None
        self.text = ""  # what it let through

    @property
    def stopped(self) -> bool:
        return self.cut is not None

    def update(self, answer: str) -> str:
        """The answer so far in; the next piece that may be shown out (often empty)."""
        self._restart_if_rewritten(answer)
        if self.cut is None:
            self.cut = find_cut(answer, len(self.text), complete=False)
        return self._show(answer, self.cut.end if self.cut else _held(answer, len(self.text)))

    def finish(self, answer: str) -> str:
        """The whole answer in; the rest that may be shown out."""
        self._restart_if_rewritten(answer)
        if self.cut is None:
            self.cut = find_cut(answer, len(self.text))
        return self._show(answer, self.cut.end if self.cut else len(answer))

    def _restart_if_rewritten(self, answer: str) -> None:
        """The answer so far turned out to be reasoning (``ThinkSplitter.reclassified``): guard the new one."""
        if not answer.startswith(self.text):
            self.text, self.cut = "", None

    def _show(self, answer: str, end: int) -> str:
        if end <= len(self.text):
            return ""
        piece = answer[len(self.text) : end]
        self.text = answer[:end]
        return piece


def clean(answer: str) -> str:
    """A whole answer cut before any echo of the prompt or loop."""
    guard = AnswerGuard()
    guard.finish(answer)
    return guard.text.strip()
