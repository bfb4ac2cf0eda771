"""Rendering for ``kura ingest``: a progress bar on a terminal, a summary table, or JSON for scripts."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.collection import IngestReport


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[object]:
    """Yields a callback ``(files_done, files_total, chunks)``; draws only on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = [
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[chunks]} chunks  {task.fields[rate]:.1f} chunks/s"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("ingest", total=None, chunks=0, rate=0.0)

        def update(done: int, total: int, chunks: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, completed=done, total=total, chunks=chunks, rate=chunks / elapsed if elapsed else 0.0)

        yield update


@contextlib.contextmanager
def ctrl_c_cancels() -> Iterator[threading.Event]:
    """The first Ctrl-C sets the event (the run stops between writes); a second one interrupts at once."""
    cancel = threading.Event()

    def cancel_run(signum: int, frame: FrameType | None) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, cancel_run)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def cancelled_line(report: IngestReport) -> str:
    counts = report.counts()
    written = counts["added"] + counts["updated"]
    return f"Cancelled: {written} of {report.planned} files ingested; run again to continue"


def _printable(name: str) -> str:
    """File names may hold newlines or control characters; show them escaped, on one line."""
    return escape(name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name)


def print_summary(report: IngestReport) -> None:
    console = Console()
    counts = report.counts()
    verb = "would be" if report.dry_run else ""
    table = Table(title=f"collection '{report.collection}'" + (" (dry run: nothing written)" if report.dry_run else ""))
    for column in ("added", "updated", "unchanged", "removed", "skipped", "chunks", "seconds", "chunks/s"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(counts[c]) for c in ("added", "updated", "unchanged", "removed", "skipped")),
        str(report.chunks_written),
        f"{report.seconds:.1f}",
        f"{report.chunks_per_s:.1f}",
    )
    console.print(table)
    for outcome in report.files:
        if outcome.status == "skipped":
            console.print(f"skipped {_printable(outcome.rel)}: {escape(outcome.reason or '')}")
        elif outcome.note:
            console.print(f"{outcome.status} {_printable(outcome.rel)}: {escape(outcome.note)}")
        elif report.dry_run and outcome.status != "unchanged":
            console.print(f"{verb} {outcome.status}: {_printable(outcome.rel)}".strip())
    if report.truncated:
        console.print(f"warning: {report.truncated} chunks were longer than the encoder's limit and were cut")
