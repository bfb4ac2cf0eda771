"""Fit numbered sources into the model's context window, best-ranked first.

Small local models have small windows, and a prompt that overflows is either rejected or silently
cut by the backend, losing the question at the end. So the sources are packed here against an explicit
budget: the window minus what the answer (and any reasoning) may use minus the fixed prompt parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class PackResult(Generic[T]):
    chunks: list[T]  # the chunks kept, in rank order
    texts: list[str]  # the text used for each kept chunk (possibly truncated for the last one)
    dropped: int  # how many were left out
    prompt_tokens: int  # estimated tokens of the fixed prompt + kept sources
    truncated: bool = False  # whether the last kept text was shortened to fit


def pack_sources(
    chunks: Sequence[T],
    text_of: Callable[[T], str],
    count_tokens: Callable[[str], int],
    context_window: int,
    reserved_tokens: int,
    fixed_tokens: int,
    per_source_overhead: int = 12,
    min_truncated_tokens: int = 48,
) -> PackResult[T]:
    """Keep chunks in rank order while they fit; shorten the first that does not, drop the rest.

    ``reserved_tokens`` is the answer budget plus any thinking budget; ``fixed_tokens`` covers the system
    prompt, question and history. Each source costs its text's tokens plus ``per_source_overhead`` (its
    number and separators). The first chunk that does not fit is cut, at a word boundary, to the tokens
    left, but only if at least ``min_truncated_tokens`` remain for its text: a scrap of a source helps
    less than it confuses. The total never exceeds the budget.
    """
    if per_source_overhead < 0 or min_truncated_tokens < 0:
        raise ValueError("per_source_overhead and min_truncated_tokens must not be negative")
    remaining = context_window - reserved_tokens - fixed_tokens
    if remaining <= 0:
        return PackResult(chunks=[], texts=[], dropped=len(chunks), prompt_tokens=fixed_tokens)
    kept: list[T] = []
    texts: list[str] = []
    used = 0
    truncated = False
    for chunk in chunks:
        text = text_of(chunk)
        cost = count_tokens(text) + per_source_overhead
        if cost <= remaining:
            kept.append(chunk)
            texts.append(text)
            used += cost
            remaining -= cost
            continue
        room = remaining - per_source_overhead
        if room >= max(min_truncated_tokens, 1):
            short = truncate_to_tokens(text, room, count_tokens)
            if short:
                kept.append(chunk)
                texts.append(short)
                used += count_tokens(short) + per_source_overhead
                truncated = True
        break
    return PackResult(
        chunks=kept,
        texts=texts,
        dropped=len(chunks) - len(kept),
        prompt_tokens=fixed_tokens + used,
        truncated=truncated,
    )


def truncate_to_tokens(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` within ``max_tokens``, cut back to a word boundary when possible.

    Binary search over characters, since only the tokenizer knows where tokens fall. Text without
    spaces (a long identifier, CJK) is cut between characters instead. Returns ``""`` if nothing fits.
    """
    low, high = 0, len(text)  # the longest fitting prefix length lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    prefix = text[:low]
    candidates = [prefix.rstrip()]
    if low < len(text) and prefix and not prefix[-1].isspace() and not text[low].isspace():
        boundary = max(prefix.rfind(" "), prefix.rfind("\n"), prefix.rfind("\t"))
        if boundary > 0:
            candidates.insert(0, prefix[:boundary].rstrip())
    # Real tokenizers are not strictly monotone in the prefix, so check what is returned.
    return next((c for c in candidates if c and count_tokens(c) <= max_tokens), "")
