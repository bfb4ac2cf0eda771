"""Turn one file into Sections, or refuse it with a reason a user understands.

A heading is metadata: ``Section.heading`` carries the heading path and the heading's own line is not
repeated in ``Section.text``. Only the body under it is, so a heading with no body yields no Section.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import docx
import pptx
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from docx.table import Table
from pptx.shapes.autoshape import Shape
from pptx.shapes.base import BaseShape
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from ingest.archives import check_office_zip
from ingest.documents import FORMATS, Section, SkipFile, TextCaps, unsupported
from rag.errors import short_reason

SNIFF_BYTES = 8192
HEADING_SEPARATOR = " > "

# Longest first: the UTF-32-LE BOM begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control bytes that ordinary text never contains (tab, newline, form feed and carriage return are allowed).
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D} | {0x7F}

_BLANK_RUNS = re.compile(r"\n{3,}")
_DOCX_HEADING = re.compile(r"heading ([1-9])", re.IGNORECASE)
# CommonMark ATX heading: up to 3 spaces of indent, 1-6 '#', a space, the title (its optional closing '#'
# run is cut in ``_md_title``). A pattern matching the closing run too backtracked quadratically: 80 KB of
# "# a", 80,000 spaces, "b" took 51.6 s. Lines reach it right-stripped, so the title ends in a non-space.
_MD_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(\S.*)")
_MD_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")

_HTML_DROPPED = ["script", "style", "noscript", "template", "nav", "head"]
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# fmt: off
_HTML_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "ol", "p", "section", "summary",
    "table", "tbody", "tfoot", "thead", "tr", "ul",
})
# fmt: on
_HTML_CELLS = frozenset({"td", "th"})
_END_OF_BLOCK = object()


def load_file(path: Path, caps: TextCaps | None = None) -> list[Section]:
    """Parse ``path`` by its suffix; every problem with the file itself becomes a ``SkipFile``.

    Text beyond ``caps`` refuses the file as soon as a loader yields it, not after the whole file is read.

    Parser libraries raise a zoo of exception types for malformed input (zip, XML, PDF syntax, encoding,
    csv), so anything a format loader raises is reported as "not a valid <kind>" rather than crashing
    an ingest run that may hold thousands of other files.
    """
    if reason := unsupported(path.name):
        raise SkipFile(reason)
    kind = FORMATS[path.suffix.lower()]
    loader = _LOADERS[kind]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SkipFile(f"cannot read file ({error.strerror or error})") from error
    if not data:
        raise SkipFile("empty file")
    sections: list[Section] = []
    chars = 0
    try:
        for section in loader(data):
            text = normalize(section.text)
            if not text.strip():
                continue
            chars += len(text)
            if caps is not None:
                caps.check(section.page, len(text), chars)
            sections.append(Section(text, section.page, section.heading))
    except (SkipFile, MemoryError):
        raise
    except Exception as error:
        raise SkipFile(f"not a valid {kind} ({short_reason(error, line='first', limit=120)})") from error
    if not sections:
        raise SkipFile("no text")
    return sections


def decode_text(data: bytes) -> str:
    """Bytes of a plain-text file as str.

    A BOM is trusted; otherwise UTF-8 is tried strictly and a failure means a legacy Windows/Latin-1
    file. Binary data is refused first because cp1252/latin-1 would "decode" anything into garbage.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as error:
                raise SkipFile(f"not valid {encoding} text despite its byte order mark") from error
    if _looks_binary(data):
        raise SkipFile("binary data, not text")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _looks_binary(data: bytes) -> bool:
    """NUL bytes or many control bytes near the start: the signature of non-text (and of BOM-less UTF-16)."""
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte in _CONTROL_BYTES)
    return controls > len(sample) / 10


def normalize(text: str) -> str:
    """One newline convention, no NULs, no trailing spaces, at most one blank line in a row."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def _collapse(text: str) -> str:
    return " ".join(text.split())


class _HeadingPath:
    """The chain of open headings: a heading closes every open one at its level or deeper."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title))

    def __str__(self) -> str:
        return HEADING_SEPARATOR.join(title for _, title in self._open)


def _split_at_headings(items: Iterable[tuple[int, str] | str]) -> Iterator[Section]:
    """Group body lines into one Section per heading; ``(level, title)`` items are headings."""
    path = _HeadingPath()
    heading: str | None = None
    lines: list[str] = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
            continue
        if lines:
            yield Section("\n".join(lines), heading=heading)
            lines = []
        path.enter(*item)
        heading = str(path)
    if lines:
        yield Section("\n".join(lines), heading=heading)


def _load_pdf(data: bytes) -> Iterator[Section]:
    """One Section per page with text; a damaged page is passed over so the rest of the file still counts."""
    if b"%PDF-" not in data[:1024]:
        raise SkipFile("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise SkipFile("encrypted PDF (password protected)")
        pages = list(reader.pages)
    except DependencyError as error:
        raise SkipFile("encrypted PDF (AES, which needs the 'cryptography' package)") from error
    page_error: Exception | None = None
    found_text = False
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text()
        except DependencyError as error:
            raise SkipFile("encrypted PDF (AES, which needs the 'cryptography' package)") from error
        except Exception as error:
            page_error = page_error or error
            continue
        if text.strip():
            found_text = True
            yield Section(text, page=number)
    if not found_text:
        if page_error is not None:
            raise SkipFile(f"not a valid PDF ({short_reason(page_error, line='first', limit=120)})")
        raise SkipFile("no extractable text (a scanned PDF? OCR is not supported)")


def _load_docx(data: bytes) -> Iterator[Section]:
    """Body paragraphs and tables in document order, split at Title / Heading N paragraphs."""
    check_office_zip(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except ValueError as error:  # a valid package of another kind; the library's message names a BytesIO object
        raise SkipFile("not a Word document (another Office file type renamed .docx?)") from error

    def items() -> Iterator[tuple[int, str] | str]:
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                yield from _docx_table_rows(block)
                continue
            style = block.style.name if block.style is not None else ""
            match = _DOCX_HEADING.fullmatch(style or "")
            level = 0 if style == "Title" else int(match.group(1)) if match else None
            title = _collapse(block.text)
            if level is not None and title:
                yield level, title
            elif title:  # empty paragraphs are Word's spacing, not content
                yield block.text

    return _split_at_headings(items())


def _docx_table_rows(table: Table) -> Iterator[str]:
    for row in table.rows:
        grid = row.cells  # a horizontally merged cell appears once per grid column it spans
        texts = [_collapse(cell.text) for index, cell in enumerate(grid) if index == 0 or cell is not grid[index - 1]]
        if any(texts):
            yield " | ".join(texts)


def _load_pptx(data: bytes) -> Iterator[Section]:
    """One Section per slide: its text frames and tables (the title goes to ``heading``), then its notes."""
    check_office_zip(data)
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
    except ValueError as error:  # as for .docx: a valid package of another kind
        raise SkipFile("not a PowerPoint presentation (another Office file type renamed .pptx?)") from error
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = _collapse(title_shape.text_frame.text) if title_shape is not None else ""
        parts = [
            text
            for shape in _pptx_shapes(slide.shapes)
            if title_shape is None or shape.shape_id != title_shape.shape_id
            if (text := _pptx_shape_text(shape))
        ]
        if slide.has_notes_slide and (notes := slide.notes_slide.notes_text_frame) is not None:
            parts.append(notes.text)
        # python-pptx reports a soft line break inside a paragraph as a vertical tab.
        text = "\n".join(parts).replace("\v", "\n")
        yield Section(text, page=number, heading=title or None)


def _pptx_shapes(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    """Every shape, looking inside groups (without recursion: groups can nest arbitrarily)."""
    pending = list(shapes)[::-1]
    while pending:
        shape = pending.pop()
        if isinstance(shape, GroupShape):  # not shape_type: it raises for some autoshapes
            pending.extend(list(shape.shapes)[::-1])
        else:
            yield shape


def _pptx_shape_text(shape: BaseShape) -> str:
    # The classes, not has_text_frame/has_table: the same test, and it tells the type checker what the shape is.
    if isinstance(shape, Shape):  # every <p:sp> (text box, placeholder, autoshape) has a text frame
        return shape.text_frame.text
    if isinstance(shape, GraphicFrame) and shape.has_table:
        rows = (" | ".join(_collapse(cell.text) for cell in row.cells) for row in shape.table.rows)
        return "\n".join(row for row in rows if row.strip(" |"))
    return ""


def _load_html(data: bytes) -> Iterator[Section]:
    """Visible text as whitespace-collapsed blocks, split at h1-h6; the charset comes from BOM or <meta>."""
    if not any(data.startswith(bom) for bom, _ in _BOMS) and _looks_binary(data):
        raise SkipFile("binary data, not text")
    soup = BeautifulSoup(data, "lxml")
    for tag in soup(_HTML_DROPPED):
        tag.decompose()
    return _split_at_headings(_html_items(soup))


def _html_items(soup: BeautifulSoup) -> Iterator[tuple[int, str] | str]:
    """Walk the tree with an explicit stack: deeply nested markup must not hit the recursion limit."""
    pending: list[object] = [soup]
    line: list[str] = []

    def flush() -> Iterator[str]:
        if text := _collapse("".join(line)):
            yield text
        line.clear()

    while pending:
        node = pending.pop()
        if node is _END_OF_BLOCK:
            yield from flush()
        elif isinstance(node, PreformattedString):  # comments, doctype, CDATA, processing instructions
            continue
        elif isinstance(node, NavigableString):
            line.append(str(node))
        elif isinstance(node, Tag):
            if node.name in _HTML_HEADINGS:
                yield from flush()
                if title := _collapse(node.get_text()):
                    yield _HTML_HEADINGS[node.name], title
            elif node.name == "pre":
                yield from flush()
                yield node.get_text()
            else:
                if node.name in _HTML_BLOCKS:
                    yield from flush()
                    pending.append(_END_OF_BLOCK)
                elif node.name in _HTML_CELLS and "".join(line).strip():
                    line.append(" | ")
                pending.extend(reversed(node.contents))
    yield from flush()


def _load_markdown(data: bytes) -> Iterator[Section]:
    """Split at ATX headings; a '#' line inside a fenced code block is code, not a heading."""
    fence: str | None = None

    def items() -> Iterator[tuple[int, str] | str]:
        nonlocal fence
        for line in normalize(decode_text(data)).split("\n"):
            if opening := _MD_FENCE.match(line):
                marker = opening.group(1)
                if fence is None:
                    fence = marker
                elif marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip().strip(marker[0]):
                    fence = None
            elif fence is None and (heading := _MD_HEADING.fullmatch(line)):
                yield len(heading.group(1)), _md_title(heading.group(2))
                continue
            yield line

    return _split_at_headings(items())


def _md_title(text: str) -> str:
    """The title without a closing '#' run, which counts only after a space ("C#" keeps its '#')."""
    bare = text.rstrip("#")
    if bare != text and bare and bare[-1] in " \t":
        return bare.strip()
    return text.strip()


def _load_text(data: bytes) -> Iterator[Section]:
    yield Section(decode_text(data))


def _load_csv(data: bytes) -> Iterator[Section]:
    """Each row as "header: value; ...": a row keeps its column names once it is chunked apart from the header."""
    text = decode_text(data)
    header_line = text.split("\n", 1)[0]
    delimiter = max(",;\t|", key=header_line.count)  # ties go to the comma; ';' is common in European exports
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [_collapse(name) for name in next(rows, [])]
    lines = []
    # Names are looked up per value, never copied per row: a 1M-column header copied for every row of a
    # 4 MB file did not finish in 90 s.
    for row in rows:
        pairs = [
            f"{(header[index - 1] if index <= len(header) else '') or f'column {index}'}: {_collapse(value)}"
            for index, value in enumerate(row, start=1)
            if value.strip()
        ]
        if pairs:
            lines.append("; ".join(pairs))
    yield Section("\n".join(lines))


# By the type names of ``FORMATS``, which holds the suffixes.
_LOADERS: dict[str, Callable[[bytes], Iterable[Section]]] = {
    "PDF": _load_pdf,
    "Word document": _load_docx,
    "PowerPoint file": _load_pptx,
    "HTML file": _load_html,
    "Markdown file": _load_markdown,
    "text file": _load_text,
    "CSV file": _load_csv,
}
