"""A conversation as Markdown, with its citations: what the web app's "Export chat" downloads (issue 18).

Each turn is the question, the answer as shown (its [n] citations kept), and the sources those numbers
name, with file and page, so the export still says where each answer came from once the page is gone.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ui.render import STOPPED

EXPORT_FOLDER = ".exports"  # under paths.uploads; a collection name cannot start with a dot
KEEP_S = 300  # Gradio copies the file into its cache as the handler returns: older copies here are spare


def _source_line(source: dict[str, Any]) -> str:
    page = f", page {source['page']}" if source.get("page") is not None else ""
    heading = f" ({source['heading']})" if source.get("heading") else ""
    return f"- [{source['n']}] {source['path']}{page}{heading}"


def _answer(turn: dict[str, Any]) -> str:
    if turn.get("error"):
        return f"*Error: {turn['error']}*"
    final = turn.get("final") or {}
    text = str(final.get("answer") or "")
    return f"{STOPPED}{text or '(nothing yet)'}" if final.get("answer_source") == "stopped" else text


def to_markdown(turns: Sequence[dict[str, Any]], collection: str | None, when: float | None = None) -> str:
    """The finished turns, oldest first; a turn still being answered is left out."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() if when is None else when))
    lines = [f"# Kura chat: {collection or 'no collection'}", "", f"Exported {stamp}.", ""]
    for number, turn in enumerate((t for t in turns if t.get("final") or t.get("error")), 1):
        lines += [f"## {number}. {' '.join(str(turn['question']).split())}", "", _answer(turn), ""]
        sources = (turn.get("final") or {}).get("sources") or []
        if sources:
            lines += ["Sources:", "", *(_source_line(s) for s in sources), ""]
    return "\n".join(lines)


def write(markdown: str, collection: str | None, root: Path) -> Path:
    """The export as a file Gradio can serve (it copies it into its cache); spare earlier ones are removed."""
    folder = root / EXPORT_FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in folder.iterdir():
        if time.time() - old.stat().st_mtime > KEEP_S:
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(dir=folder)) / f"kura-chat-{collection or 'none'}.md"
    path.write_text(markdown, encoding="utf-8")
    return path
