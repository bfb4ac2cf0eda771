"""Errors a user can act on: the CLI and UI show their message as one line, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

_LIBRARY = re.compile(r'Cannot load library "(?P<lib>[^"]+)": (?P<why>.*)')


class KuraError(Exception):
    """A problem with the user's input or environment; the message says what to do."""

    exit_code = 1


class ConfigError(KuraError):
    """Invalid configuration; exit code 2 like other usage errors."""

    exit_code = 2


def short_reason(exc: BaseException, line: Literal["first", "last"] = "last", limit: int = 200) -> str:
    """One line that says why ``exc`` happened, for a message that must fit on one line.

    OpenVINO's, Chroma's and SQLite's messages span several lines, the useful one last (parsers put it
    first: ``line="first"``); OpenVINO's source-file lines are skipped and a plugin that cannot load is
    named by its library file.
    """
    plugin = _LIBRARY.search(str(exc))
    if plugin:
        return f"{Path(plugin['lib']).name} cannot load: {plugin['why'].strip()}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception from src/")]
    kept = useful or lines or [type(exc).__name__]
    text = kept[0] if line == "first" else kept[-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."
