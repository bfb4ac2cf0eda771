"""An engine that fails: one of Kura's is an error (the run exits 1), a baseline is marked unavailable.

A baseline is what Kura is compared against (llama.cpp, PyTorch, sentence-transformers). On some hosts
one cannot run at all (a llama.cpp built for another CPU dies on its first matmul), and a user's
benchmark of Kura must not fail for that: the row says "baseline unavailable", the ratios and floors
against it are left out, and the other engines still run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UNAVAILABLE = "baseline_unavailable"


def engine_failure(
    section: str, name: str, exc: BaseException, baseline: bool, say: Callable[[str], None]
) -> dict[str, str]:
    """The record of a failed engine, said in one line when it is a baseline."""
    reason = f"{type(exc).__name__}: {exc}"
    if not baseline:
        return {"error": reason}
    say(f"bench {section}: baseline {name} unavailable ({reason}); the other engines still run")
    return {UNAVAILABLE: reason}


def unavailable(info: Any) -> str | None:
    """Why a baseline could not run, or None when it ran (or is not a baseline)."""
    return info.get(UNAVAILABLE) if isinstance(info, dict) else None
