"""What a parser process runs (``ingest.workers`` starts them): load and chunk one file, under its limits.

Only parser processes import this module, and with it the parser libraries and the text splitter: the
process that embeds and writes no longer needs them.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
import signal
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.chunking import chunk_sections
from ingest.documents import Parsed, ParseLimits, SkipFile
from ingest.loaders import load_document

MIB = 1024 * 1024
M_ARENA_MAX = -8  # glibc's mallopt parameter


def parse_file(path: Path, limits: ParseLimits) -> Parsed | str:
    """The chunks of one file, or the one-line reason it is skipped."""
    try:
        loaded = load_document(path, limits.caps, limits.ocr)
        chunks = chunk_sections(loaded.sections, limits.count, limits.chunk_size, limits.overlap, limits.max_tokens)
    except SkipFile as exc:
        return str(exc)
    except MemoryError:
        return f"needs more than {limits.memory_mb} MB of memory to parse (limit ingest.parse_memory_mb)"
    except Exception as exc:  # a parser bug must not stop the run, nor lose the other files
        return f"could not parse ({type(exc).__name__}: {exc})"
    return Parsed(chunks, loaded.note) if chunks else "no text"


def _few_malloc_arenas() -> None:
    """glibc reserves 64 MB of address space per thread's malloc arena, and the limit below counts address
    space: OpenVINO's threads (OCR backend rapidocr) peaked at 2.15 GB on one photographed page, 1.63 GB
    with two arenas (VmPeak). A libc without ``mallopt`` (not glibc) is left as it is."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)


def serve(conn: Connection, limits: ParseLimits) -> None:
    """A parser process's life: paths in, results out, until the parent closes the pipe (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then ends the workers
    _few_malloc_arenas()
    memory = limits.memory_mb * MIB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        # The parent enforces the budget; this CPU limit ends a parse the parent can no longer stop (it was
        # killed), as the SIGKILL tests do, instead of leaving an orphan parsing for minutes.
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_limit = int(used.ru_utime + used.ru_stime + 2 * limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, resource.RLIM_INFINITY))
        conn.send(parse_file(path, limits))
