"""Check the ``[n]`` citations in an answer against the sources the model was actually given.

Small models cite sources that do not exist (``[7]`` when three were given) or use loose forms
(``[Source 2]``, ``[1-3]``). A citation the user cannot follow is worse than none, so invalid numbers
are removed with a warning and valid ones are rewritten in one canonical form, ``[1, 2]``, which the UI
can link without guessing.

Not citations, and left exactly as written: brackets whose content is not a list of numbers (``[x]``,
``[^1]``), markdown links ``[text](url)`` and ``[1](url)``, indexes that directly follow an identifier
(``a[0]``, ``m[0][1]``), and anything inside inline code or fenced code blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
# Content is capped: no real citation is longer, and it keeps matching cheap on long lines.
_BRACKET = re.compile(r"\[([^\[\]\n]{1,120})\]")
_ITEM = r"(?:sources?\s*)?#?\d+(?:\s*[-–]\s*\d+)?"
_CITATION = re.compile(rf"\s*{_ITEM}(?:\s*[,;]\s*{_ITEM})*\s*", re.IGNORECASE)
_NUMBERS = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")
# After a removed citation, a space before one of these would be left dangling.
_CLOSING_PUNCTUATION = ".,;:!?)"


@dataclass
class CitationCheck:
    text: str  # answer with invalid citations removed (and doubled spaces tidied)
    cited: list[int]  # valid source numbers cited, in first-appearance order, unique
    warnings: list[str]  # e.g. "removed [7]: only sources 1-3 were given"


def check_citations(answer: str, n_sources: int) -> CitationCheck:
    """Keep citations of sources 1..``n_sources``, drop the rest, and report what was dropped."""
    if n_sources < 0:
        raise ValueError("n_sources must not be negative")
    code = [m.span() for m in _CODE.finditer(answer)]
    text = ""
    cited: list[int] = []
    warnings: list[str] = []
    position = 0
    previous_end = -1
    previous_was_citation = False
    for match in _BRACKET.finditer(answer):
        start, end = match.span()
        after_non_citation = start == previous_end and not previous_was_citation
        previous_end = end
        previous_was_citation = _is_citation(answer, match, code, after_non_citation)
        if not previous_was_citation:
            continue
        valid, invalid = _split_numbers(match.group(1), n_sources)
        text += answer[position:start]
        position = end
        if invalid:
            what = f"{_runs(invalid)} from {match.group(0)}" if valid else match.group(0)
            warnings.append(f"removed {what}: {_given(n_sources)}")
        if valid:
            text += "[" + ", ".join(map(str, valid)) + "]"
            cited.extend(n for n in valid if n not in cited)
        else:
            text, position = _tidy_removal(answer, text, position)
    text += answer[position:]
    return CitationCheck(text=text, cited=cited, warnings=warnings)


def without_citations(text: str) -> str:
    """What an answer says without where it says it: every citation removed, as if no source were given."""
    return check_citations(text, 0).text


def _is_citation(text: str, match: re.Match[str], code: list[tuple[int, int]], after_non_citation: bool) -> bool:
    start, end = match.span()
    if any(lo <= start < hi for lo, hi in code):
        return False
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return False  # an index: a[0]
    if after_non_citation:
        return False  # m[0][1], or a reference-style link [text][1]
    if text.startswith("(", end):
        return False  # a markdown link
    return _CITATION.fullmatch(match.group(1)) is not None


def _split_numbers(content: str, n_sources: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Valid numbers (unique, in order) and invalid ranges of one bracket's content.

    Ranges are clipped rather than expanded, so ``[1-1000000]`` costs nothing.
    """
    valid: list[int] = []
    invalid: list[tuple[int, int]] = []
    for match in _NUMBERS.finditer(content):
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        low, high = min(low, high), max(low, high)
        if low < 1:
            invalid.append((low, min(high, 0)))
        valid.extend(n for n in range(max(low, 1), min(high, n_sources) + 1) if n not in valid)
        if high > n_sources:
            invalid.append((max(low, n_sources + 1), high))
    return valid, invalid


def _runs(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _given(n_sources: int) -> str:
    if n_sources == 0:
        return "no sources were given"
    if n_sources == 1:
        return "only source 1 was given"
    return f"only sources 1-{n_sources} were given"


def _tidy_removal(answer: str, text: str, position: int) -> tuple[str, int]:
    """Drop the space a removed citation leaves behind; return the new text and where copying resumes."""
    trimmed = text.rstrip(" \t")
    following = answer[position] if position < len(answer) else "\n"
    if not trimmed or trimmed.endswith("\n"):
        # "  [7] Next" at the start of a line -> "  Next": keep the indentation, drop the gap.
        while position < len(answer) and answer[position] in " \t":
            position += 1
        return text, position
    if following in " \t\n" or following in _CLOSING_PUNCTUATION:
        return trimmed, position  # "a [7] b" -> "a b", "claim [7]." -> "claim."
    return text, position
