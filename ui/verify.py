"""The verify view (issue 17): a citation opens the page itself, with the cited sentences highlighted.

PDF pages are images from the page renderer (:mod:`rag.pages`) with the evidence drawn over them as boxes
taken from the page's own text positions; every other format is shown as its text, the sentences marked.
Three routes on Kura's FastAPI app serve a document's page images, its text view and the original file, each
behind the same access check as the page's handlers: a login (401 without one, once users exist) and the
collection's access rules (403). A request names a collection and a document id, never a path: the path
comes from the collection's manifest, so nothing outside the collection's documents can be served.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ingest.collection import Collection, StoredFile, document_id
from ingest.documents import FORMATS, Section, SkipFile, TextCaps
from ingest.loaders import load_file
from rag.audit import AuditLog
from rag.config import COLLECTION_NAME, Settings
from rag.errors import KuraError
from rag.pages import Box, FileVersion, FileVersions, PageRenderer, PageWord, is_image, load_pages, ocr_words
from rag.spans import locate, text_words
from rag.store import connect
from rag.users import can_access
from ui import markdown, render

ROUTE = "/kura/docs"
DOC_ID = re.compile(r"[0-9a-f]{16}")
MARK = re.compile(r"(hl|ctx)\.(\d{1,6})\.(\d{1,9})\.(\d{1,9})")
MAX_MARKS = 32
# A text view longer than this shows only the sections around its marks: 300,000 characters made a 1.1 MB
# fragment that the browser laid out in about a second.
TEXT_VIEW_CHARS = 300_000
NEAR_SECTIONS = 3
PARSED_FILES = 16  # parsed documents kept for their text views
ZOOMS = (50, 75, 100, 125, 150, 200, 300)


@dataclass(frozen=True)
class Opened:
    """A document a user may see, at the version the collection holds."""

    collection: str
    doc_id: str
    stored: StoredFile
    version: FileVersion

    @property
    def paged(self) -> bool:
        """Shown as page images: a PDF, or a photo or scan ingested by OCR."""
        return self.stored.path.suffix.lower() == ".pdf" or is_image(self.stored.path)

    def url(self, what: str, **query: Any) -> str:
        base = f"{ROUTE}/{quote(self.collection)}/{self.doc_id}/{what}"
        return f"{base}?{urlencode(query, doseq=True)}" if query else base


@dataclass(frozen=True)
class TextMark:
    """A highlighted range of one section of a text view: ``hl`` a cited sentence, ``ctx`` its passage."""

    kind: str
    section: int
    start: int
    end: int

    def param(self) -> str:
        return f"{self.kind}.{self.section}.{self.start}.{self.end}"


class Refused(Exception):
    """Why a document cannot be shown: an HTTP status and one line for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Verifier:
    """Opens documents for one user, and serves them: shared by the page's handlers and the routes."""

    def __init__(
        self, settings: Settings, login: bool, pages: PageRenderer | None = None, audit: AuditLog | None = None
    ) -> None:
        self.settings = settings
        self.login = login
        self.audit = audit
        self.pages = pages or load_pages(settings)
        self.versions = FileVersions()
        self._parsed: OrderedDict[str, list[Section]] = OrderedDict()
        self._lock = threading.Lock()

    # --- access -------------------------------------------------------------------------------------
    def open(self, user: str | None, collection: str, doc_id: str) -> Opened:
        """The document if ``user`` may see its collection and it is there, unchanged since it was ingested."""
        if not re.fullmatch(COLLECTION_NAME, collection) or not can_access(self.settings, user, collection):
            raise Refused(403, f"no collection named '{collection}' that you may use")
        if collection not in connect(self.settings).names():
            raise Refused(403, f"no collection named '{collection}' that you may use")
        stored = Collection(self.settings, collection).stored_file(doc_id) if DOC_ID.fullmatch(doc_id) else None
        if stored is None:
            raise Refused(404, f"no such document in '{collection}'")
        if stored.path.is_symlink() or not stored.path.is_file():
            raise Refused(404, f"{stored.rel} is no longer on this server's disk")
        version = self.versions.of(stored.path)
        if version.sha256 != stored.sha256:
            raise Refused(409, f"{stored.rel} has changed since it was ingested: ingest it again to verify")
        return Opened(collection, doc_id, stored, version)

    def request_user(self, request: Request) -> str | None:
        """The logged-in user of a request to a route: Gradio's login cookie looked up in Kura's sessions."""
        if not self.login:
            return None
        from ui.guards import gradio_app

        inner = gradio_app(request.app)
        cookies, cookie = request.cookies, inner.cookie_id
        token = cookies.get(f"access-token-{cookie}") or cookies.get(f"access-token-unsecure-{cookie}")
        user = inner.tokens.get(token) if token else None
        if user is None:
            raise Refused(401, "log in to Kura first")
        return str(user)

    # --- the routes ---------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        """Page images, text views and downloads; plain ``def`` routes, so rendering runs off the event loop."""
        router = APIRouter()

        @router.get(ROUTE + "/{collection}/{doc_id}/pages/{page}.png")
        def page_image(request: Request, collection: str, doc_id: str, page: int) -> Response:
            opened = self._opened(request, collection, doc_id)
            if not opened.paged:
                raise HTTPException(404, "only PDFs and images have page images")
            try:
                image = self.pages.render(opened.version, page)
            except KuraError as exc:
                raise HTTPException(404, str(exc)) from None
            return Response(image, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})

        @router.get(ROUTE + "/{collection}/{doc_id}/text")
        def text_view(
            request: Request, collection: str, doc_id: str, mark: Annotated[list[str] | None, Query()] = None
        ) -> HTMLResponse:
            opened = self._opened(request, collection, doc_id)
            try:
                sections = self.sections(opened)
            except KuraError as exc:
                raise HTTPException(404, str(exc)) from None
            return HTMLResponse(text_view_html(opened, sections, parse_marks(mark or [])))

        @router.get(ROUTE + "/{collection}/{doc_id}/file")
        def download(request: Request, collection: str, doc_id: str) -> FileResponse:
            opened = self._opened(request, collection, doc_id)
            self._audit("download", request, opened)
            return FileResponse(
                opened.stored.path,
                media_type="application/octet-stream",  # never shown inline: an uploaded .html runs no script here
                filename=Path(opened.stored.rel).name,
                content_disposition_type="attachment",
            )

        return router

    def _audit(self, event: str, request: Request, opened: Opened) -> None:
        """A whole document leaving the server is what a security review asks about (page images, fetched
        on every zoom, are not logged: the question that cited them is)."""
        if self.audit is not None:
            user = self.request_user(request)
            self.audit.record(event, user=user, via="web", collection=opened.collection, file=opened.stored.rel)

    def _opened(self, request: Request, collection: str, doc_id: str) -> Opened:
        try:
            return self.open(self.request_user(request), collection, doc_id)
        except Refused as refused:
            raise HTTPException(refused.status, str(refused)) from None

    # --- text views ---------------------------------------------------------------------------------
    def sections(self, opened: Opened) -> list[Section]:
        """The document's sections as the loader reads them (cached per version), cleared of mark characters."""
        key = opened.version.sha256
        with self._lock:
            if key in self._parsed:
                self._parsed.move_to_end(key)
                return self._parsed[key]
        ingest = self.settings.ingest
        try:
            loaded = load_file(opened.stored.path, TextCaps(ingest.max_chars_per_file, ingest.max_chars_per_page))
        except SkipFile as exc:
            raise KuraError(f"{opened.stored.rel} cannot be shown ({exc})") from None
        sections = [Section(markdown.clean(s.text), s.page, s.heading) for s in loaded]
        with self._lock:
            self._parsed[key] = sections
            while len(self._parsed) > PARSED_FILES:
                self._parsed.popitem(last=False)
        return sections

    # --- the source panel ---------------------------------------------------------------------------
    def panel(self, user: str | None, collection: str, source: dict[str, Any], strong: Sequence[str]) -> str:
        """The source panel for one source: its page with ``strong`` (the cited sentences) highlighted."""
        head = render.source_head(source)
        try:
            opened = self.open(user, collection, document_id(str(source.get("file", ""))))
            view = self._page_view(opened, source, strong) if opened.paged else self._text_view(opened, source, strong)
        except (Refused, KuraError) as exc:
            return f'{head}<div class="kura-note">{escape(str(exc))}</div>{snippet(source)}</div>'
        return head + view + "</div>"

    def _page_view(self, opened: Opened, source: dict[str, Any], strong: Sequence[str]) -> str:
        pages = self.pages.page_count(opened.version)
        page = min(max(int(source.get("page") or 1), 1), pages)
        scanned = self._scanned_words(opened.collection, source)
        found = self.pages.highlight(opened.version, page, [str(source.get("text", "")), *strong], scanned)
        boxes = [("kura-ctx", box) for box in found[0]] + [("kura-hl", box) for boxes in found[1:] for box in boxes]
        return page_view_html(opened, page, pages, boxes) + snippet(source)

    def _scanned_words(self, collection: str, source: dict[str, Any]) -> list[PageWord]:
        """The cited chunk's OCR word boxes (chunk metadata ``ocr_boxes``), if ingest read its page by OCR."""
        chunk = str(source.get("id") or "")
        found = connect(self.settings).open(collection).with_vectors([chunk]) if chunk else []
        boxes = found[0].metadata.get("ocr_boxes") if found else None
        return ocr_words(found[0].text, boxes) if isinstance(boxes, str) else []

    def _text_view(self, opened: Opened, source: dict[str, Any], strong: Sequence[str]) -> str:
        marks = text_marks(self.sections(opened), source, strong)
        url = opened.url("text", mark=[m.param() for m in marks])
        return (
            toolbar(opened, None, None)
            + f'<div class="kura-textview" data-src="{escape(url)}" tabindex="0">loading the document…</div>'
            + snippet(source)
        )


# --- HTML ---------------------------------------------------------------------------------------------
def snippet(source: dict[str, Any]) -> str:
    """The chunk's own text, as the answer saw it, folded away under the document's view."""
    return f"<details><summary>The passage as extracted</summary>{render.snippet(source)}</details>"


def toolbar(opened: Opened, page: int | None, pages: int | None) -> str:
    """Previous/next page and zoom for a page view; the download of the original file for every view."""
    download = (
        f'<a class="kura-download" href="{escape(opened.url("file"))}" download>Download '
        f"{escape(Path(opened.stored.rel).name)}</a>"
    )
    if page is None:
        return f'<div class="kura-toolbar">{download}</div>'
    return (
        '<div class="kura-toolbar">'
        '<button type="button" class="kura-prev" title="Previous page">‹</button>'
        f'<span class="kura-pageno">page {page} of {pages}</span>'
        '<button type="button" class="kura-next" title="Next page">›</button>'
        '<button type="button" class="kura-zoom-out" title="Zoom out">−</button>'
        '<span class="kura-zoom">100%</span>'
        '<button type="button" class="kura-zoom-in" title="Zoom in">+</button>'
        f"{download}</div>"
    )


def _box_style(box: Box) -> str:
    return (
        f"left:{box.left * 100:.3f}%;top:{box.top * 100:.3f}%;"
        f"width:{(box.right - box.left) * 100:.3f}%;height:{(box.bottom - box.top) * 100:.3f}%"
    )


def page_view_html(opened: Opened, page: int, pages: int, boxes: Iterable[tuple[str, Box]]) -> str:
    """The page image with the highlight boxes over it, positioned in percent so they follow the zoom."""
    base = opened.url("pages/")
    drawn = "".join(
        f'<div class="kura-box {kind}" data-page="{page}" style="{_box_style(box)}"></div>' for kind, box in boxes
    )
    name = escape(Path(opened.stored.rel).name)
    return (
        toolbar(opened, page, pages)
        + f'<div class="kura-pageview" data-base="{escape(base)}" data-page="{page}" data-pages="{pages}" '
        f'data-cited="{page}" data-zoom="100" data-zooms="{",".join(map(str, ZOOMS))}">'
        f'<div class="kura-page"><img class="kura-page-img" src="{escape(base)}{page}.png" '
        f'alt="page {page} of {name}">{drawn}</div></div>'
    )


def _section_order(sections: Sequence[Section], source: dict[str, Any]) -> list[int]:
    """Sections to search for a source's passage: those on its page and under its heading first."""

    def rank(index: int) -> int:
        section = sections[index]
        return (section.page != source.get("page")) + (section.heading != source.get("heading"))

    return sorted(range(len(sections)), key=rank)


def _find(sections: Sequence[Section], order: Sequence[int], text: str) -> tuple[int, int, int] | None:
    """(section, start, end) of ``text`` in the first section of ``order`` that holds it."""
    for index in order:
        words = text_words(sections[index].text)
        span = locate(text, words)
        if span is not None:
            return index, words[span[0]].start, words[span[1]].end
    return None


def text_marks(sections: Sequence[Section], source: dict[str, Any], strong: Sequence[str]) -> list[TextMark]:
    """Where the source's passage (``ctx``) and the cited sentences (``hl``) are in the document's text."""
    order = _section_order(sections, source)
    marks: list[TextMark] = []
    passage = _find(sections, order, str(source.get("text", "")))
    if passage is not None:
        marks.append(TextMark("ctx", *passage))
        order = [passage[0], *(i for i in order if i != passage[0])]
    for sentence in strong:
        if (found := _find(sections, order, sentence)) is not None:
            marks.append(TextMark("hl", *found))
    return marks


def parse_marks(values: Iterable[str]) -> list[TextMark]:
    """Marks from a request; anything not of the form ``kind.section.start.end`` is ignored."""
    marks = []
    for value in list(values)[:MAX_MARKS]:
        if found := MARK.fullmatch(value):
            marks.append(TextMark(found[1], int(found[2]), int(found[3]), int(found[4])))
    return marks


def _shown_sections(sections: Sequence[Section], marks: Sequence[TextMark]) -> list[int]:
    if sum(len(s.text) for s in sections) <= TEXT_VIEW_CHARS:
        return list(range(len(sections)))
    marked = {m.section for m in marks} or {0}
    return [i for i in range(len(sections)) if any(abs(i - m) <= NEAR_SECTIONS for m in marked)]


def _section_title(section: Section, slides: bool) -> str:
    where = f"Slide {section.page}" if slides and section.page is not None else ""
    heading = (section.heading or "").split(" > ")[-1]  # the innermost heading: the path is in the panel's details
    return " · ".join(part for part in (where, heading) if part)


def text_view_html(opened: Opened, sections: Sequence[Section], marks: Sequence[TextMark]) -> str:
    """The document as text, each section under its heading, the marks highlighted (``<mark>``)."""
    kind = FORMATS.get(opened.stored.path.suffix.lower(), "")
    slides = kind == "PowerPoint file"
    shown = _shown_sections(sections, marks)
    parts = ['<div class="kura-doc">']
    if len(shown) < len(sections):
        parts.append(
            f'<div class="kura-note">{len(sections) - len(shown)} sections far from the passage not shown; '
            "download the file to read it all.</div>"
        )
    for index in shown:
        section = sections[index]
        spans = [
            markdown.Mark(m.start, min(m.end, len(section.text)), f'<mark class="kura-{m.kind}">', "</mark>")
            for m in marks
            if m.section == index and m.start < m.end
        ]
        spans.sort(key=lambda m: m.open != '<mark class="kura-ctx">')  # the passage opens before its sentences
        body = (
            markdown.block(section.text, marks=spans)
            if kind == "Markdown file"
            else f'<div class="kura-plain">{markdown.plain(section.text, spans)}</div>'
        )
        title = _section_title(section, slides)
        head = f'<div class="kura-sec-head">{escape(title)}</div>' if title else ""
        parts.append(f'<section class="kura-sec kura-md" data-section="{index}">{head}{body}</section>')
    parts.append("</div>")
    return "".join(parts)
