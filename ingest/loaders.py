"""Turn one file into Sections, or refuse it with a reason a user understands.

A heading is metadata: ``Section.heading`` carries the heading path and the heading's own line is not
repeated in ``Section.text``. Only the body under it is, so a heading with no body yields no Section.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import docx
import pptx
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.styles.style import BaseStyle
from docx.table import Table
from docx.text.paragraph import Paragraph
from pptx.shapes.autoshape import Shape
from pptx.shapes.base import BaseShape
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from ingest.archives import check_office_zip
from ingest.documents import FORMATS, Section, SkipFile, TextCaps, unsupported
from rag.errors import short_reason

if TYPE_CHECKING:
    from PIL.Image import Image

    from rag.config import OcrSettings

SNIFF_BYTES = 8192
# A 600 dpi A4 scan is 35 megapixels; a decompression bomb declares gigapixels in a few KB.
MAX_IMAGE_PIXELS = 60_000_000
# Longer sides are scaled down before OCR: a 4000 px phone photo of a page is about 350 dpi already.
MAX_OCR_SIDE = 3500
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
# Signatures of files without a suffix: (bytes, offset, type). Kura's own types are then read as such.
# fmt: off
_MAGIC = (
    (b"%PDF-", 0, "PDF"), (b"\x89PNG\r\n\x1a\n", 0, "image"), (b"\xff\xd8\xff", 0, "image"),
    (b"II*\x00", 0, "image"), (b"MM\x00*", 0, "image"), (b"\x7fELF", 0, "an ELF executable"),
    (b"MZ", 0, "a Windows executable"), (b"PK\x03\x04", 0, "a zip archive"), (b"\x1f\x8b", 0, "gzip data"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"), (b"Rar!", 0, "a RAR archive"), (b"GIF8", 0, "a GIF image"),
    (b"SQLite format 3\x00", 0, "an SQLite database"), (b"ftyp", 4, "an MP4/HEIC media file"),
    (b"OggS", 0, "Ogg audio"), (b"ID3", 0, "MP3 audio"), (b"RIFF", 0, "a RIFF (WAV/AVI/WebP) file"),
    (b"\xd0\xcf\x11\xe0", 0, "a legacy Office (OLE) file"), (b"\xcf\xfa\xed\xfe", 0, "a Mach-O executable"),
)
# fmt: on
_END_OF_BLOCK = object()


@dataclass(frozen=True)
class Loaded:
    """A file's sections and, when some pages gave no text even with OCR, a note saying how many."""

    sections: list[Section]
    note: str | None = None


def load_file(path: Path, caps: TextCaps | None = None, ocr: OcrSettings | None = None) -> list[Section]:
    """The sections of ``path`` (see ``load_document``)."""
    return load_document(path, caps, ocr).sections


def load_document(path: Path, caps: TextCaps | None = None, ocr: OcrSettings | None = None) -> Loaded:
    """Parse ``path`` by its suffix (by its content when it has none); every problem with the file itself
    becomes a ``SkipFile``. ``ocr`` None or disabled: scanned pages and images are not read.

    Text beyond ``caps`` refuses the file as soon as a loader yields it, not after the whole file is read.

    Parser libraries raise a zoo of exception types for malformed input (zip, XML, PDF syntax, encoding,
    csv), so anything a format loader raises is reported as "not a valid <kind>" rather than crashing
    an ingest run that may hold thousands of other files.
    """
    if reason := unsupported(path.name):
        raise SkipFile(reason)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SkipFile(f"cannot read file ({error.strerror or error})") from error
    if not data:
        raise SkipFile("empty file")
    kind = FORMATS[path.suffix.lower()] if path.suffix else sniff_kind(data)
    pages = _PageCount()
    loader = _loader(kind, ocr if ocr is not None and ocr.enabled else None, pages)
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
            sections.append(Section(text, section.page, section.heading, section.boxes if text == section.text else ()))
    except (SkipFile, MemoryError):
        raise
    except Exception as error:
        raise SkipFile(f"not a valid {kind} ({short_reason(error, line='first', limit=120)})") from error
    if not sections:
        raise SkipFile(f"no text ({pages.note()})" if pages.empty else "no text")
    return Loaded(sections, pages.note() if pages.empty else None)


def sniff_kind(data: bytes) -> str:
    """The type of a file without a suffix: a known signature, else text when it decodes as text."""
    for magic, offset, kind in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if kind in _LOADERS:
                return kind
            raise SkipFile(f"unsupported type (no file extension; {kind})")
    try:
        decode_text(data[:SNIFF_BYTES])
    except SkipFile as error:
        raise SkipFile("unsupported type (no file extension; binary data, not text)") from error
    return "text file"


class _PageCount:
    """Pages (or images) a loader tried to read, and those that gave no text even with OCR."""

    def __init__(self) -> None:
        self.total = 0
        self.empty = 0

    def note(self) -> str:
        return f"{self.empty:,} of {self.total:,} {'page' if self.total == 1 else 'pages'} without text"


def _loader(kind: str, ocr: OcrSettings | None, pages: _PageCount) -> Callable[[bytes], Iterable[Section]]:
    if kind == "PDF":
        return lambda data: _load_pdf(data, ocr, pages)
    if kind == "image":
        return lambda data: _load_image(data, ocr, pages)
    return _LOADERS[kind]


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


def _load_pdf(data: bytes, ocr: OcrSettings | None, pages: _PageCount) -> Iterator[Section]:
    """One Section per page with text; a page without a text layer is OCR'd; a damaged page is passed over
    so the rest of the file still counts."""
    if b"%PDF-" not in data[:1024]:
        raise SkipFile("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise SkipFile("encrypted PDF (password protected)")
        all_pages = list(reader.pages)
    except DependencyError as error:
        raise SkipFile("encrypted PDF (AES, which needs the 'cryptography' package)") from error
    page_error: Exception | None = None
    texts: dict[int, str] = {}
    for number, page in enumerate(all_pages, start=1):
        try:
            texts[number] = page.extract_text()
        except DependencyError as error:
            raise SkipFile("encrypted PDF (AES, which needs the 'cryptography' package)") from error
        except Exception as error:
            page_error = page_error or error
    scanned = [number for number, text in texts.items() if not text.strip()]
    if not any(text.strip() for text in texts.values()) and page_error is not None:
        raise SkipFile(f"not a valid PDF ({short_reason(page_error, line='first', limit=120)})")
    pages.total = len(all_pages)
    if scanned and ocr is None:
        if len(scanned) == len(all_pages):
            raise SkipFile("no extractable text (a scanned PDF? OCR is off: ingest.ocr.enabled)")
        pages.empty = len(scanned)
    if scanned and ocr is not None and len(scanned) > ocr.max_pages:
        raise SkipFile(
            f"{len(scanned):,} pages without a text layer, more than {ocr.max_pages:,} to OCR "
            "(limit ingest.ocr.max_pages)"
        )
    ocr_pages = _pdf_page_images(data, scanned, ocr) if scanned and ocr is not None else iter(())
    for number, text in texts.items():
        if text.strip():
            yield Section(text, page=number)
            continue
        if ocr is None:
            continue
        image = next(ocr_pages)
        yield from _ocr_section(image, number, ocr, pages)


def _pdf_page_images(data: bytes, numbers: list[int], ocr: OcrSettings) -> Iterator[Image | None]:
    """The pages ``numbers`` rendered at ``ingest.ocr.dpi``, or None for a page with no ink at all.

    Each page is first rendered at 1/8 of the resolution: a blank page costs a thumbnail, not a full render
    (10,000 empty A4 pages with ``max_pages`` raised past them: 4.4 s in all, 120 MB peak).
    """
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        for number in numbers:
            page = document[number - 1]
            try:
                scale = ocr.dpi / 72
                thumbnail = page.render(scale=scale / 8, grayscale=True).to_pil()
                if not _has_ink(thumbnail):
                    yield None
                    continue
                yield page.render(scale=scale, grayscale=True).to_pil()
            finally:
                page.close()
    finally:
        document.close()


def _has_ink(image: Image) -> bool:
    """Anything darker than paper: a scan's blank page is near-white, with some noise."""
    low, _high = cast("tuple[int, int]", image.convert("L").getextrema())
    return low < 160


def _ocr_section(image: Image | None, page: int | None, ocr: OcrSettings, pages: _PageCount) -> Iterator[Section]:
    """One page's OCR'd text with its word boxes, or a count in ``pages`` when it gives none."""
    from ingest.ocr import layout, open_ocr

    if image is not None:
        engine = open_ocr(ocr)
        try:
            lines = engine.read_lines(image)
        except (SkipFile, MemoryError):
            raise
        except Exception as error:  # the engines' own errors: OpenVINO's allocation failures, Tesseract's exits
            where = f"page {page}" if page is not None else "the image"
            raise SkipFile(
                f"OCR ({engine.backend}) failed on {where} ({short_reason(error, line='first', limit=100)}); "
                "out of memory? raise ingest.parse_memory_mb"
            ) from error
        text = layout(lines, *image.size)
        if text.text.strip():
            yield Section(text.text, page=page, boxes=text.boxes)
            return
    pages.empty += 1


def _load_image(data: bytes, ocr: OcrSettings | None, pages: _PageCount) -> Iterator[Section]:
    """A photo or scan (PNG, JPEG, TIFF; each frame of a TIFF a page) as OCR'd text."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    if ocr is None:
        raise SkipFile("an image, and OCR is off (ingest.ocr.enabled)")
    bomb = f"more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels (a decompression bomb?)"
    with warnings.catch_warnings():  # Pillow warns from 89 megapixels; the check below says it in one line
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            image = PILImage.open(io.BytesIO(data))  # reads the header only: the size is known before any pixel
        except PILImage.DecompressionBombError as error:
            raise SkipFile(f"image of {bomb}") from error
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise SkipFile(f"image of {width:,} x {height:,} pixels, {bomb}")
    frames = getattr(image, "n_frames", 1)
    if frames > ocr.max_pages:
        raise SkipFile(f"{frames:,} frames, more than {ocr.max_pages:,} to OCR (limit ingest.ocr.max_pages)")
    pages.total = frames
    for frame in range(frames):
        image.seek(frame)
        page = ImageOps.exif_transpose(image).convert("L")  # a phone photo's EXIF says which way is up
        if max(page.size) > MAX_OCR_SIDE:
            page.thumbnail((MAX_OCR_SIDE, MAX_OCR_SIDE))
        yield from _ocr_section(page if _has_ink(page) else None, frame + 1 if frames > 1 else None, ocr, pages)


def _load_docx(data: bytes) -> Iterator[Section]:
    """Body paragraphs and tables in document order, split at Title / Heading N paragraphs."""
    check_office_zip(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except ValueError as error:  # a valid package of another kind; the library's message names a BytesIO object
        raise SkipFile("not a Word document (another Office file type renamed .docx?)") from error

    style_of = _docx_style_names(document)

    def items() -> Iterator[tuple[int, str] | str]:
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                yield from _docx_table_rows(block)
                continue
            style = style_of(block)
            match = _DOCX_HEADING.fullmatch(style or "")
            level = 0 if style == "Title" else int(match.group(1)) if match else None
            title = _collapse(block.text)
            if level is not None and title:
                yield level, title
            elif title:  # empty paragraphs are Word's spacing, not content
                yield block.text

    return _split_at_headings(items())


def _docx_style_names(document: DocxDocument) -> Callable[[Paragraph], str | None]:
    """``paragraph.style.name`` from a table built once: python-docx finds a paragraph without a style of its
    own by going through every style of the document, for each paragraph; that was 52 of 138 s parsing 125
    files of the large eval corpus (14 of them .docx), cProfile. Same rule: the first style with the id, if it
    is a paragraph style, else the default paragraph style."""
    first: dict[str, BaseStyle] = {}
    for style in document.styles:
        first.setdefault(style.style_id, style)
    names = {key: style.name for key, style in first.items() if style.type == WD_STYLE_TYPE.PARAGRAPH}
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    fallback = default.name if default is not None else ""

    def name(paragraph: Paragraph) -> str | None:
        style_id = paragraph._p.style
        return names.get(style_id, fallback) if style_id else fallback

    return name


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


def _load_xlsx(data: bytes) -> Iterator[Section]:
    """One Section per sheet, the sheet's name as heading, each row as "header: value; ..." (as for CSV)."""
    import openpyxl

    check_office_zip(data)
    try:  # read_only streams the rows: a sheet is never held whole
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (OSError, KeyError, zipfile.BadZipFile) as error:  # OSError: "no valid workbook part"
        raise SkipFile("not an Excel workbook (another file type renamed .xlsx?)") from error
    try:
        for sheet in workbook.worksheets:
            rows = ([_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True))
            if lines := list(_rows_with_header(row for row in rows if any(row))):
                yield Section("\n".join(lines), heading=sheet.title)
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _collapse(str(value))


def _rows_with_header(rows: Iterable[list[str]]) -> Iterator[str]:
    """The first row names the columns; each later row says "name: value" for its non-empty cells."""
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = row
            continue
        pairs = [
            f"{(header[index - 1] if index <= len(header) else '') or f'column {index}'}: {value}"
            for index, value in enumerate(row, start=1)
            if value
        ]
        yield "; ".join(pairs)


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def _load_odt(data: bytes) -> Iterator[Section]:
    """Headings (text:h with their outline level), paragraphs and table rows of content.xml, in order.

    The XML is read as a stream and each handled element freed: a large content.xml is never a whole tree.
    """
    from lxml import etree

    check_office_zip(data)
    package = zipfile.ZipFile(io.BytesIO(data))
    names = set(package.namelist())
    if "content.xml" not in names or (
        "mimetype" in names and package.read("mimetype").strip() != b"application/vnd.oasis.opendocument.text"
    ):
        raise SkipFile("not an OpenDocument text (another file type renamed .odt?)")

    def items() -> Iterator[tuple[int, str] | str]:
        tables = 0
        with package.open("content.xml") as content:
            for event, element in etree.iterparse(content, events=("start", "end"), resolve_entities=False):
                tag = element.tag
                if tag == f"{{{_ODF_TABLE}}}table":
                    tables += 1 if event == "start" else -1
                if event != "end":
                    continue
                if tag == f"{{{_ODF_TABLE}}}table-row":
                    cells = [_collapse("".join(cell.itertext())) for cell in element]
                    if any(cells):
                        yield " | ".join(cells)
                    element.clear()
                elif tables == 0 and tag in (f"{{{_ODF_TEXT}}}h", f"{{{_ODF_TEXT}}}p"):
                    text = "".join(element.itertext())
                    if tag.endswith("}h") and (title := _collapse(text)):
                        yield int(element.get(f"{{{_ODF_TEXT}}}outline-level", "1")), title
                    elif text.strip():
                        yield text
                    element.clear()

    return _split_at_headings(items())


# By the type names of ``FORMATS``, which holds the suffixes.
_LOADERS: dict[str, Callable[[bytes], Iterable[Section]]] = {
    "PDF": lambda data: _load_pdf(data, None, _PageCount()),  # sniffed PDFs and images go through ``_loader``
    "image": lambda data: _load_image(data, None, _PageCount()),
    "Word document": _load_docx,
    "PowerPoint file": _load_pptx,
    "HTML file": _load_html,
    "Markdown file": _load_markdown,
    "text file": _load_text,
    "CSV file": _load_csv,
    "Excel workbook": _load_xlsx,
    "OpenDocument text": _load_odt,
}
