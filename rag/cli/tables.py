"""Tables ``kura collections`` and ``kura users list`` print for people; ``--json`` gives scripts the same rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ingest.collection import Document
from rag.config import Settings
from rag.users import WILDCARD, users_path
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


def rule_names(names: Sequence[str], rules: dict[str, list[str]], none: str) -> str:
    """A user's entries in ``rules`` in words: ``*`` means every collection the rules do not name."""
    if WILDCARD not in names:
        return ", ".join(escape(n) for n in names) or none
    excluded = [escape(n) for n in sorted(rules) if n != WILDCARD and n not in names]
    return f"all but {', '.join(excluded)}" if excluded else "all"


STORED_IN = {"users_file": "users file", "config": "config (ui.users)"}


def users_table(rows: Sequence[dict[str, Any]], settings: Settings) -> None:
    ui = settings.ui
    table = Table(title=plural(len(rows), "user"))
    table.add_column("name")
    table.add_column("may use")
    table.add_column("editor of")
    table.add_column("stored in")
    for row in rows:
        table.add_row(
            escape(row["name"]),
            rule_names(row["may_use"], ui.collection_access, "no collection"),
            rule_names(row["may_edit"], ui.collection_editors, "-"),
            STORED_IN[row["stored_in"]],
        )
    console = Console()
    console.print(table)
    console.print(f"users file: {escape(str(users_path(settings)))}", soft_wrap=True)
