"""The page renderer adapter: a document's pages as images, and the boxes of sentences on them.

:func:`load_pages` picks the backend (``verify.backend``; ``pdfium`` is the one today). The renderer knows
pages, words and boxes; which sentences to highlight is the caller's business. Highlights are computed from
a page's words with their boxes (:class:`PageWord`): the PDF's own text layer gives them, and a scanned
page, which has none, the OCR word boxes stored with its chunks (:func:`ocr_words`).

Everything is cached per file version (its content hash), so a changed file is never shown from an older
rendering, and the same page asked for again costs a dictionary lookup.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rag.config import Settings
from rag.errors import KuraError
from rag.spans import locate

T = TypeVar("T")
# Two word boxes are on one line when their vertical overlap is at least this share of the shorter one.
SAME_LINE = 0.5
# PNG at zlib level 1: on the sample PDF's page 1 at scale 2, 31 ms and 304 KB against 56 ms and 348 KB at
# the default level 6, for the same pixels.
PNG_LEVEL = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # ingest.documents.FORMATS' images (OCR'd)
# An image's page is shown at most this many pixels wide or high: an A4 scan at 300 dpi is 2,480 x 3,508.
MAX_IMAGE_SIDE = 1600


@dataclass(frozen=True)
class Box:
    """A rectangle on a page, as fractions of the page's width and height from its top-left corner."""

    left: float
    top: float
    right: float
    bottom: float

    def union(self, other: Box) -> Box:
        return Box(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def same_line(self, other: Box) -> bool:
        overlap = min(self.bottom, other.bottom) - max(self.top, other.top)
        return overlap >= SAME_LINE * min(self.bottom - self.top, other.bottom - other.top)


@dataclass(frozen=True)
class PageWord:
    """One word on a page and its box: from the PDF's text layer, or from OCR."""

    text: str
    box: Box


@dataclass(frozen=True)
class FileVersion:
    """A file and the SHA-256 of its content: what every cache entry is keyed by."""

    path: Path
    sha256: str


def line_boxes(sentence: str, words: Sequence[PageWord]) -> list[Box]:
    """The boxes covering ``sentence`` on a page: one per line it runs over; none when it is not there."""
    span = locate(sentence, words)
    if span is None:
        return []
    lines: list[Box] = []
    for word in words[span[0] : span[1] + 1]:
        if lines and lines[-1].same_line(word.box):
            lines[-1] = lines[-1].union(word.box)
        else:
            lines.append(word.box)
    return lines


def ocr_words(text: str, boxes: str) -> list[PageWord]:
    """The words of an OCR'd chunk from its ``ocr_boxes`` metadata (issue 16): JSON
    ``[[offset, length, left, top, right, bottom], ...]``, offsets into the chunk's text and boxes in
    thousandths of the page. Anything malformed gives no words (the page is then shown without boxes)."""
    try:
        rows = json.loads(boxes)
        return [
            PageWord(text[offset : offset + length], Box(left / 1000, top / 1000, right / 1000, bottom / 1000))
            for offset, length, left, top, right, bottom in rows
        ]
    except (ValueError, TypeError):
        return []


class FileVersions:
    """A file's content hash, computed once per (size, mtime, inode): a request never re-reads a big file."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int, int], str] = {}
        self._lock = threading.Lock()

    def of(self, path: Path) -> FileVersion:
        info = path.stat()
        stamp = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
        with self._lock:
            known = self._known.get(stamp)
        if known is None:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            known = digest.hexdigest()
            with self._lock:
                self._known[stamp] = known
        return FileVersion(path, known)


class _Cache:
    """Least recently used entries up to a byte budget; ``size`` tells what an entry weighs."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], T], size: Callable[[T], int]) -> T:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
        value = make()
        weight = size(value)
        with self._lock:
            if key not in self._entries and weight <= self.budget:
                self._entries[key] = (value, weight)
                self._used += weight
                while self._used > self.budget:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._used -= dropped
        return value


def is_image(path: Path) -> bool:
    """A photo or scan ingested by OCR: its pages are its frames, its words only the OCR's."""
    return path.suffix.lower() in IMAGE_SUFFIXES


class PdfiumPages:
    """PDF pages through pdfium (``pypdfium2``): rendered to PNG, and their words with boxes. Photos and scans
    ingested as images are shown the same way, frame by frame, through Pillow.

    pdfium is not thread-safe, so every call into it holds one lock; a page renders in about 80 ms.
    """

    backend = "pdfium"

    def __init__(self, scale: float, cache_mb: int) -> None:
        import pypdfium2

        self._pdfium = pypdfium2
        self.scale = scale
        self._cache = _Cache(cache_mb * 1024 * 1024)
        self._lock = threading.Lock()

    def page_count(self, version: FileVersion) -> int:
        count = self._frames if is_image(version.path) else lambda v: self._with_document(v, len)
        return self._cache.get(("pages", version.sha256), lambda: count(version), lambda _: 64)

    def render(self, version: FileVersion, page: int) -> bytes:
        """Page ``page`` (from 1) as a PNG at ``scale`` (2: 1,191 px wide for A4)."""
        draw = self._render_image if is_image(version.path) else self._render
        return self._cache.get(("png", version.sha256, page, self.scale), lambda: draw(version, page), len)

    def words(self, version: FileVersion, page: int) -> list[PageWord]:
        """The words of the page's text layer, in reading order, each with its box (an image has none)."""
        if is_image(version.path):
            return []
        return self._cache.get(
            ("words", version.sha256, page), lambda: self._words(version, page), lambda found: 200 + 100 * len(found)
        )

    def highlight(
        self, version: FileVersion, page: int, sentences: Iterable[str], scanned: Sequence[PageWord] = ()
    ) -> list[list[Box]]:
        """For each sentence, the boxes covering it on the page (an empty list when it is not found there).

        ``scanned``: the page's words as OCR read them, used when the page has no text layer (a scan).
        """
        words = self.words(version, page) or list(scanned)
        return [line_boxes(sentence, words) for sentence in sentences]

    # --- images -------------------------------------------------------------------------------------
    def _open_image(self, version: FileVersion) -> Any:
        from PIL import Image

        try:
            return Image.open(version.path)
        except (OSError, Image.DecompressionBombError) as exc:
            raise KuraError(f"cannot open {version.path.name} as an image ({exc})") from None

    def _frames(self, version: FileVersion) -> int:
        with self._open_image(version) as image:
            return int(getattr(image, "n_frames", 1))

    def _render_image(self, version: FileVersion, page: int) -> bytes:
        """Frame ``page`` upright (as OCR read it: EXIF orientation applied), at most ``MAX_IMAGE_SIDE`` px."""
        from PIL import ImageOps

        with self._open_image(version) as image:
            frames = int(getattr(image, "n_frames", 1))
            if not 1 <= page <= frames:
                raise KuraError(f"no page {page}: the image has {frames}")
            image.seek(page - 1)
            upright = ImageOps.exif_transpose(image).convert("RGB")
        upright.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        out = io.BytesIO()
        upright.save(out, "PNG", compress_level=PNG_LEVEL)
        return out.getvalue()

    # --- pdfium ---------------------------------------------------------------------------------------
    def _with_document(self, version: FileVersion, use: Callable[[Any], T]) -> T:
        with self._lock:
            try:
                document = self._pdfium.PdfDocument(str(version.path))
            except self._pdfium.PdfiumError as exc:
                raise KuraError(f"cannot open {version.path.name} as a PDF ({exc})") from None
            try:
                return use(document)
            finally:
                document.close()

    def _page(self, document: Any, page: int) -> Any:
        if not 1 <= page <= len(document):
            raise KuraError(f"no page {page}: the document has {len(document)}")
        return document[page - 1]

    def _render(self, version: FileVersion, page: int) -> bytes:
        def draw(document: Any) -> bytes:
            image = self._page(document, page).render(scale=self.scale).to_pil()
            out = io.BytesIO()
            image.save(out, "PNG", compress_level=PNG_LEVEL)
            return out.getvalue()

        return self._with_document(version, draw)

    def _words(self, version: FileVersion, page: int) -> list[PageWord]:
        def read(document: Any) -> list[PageWord]:
            pdf_page = self._page(document, page)
            left, bottom, right, top = pdf_page.get_bbox()
            width, height = (right - left) or 1.0, (top - bottom) or 1.0
            textpage = pdf_page.get_textpage()
            raw = self._pdfium.raw
            words: list[PageWord] = []
            letters: list[str] = []
            box: Box | None = None
            for index in range(textpage.count_chars()):
                char = chr(raw.FPDFText_GetUnicode(textpage, index))
                if char.isspace() or not char.isprintable():
                    if letters and box is not None:
                        words.append(PageWord("".join(letters), box))
                    letters, box = [], None
                    continue
                x0, y0, x1, y1 = textpage.get_charbox(index, loose=True)
                here = Box((x0 - left) / width, (top - y1) / height, (x1 - left) / width, (top - y0) / height)
                letters.append(char)
                box = here if box is None else box.union(here)
            if letters and box is not None:
                words.append(PageWord("".join(letters), box))
            return words

        return self._with_document(version, read)


class PageRenderer(Protocol):
    """What the web app needs of a renderer, whichever backend draws the pages."""

    backend: str

    def page_count(self, version: FileVersion) -> int: ...

    def render(self, version: FileVersion, page: int) -> bytes: ...

    def words(self, version: FileVersion, page: int) -> list[PageWord]: ...

    def highlight(
        self, version: FileVersion, page: int, sentences: Iterable[str], scanned: Sequence[PageWord] = ()
    ) -> list[list[Box]]: ...


def load_pages(settings: Settings) -> PageRenderer:
    """The configured page renderer; its library is imported only here, with a hint when it is missing."""
    verify = settings.verify
    if verify.backend == "pdfium":
        try:
            return PdfiumPages(verify.scale, verify.cache_mb)
        except ImportError:
            raise KuraError("verify.backend 'pdfium' needs the pypdfium2 package: pip install pypdfium2") from None
    raise KuraError(f"verify.backend '{verify.backend}' is not supported; use 'pdfium'")
