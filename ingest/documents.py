"""What loaders produce and how they refuse a file: the contract between parsing and chunking."""

from __future__ import annotations

from dataclasses import dataclass

# Bump when a loader's output changes, so unchanged files are re-parsed once.
PARSER_VERSION = "1"

SUPPORTED_SUFFIXES = frozenset({".pdf", ".docx", ".pptx", ".html", ".htm", ".md", ".markdown", ".txt", ".rst", ".csv"})


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document: a page, a slide, or the body under one heading."""

    text: str
    page: int | None = None
    heading: str | None = None


class SkipFile(Exception):
    """A file Kura cannot ingest; the message is the one-line reason shown to the user."""
