"""The conversation and collection kept in the browser (``gr.BrowserState``), so a reload does not lose them.

The browser keeps the last ``MAX_TURNS`` turns with the user and collection they belong to. What comes
back is the browser's word: it is used only for the same user, only for a collection that user may still
open (the caller checks), and only if it renders; otherwise the page starts a new chat.
Gradio encrypts the value with a secret it makes up on every start unless given one, which would lose every
saved chat at a restart: Kura keeps one in ``paths.uploads/.browser-state-key`` (mode 0600). Gradio encrypts
in the browser, so the page (after login) carries that secret: the encryption keeps saved chats from other
programs reading the browser's files, not from someone who can open Kura's page in that browser.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from ui import render

STORAGE_KEY = "kura-chat"
MAX_TURNS = 50
SECRET_FILE = ".browser-state-key"
# What the page needs of an answer; the texts of every retrieved chunk (for the eval) would fill the
# browser's storage (about 5 MB for a site) in a few dozen turns.
_LEFT_OUT = ("retrieved", "retrieved_texts", "packed_texts")


def secret(uploads: Path) -> str:
    """The key Gradio encrypts saved chats with, made once and kept private to the server's user."""
    path = uploads / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="ascii").strip()
    uploads.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(value)
    return value


def shown(final: dict[str, Any]) -> dict[str, Any]:
    """An answer's fields the page shows, without the eval's copies of every retrieved text."""
    return {key: value for key, value in final.items() if key not in _LEFT_OUT}


def snapshot(turns: list[dict[str, Any]] | None, collection: str | None, user: str | None) -> dict[str, Any]:
    """What the browser keeps: the last finished turns, whose they are and in which collection."""
    done = [t for t in turns or [] if t.get("final") or t.get("error")]
    return {"user": user, "collection": collection, "turns": done[-MAX_TURNS:]}


def restored(saved: Any, collection: str | None, user: str | None) -> list[dict[str, Any]]:
    """The saved turns if they are this user's, in this collection, and render; else a new chat."""
    if not isinstance(saved, dict) or saved.get("user") != user or saved.get("collection") != collection:
        return []
    turns = saved.get("turns")
    if not isinstance(turns, list) or not all(_well_formed(t) for t in turns):
        return []
    try:
        render.conversation(turns, True, collection)
        for turn in turns:
            for source in (turn.get("final") or {}).get("sources", []):
                render.source_panel(source)
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    return turns[-MAX_TURNS:]


def _well_formed(turn: Any) -> bool:
    if not isinstance(turn, dict) or not isinstance(turn.get("question"), str):
        return False
    final = turn.get("final")
    if final is None:
        return isinstance(turn.get("error"), str)
    return isinstance(final, dict) and isinstance(final.get("answer"), str) and isinstance(final.get("sources"), list)
