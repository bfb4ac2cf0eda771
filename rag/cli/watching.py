"""``kura ingest --watch``: the normal pass, then one line per change (``--json``: one JSON object per line)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ingest.collection import Collection
from ingest.watch import Change, FolderSync
from rag.cli.ingest_report import cancelled_line, ctrl_c_cancels, print_summary, progress_bar
from rag.config import Settings


def _json_line(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False))
    sys.stdout.flush()  # a pipe buffers: a script reading the lines must get each as it happens


def _line(change: Change) -> None:
    typer.echo(change.line())
    sys.stdout.flush()


def watch_folders(
    settings: Settings, target: Collection, paths: list[Path], embedder: Any, as_json: bool, say: Callable[[str], None]
) -> int:
    """Sync ``paths`` into ``target`` until Ctrl-C; returns the exit code (130 when the first pass was cancelled)."""
    announce = (lambda change: _json_line(change.to_dict())) if as_json else _line
    with progress_bar(not as_json) as progress, ctrl_c_cancels() as stop:
        folders = FolderSync(target, paths, embedder, settings.ingest.watch_settle_s, announce, stop)
        report = folders.first_pass(progress)  # type: ignore[arg-type]
        if report.cancelled:
            say(cancelled_line(report))
            return 130
        if as_json:
            _json_line({"event": "pass", **report.to_dict()})
        else:
            print_summary(report)
        embedder.load()  # now, so the first change is not kept waiting by the model's load
        shown = [str(root) for root in folders.roots]
        if as_json:
            _json_line({"event": "watching", "folders": shown})
        say(f"watching {', '.join(shown)} for changes; Ctrl-C stops")
        folders.watch()
    say("stopped watching")
    return 0
