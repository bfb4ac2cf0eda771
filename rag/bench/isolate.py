"""Engines run in their own spawned processes: one-shot (``in_child``) or driven call by call (``Worker``).

Three reasons for a process per engine: peak RSS is then that engine's own (``ru_maxrss`` never goes
down within a process); PyTorch's OpenMP threads keep spinning after a run and would steal the two
cores from the next engine measured in the same process; and a crash in a native library costs one
row, not the whole run. A ``Worker`` keeps its engine loaded and runs one call at a time, so the
runs of several engines can be interleaved round by round: on a shared machine, load that comes and
goes then slows every engine alike instead of whichever happened to be measured at the time.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")
PAUSE_S = 0.3  # between calls to different workers: lets OpenMP threads of the last one stop spinning


def exit_reason(code: int | None) -> str:
    """How a process ended, naming the signal: a crash in a native library should say so (SIGSEGV, SIGILL)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _child_setup() -> None:
    from rag.offline import apply_offline_environment

    apply_offline_environment()
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no per-load reports on stderr
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for noisy in ("httpx", "urllib3", "chromadb", "transformers", "nncf", "optimum", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def in_child(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a fresh spawned process and return its (picklable) result."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_child_setup) as pool:
        return pool.submit(fn, *args).result()


def _serve(conn: Connection, factory: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _child_setup()
    try:
        engine = factory(*args)
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", None))
    while (request := conn.recv()) is not None:
        method, call_args = request
        try:
            conn.send(("ok", getattr(engine, method)(*call_args)))
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Worker:
    """``factory(*args)`` built in a spawned process; ``call(name, ...)`` runs one of its methods there."""

    def __init__(self, factory: Callable[..., Any], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, factory, args), daemon=True)
        self._process.start()
        child.close()
        self._receive()

    def _receive(self) -> Any:
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._process.join(timeout=5)
            raise RuntimeError(f"the worker process died ({exit_reason(self._process.exitcode)})") from None
        if status == "error":
            raise RuntimeError(value)
        return value

    def call(self, method: str, *args: Any) -> Any:
        self._conn.send((method, args))
        return self._receive()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
