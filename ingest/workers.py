"""Parse and chunk each file in a worker process with a memory limit and a time budget.

A 1 MB .docx made python-docx read a 1 GB part whole (2.15 GB peak), and an 80 KB Markdown file kept a
regex busy for 51.6 s (issue 15). In a worker process such a file costs at most its worker: one that
overruns ``ingest.parse_timeout_s`` is killed and replaced, one that reaches ``ingest.parse_memory_mb``
(an address-space limit) reports it and goes on. Workers live for the whole run and are forked from a
'forkserver' that has imported the parsers once: a plain fork would copy the parent's OpenVINO threads
mid-state, and a spawned process per file would pay the imports (about 1 s) again and again.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from ingest.documents import Parsed, ParseLimits

CANCELLED = "cancelled"
_IDLE_POLL_S = 0.2
# Imported by the forkserver once, so every parser process starts with the parsers loaded.
_PARSING = "ingest.parsing"


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([_PARSING])
    return context


def start_parser_server() -> None:
    """Start the forkserver now, so its imports (about 1 s) overlap the caller's own start-up."""
    _context()
    multiprocessing.forkserver.ensure_running()


def _serve(conn: Connection, limits: ParseLimits) -> None:
    """The parser process's entry; the import is here so the parent never loads the parsers."""
    from ingest.parsing import serve

    serve(conn, limits)


@dataclass(eq=False)  # hashed by identity: the pool keeps a set of them
class _Worker:
    process: BaseProcess
    conn: Connection

    def kill(self) -> None:
        self.process.kill()
        self.process.join()


class ParsePool:
    """``submit(path)`` gives a future of chunks or a skip reason; ``close()`` ends every worker at once."""

    def __init__(self, limits: ParseLimits, workers: int) -> None:
        self.limits = limits
        self._context = _context()
        self._closed = threading.Event()
        self._guard = threading.Lock()
        self._all: set[_Worker] = set()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for _ in range(workers):
            self._idle.put(self._start())
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kura-parse")

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, self.limits), daemon=True, name="kura-parser")
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        with self._guard:
            self._all.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        """A worker that overran or died is replaced, so the next file gets a fresh process."""
        worker.kill()
        worker.conn.close()
        with self._guard:
            self._all.discard(worker)
        if not self._closed.is_set():
            self._idle.put(self._start())

    def submit(self, path: Path) -> Future[Parsed | str]:
        return self._threads.submit(self._parse, path)

    def _parse(self, path: Path) -> Parsed | str:
        while True:
            if self._closed.is_set():
                return CANCELLED
            try:
                worker = self._idle.get(timeout=_IDLE_POLL_S)
                break
            except queue.Empty:
                continue
        try:
            worker.conn.send(path)
            if worker.conn.poll(self.limits.timeout_s):
                result: Parsed | str = worker.conn.recv()
                self._idle.put(worker)
                return result
            reason = (
                f"took longer than {self.limits.timeout_s:g} s to parse (limit ingest.parse_timeout_s); "
                "its parser process was stopped"
            )
        except (EOFError, OSError):  # killed by close(), or by the kernel
            reason = CANCELLED if self._closed.is_set() else "its parser process died (out of memory?)"
        self._retire(worker)
        return reason

    def close(self) -> None:
        """Kill every worker, busy or idle: a cancelled run must not wait for a hostile file."""
        self._closed.set()
        with self._guard:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()  # a busy worker's thread sees its pipe close and returns
        self._threads.shutdown(wait=True, cancel_futures=True)
        while not self._idle.empty():
            self._idle.get().conn.close()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
