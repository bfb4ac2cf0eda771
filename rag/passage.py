"""An extracted answer as a short passage: the best evidence sentence, marked, with what follows it.

A lone sentence loses the value whenever a document puts it in the next sentence: in a definition list
the term's line ("checkpoint_timeout (integer)") names what was asked, and the line holding the value
("The default is 5min.") does not. Continuing the best sentence with the sentences after it, within the
words a concise answer may have, keeps the term and its value together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from rag.evidence import Evidence, sentences

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


def _following(best: str, source: Numbered) -> list[str]:
    """The sentences of the source after ``best`` (none when it cannot be found again)."""
    units = sentences(source.text)
    return units[units.index(best) + 1 :] if best in units else []


def passage(evidence: Sequence[Evidence], sources: Sequence[Numbered], limit: int = PASSAGE_WORDS) -> str:
    """The best evidence sentence in bold, then the sentences after it while the passage stays in ``limit``.

    The key sentence is kept whole even past the limit: cutting it could cut the answer.
    """
    best = evidence[0]
    source = next((s for s in sources if s.n == best.n), None)
    # A sentence with bold of its own would nest ** inside ** (Markdown has no nested bold): left as it is.
    parts = [best.text if "**" in best.text else f"**{best.text}**"]
    used = words(best.text)
    for sentence in _following(best.text, source) if source is not None else []:
        used += words(sentence)
        if used > limit:
            break
        parts.append(sentence)
    return f"{' '.join(parts)} [{best.n}]"
