"""Tables ``kura collections`` prints for people; ``--json`` gives scripts the same rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ingest.collection import Document
from rag.wording import plural


def embedder_in_words(fingerprint: str | None) -> str:
    """``name:hash:precision:pooling:shapes[:prefixes]`` as a person reads it: the model and its precision."""
    if not fingerprint:
        return "unknown"
    parts = fingerprint.split(":")
    return f"{parts[0]} ({parts[2]})" if len(parts) > 2 else parts[0]


def collections_table(rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title=plural(len(rows), "collection"))
    table.add_column("name")
    table.add_column("files", justify="right")
    table.add_column("chunks", justify="right")
    table.add_column("embedder")
    for row in rows:
        table.add_row(escape(row["name"]), str(row["files"]), str(row["chunks"]), embedder_in_words(row["embedder"]))
    Console().print(table)


def files_table(name: str, documents: Sequence[Document]) -> None:
    chunks = sum(d.chunks for d in documents)
    table = Table(title=f"collection '{escape(name)}': {plural(len(documents), 'file')}, {plural(chunks, 'chunk')}")
    table.add_column("file")
    table.add_column("state")
    table.add_column("chunks", justify="right")
    table.add_column("ingested")
    for d in documents:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at)) if d.ingested_at else "-"
        label = escape(d.rel.encode("unicode_escape").decode("ascii") if not d.rel.isprintable() else d.rel)
        table.add_row(label + (" (uploaded)" if d.uploaded else ""), d.state, str(d.chunks), when)
    Console().print(table)
