"""Counts in words a user reads: "1 file", "2 files"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, with ``many`` (default: ``word`` + "s") unless the count is exactly one."""
    return f"{count} {word if count == 1 else many or word + 's'}"
