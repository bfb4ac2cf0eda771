"""What loaders produce and how they refuse a file: the contract between parsing and chunking."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

# Bump when a loader's output changes, so unchanged files are re-parsed once.
PARSER_VERSION = "1"

# The one list of the types Kura reads: suffix -> the name a refusal uses ("not a valid PDF").
FORMATS = {
    ".pdf": "PDF",
    ".docx": "Word document",
    ".pptx": "PowerPoint file",
    ".html": "HTML file",
    ".htm": "HTML file",
    ".md": "Markdown file",
    ".markdown": "Markdown file",
    ".txt": "text file",
    ".rst": "text file",
    ".csv": "CSV file",
}
SUPPORTED_SUFFIXES = frozenset(FORMATS)


def unsupported(name: str) -> str | None:
    """Why a file of this name will not be read, judged by its suffix alone; None when its type is supported."""
    suffix = PurePath(name).suffix.lower()
    if suffix in FORMATS:
        return None
    return f"unsupported type {suffix}" if suffix else "unsupported type (no file extension)"


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document: a page, a slide, or the body under one heading."""

    text: str
    page: int | None = None
    heading: str | None = None


class SkipFile(Exception):
    """A file Kura cannot ingest; the message is the one-line reason shown to the user."""
