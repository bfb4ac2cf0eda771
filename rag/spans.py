"""Where a sentence sits in a sequence of words: the one matcher behind every highlight of the verify view.

Evidence sentences come from the text a loader extracted (pypdf for PDFs), while the boxes on a page come
from another reader of the same page (pdfium's text layer today, an OCR engine's word boxes later), and the
two split words, hyphens and spaces differently. So both sides are compared as their letters and digits
only, lowercased: "in-house" read as "in- house" still matches, and so does a CJK sentence with no spaces.
A sentence that is not found whole is matched by its longest common runs, if they cover most of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Protocol

# Runs shorter than this are chance agreement ("the", "of"), not the sentence.
MIN_RUN = 4
# A sentence found only in pieces must have this share of its letters and digits matched.
MIN_MATCHED = 0.6
_WORD = re.compile(r"\S+")


class Worded(Protocol):
    """Anything with a word's text: a page's boxed word, a text's word with its offsets."""

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TextWord:
    """A word of a plain text, by its character offsets (``text[start:end]``)."""

    text: str
    start: int
    end: int


def key(text: str) -> str:
    """What two readers of one text agree on: its letters and digits, lowercased."""
    return "".join(c for c in text.lower() if c.isalnum())


def text_words(text: str) -> list[TextWord]:
    """The whitespace-separated words of ``text`` with their offsets."""
    return [TextWord(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _keyed(words: Sequence[Worded]) -> tuple[str, list[int]]:
    """The words' keys joined, and for each character the index of the word it came from."""
    parts: list[str] = []
    owner: list[int] = []
    for index, word in enumerate(words):
        part = key(word.text)
        parts.append(part)
        owner += [index] * len(part)
    return "".join(parts), owner


def locate(sentence: str, words: Sequence[Worded], start: int = 0) -> tuple[int, int] | None:
    """The first and last index (inclusive) of the words holding ``sentence``, searched from word ``start``;
    None when it is not there."""
    wanted = key(sentence)
    if not wanted:
        return None
    haystack, owner = _keyed(words[start:])
    found = haystack.find(wanted)
    if found >= 0:
        return start + owner[found], start + owner[found + len(wanted) - 1]
    return _near_match(wanted, haystack, owner, start)


def _near_match(wanted: str, haystack: str, owner: list[int], start: int) -> tuple[int, int] | None:
    """Around the longest common run, the runs in order; enough of them means the sentence is there."""
    longest = SequenceMatcher(None, wanted, haystack, autojunk=False).find_longest_match()
    if longest.size < MIN_RUN:
        return None
    low = max(0, longest.b - longest.a - len(wanted) // 4)
    high = min(len(haystack), longest.b + len(wanted) - longest.a + len(wanted) // 4)
    matcher = SequenceMatcher(None, wanted, haystack[low:high], autojunk=False)
    runs = [block for block in matcher.get_matching_blocks() if block.size >= MIN_RUN]
    if sum(block.size for block in runs) < MIN_MATCHED * len(wanted):
        return None
    return start + owner[low + runs[0].b], start + owner[low + runs[-1].b + runs[-1].size - 1]


def locate_all(sentences: Iterable[str], words: Sequence[Worded]) -> list[tuple[int, int]]:
    """Each sentence found (in any order), as word index ranges; sentences not found are left out."""
    return [span for sentence in sentences if (span := locate(sentence, words)) is not None]
