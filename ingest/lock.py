"""One writer per store: Chroma's embedded client is not safe with two writing processes.

Readers take no lock. A second writer waits up to ``wait_s`` seconds, then stops with a message
naming the process that holds the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import KuraError


def _holder(info: Path) -> str:
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
        return f"pid {data['pid']}, {data['what']}, since {data['since']}"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextlib.contextmanager
def writer_lock(lock_path: Path, what: str, wait_s: float = 0.0) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    info = lock_path.with_suffix(".holder")
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise KuraError(
            f"the store is being written by {_holder(info)}; wait for it to finish or retry with --wait SECONDS"
        ) from None
    try:
        since = time.strftime("%H:%M:%S")
        info.write_text(json.dumps({"pid": os.getpid(), "what": what, "since": since}), encoding="utf-8")
        yield
    finally:
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()
