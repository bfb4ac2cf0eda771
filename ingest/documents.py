"""What loaders and chunking produce, how a file is refused, and the limits a parser process works under."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.config import OcrSettings

# Bump when a loader's output changes, so unchanged files are re-parsed once.
PARSER_VERSION = "2"

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
    ".xlsx": "Excel workbook",
    ".odt": "OpenDocument text",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}
# A file without a suffix (README, NOTES, LICENSE) is read as text when its content is text.
NO_SUFFIX = "file without extension"
SUPPORTED_SUFFIXES = frozenset(FORMATS)


def unsupported(name: str) -> str | None:
    """Why a file of this name will not be read, judged by its suffix alone; None when its type is supported."""
    suffix = PurePath(name).suffix.lower()
    if suffix in FORMATS or not suffix:
        return None
    return f"unsupported type {suffix}"


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document: a page, a slide, or the body under one heading."""

    text: str
    page: int | None = None
    heading: str | None = None
    # OCR'd text only: per word, (start, end) in ``text`` and its box in thousandths of the page (ingest.ocr).
    boxes: tuple[tuple[int, int, int, int, int, int], ...] = ()


@dataclass(frozen=True)
class TextCaps:
    """At most this much text from one file and from one page or slide (``ingest.max_chars_*``).

    Over a cap the file is refused, not truncated: a store holding part of a document would answer as if it
    held all of it. A PDF with one 5 MB content stream became 2,030 chunks of one "page" (issue 15).
    """

    per_file: int
    per_page: int

    def check(self, page: int | None, page_chars: int, file_chars: int) -> None:
        if page is not None and page_chars > self.per_page:
            raise SkipFile(
                f"page {page} has more than {self.per_page:,} characters of text (limit ingest.max_chars_per_page)"
            )
        if file_chars > self.per_file:
            raise SkipFile(f"more than {self.per_file:,} characters of text (limit ingest.max_chars_per_file)")


class SkipFile(Exception):
    """A file Kura cannot ingest; the message is the one-line reason shown to the user."""


CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    text: str
    page: int | None
    heading: str | None
    index: int
    boxes: str | None = None  # OCR'd chunks: the JSON word boxes of chunk metadata ``ocr_boxes`` (README OCR)

    def embedding_text(self) -> str:
        """What the encoder sees: the heading path, then the passage."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class ParseLimits:
    """Everything a parser process needs besides the path; sent once, when the process starts."""

    count: CountTokens
    chunk_size: int
    overlap: int
    max_tokens: int
    caps: TextCaps
    memory_mb: int
    timeout_s: float
    ocr: OcrSettings


@dataclass(frozen=True)
class Parsed:
    """A parsed file's chunks, and a note for the user about what could not be read (pages without text)."""

    chunks: list[Chunk]
    note: str | None = None
