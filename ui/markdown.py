"""Markdown from documents and the model to HTML that carries no markup of its own.

Answers, evidence sentences and chunks are Markdown often enough (``**Bitwarden**``, lists, code) that
showing them raw reads as noise, but they come from users' files and a model's output, so the rendering
is the CommonMark subset that cannot smuggle anything in: raw HTML stays text, images show their alt
text (an image would be a request leaving the machine), and a link is a link only to an absolute
http(s) address, opened in a new tab; any other link (``javascript:``, ``data:``, a path) stays text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Turns one escaped run of plain text into HTML: the web UI makes each "[1]" of an answer a citation button.
TextLinker = Callable[[str], str]


# Highlights (issue 17) travel through the Markdown parser as private-use characters: mark k opens with
# U+E000+k and closes with U+E400+k. Text is cleared of that range before marks go in, so a document cannot
# forge one, and any left where no text run carries them (code) are removed from the HTML.
_OPEN, _CLOSE, MAX_MARKS = 0xE000, 0xE400, 0x400
_SENTINEL = re.compile("([\ue000-\ue7ff])")
_DELIMITERS = "*_~`"


@dataclass(frozen=True)
class Mark:
    """A highlighted range of a text: ``text[start:end]`` is wrapped in ``open``/``close`` (again in each run of
    text it spans, so the HTML stays well-formed across emphasis and links); ``after`` follows its end once."""

    start: int
    end: int
    open: str
    close: str
    after: str = ""


def clean(text: str) -> str:
    """``text`` without the characters that carry marks: what offsets for :func:`with_marks` are taken in."""
    return _SENTINEL.sub("", text)


def with_marks(text: str, marks: Sequence[Mark]) -> str:
    """``clean`` text with each mark's sentinels inserted (at most ``MAX_MARKS``); a close sorts before an open
    at the same offset, so touching marks do not nest."""
    inserts = []
    for k, mark in enumerate(marks[:MAX_MARKS]):
        start, end = _inside_delimiters(text, mark.start, mark.end)
        inserts += [(end, 0, chr(_CLOSE + k)), (start, 1, chr(_OPEN + k))]
    inserts.sort()
    out, position = [], 0
    for offset, _, sentinel in inserts:
        out += [text[position:offset], sentinel]
        position = offset
    return "".join([*out, text[position:]])


def _inside_delimiters(text: str, start: int, end: int) -> tuple[int, int]:
    """A range moved inside the emphasis and code delimiters at its ends: a sentinel between "**" and the
    word it opens would stop the "**" from counting as emphasis (CommonMark's flanking rules)."""
    while start < end and text[start] in _DELIMITERS:
        start += 1
    while end > start and text[end - 1] in _DELIMITERS:
        end -= 1
    return start, end


class Highlighter:
    """Turns the sentinels of one rendering's text runs into the marks' HTML: a mark left open at the end of a
    run is closed there and opened again at the start of the next one."""

    def __init__(self, marks: Sequence[Mark]) -> None:
        self.marks = marks
        self.open: list[int] = []

    def __call__(self, escaped: str) -> str:
        out = [self.marks[k].open for k in self.open]
        for piece in _SENTINEL.split(escaped):
            code = ord(piece) if len(piece) == 1 else -1
            if _OPEN <= code < _CLOSE and code - _OPEN < len(self.marks):
                self.open.append(code - _OPEN)
                out.append(self.marks[code - _OPEN].open)
            elif _CLOSE <= code < _CLOSE + MAX_MARKS and code - _CLOSE in self.open:
                out.append(self._close(code - _CLOSE))
            elif not _SENTINEL.fullmatch(piece):
                out.append(piece)
        out += [self.marks[k].close for k in reversed(self.open)]
        return "".join(out)

    def _close(self, k: int) -> str:
        """Close mark ``k`` and those opened inside it, then reopen those: marks may overlap without nesting."""
        inner = self.open[self.open.index(k) + 1 :]
        self.open = self.open[: self.open.index(k)]
        closing = [self.marks[j].close for j in reversed(inner)] + [self.marks[k].close, self.marks[k].after]
        self.open += inner
        return "".join(closing + [self.marks[j].open for j in inner])


class _SafeMarkdown(MarkdownIt):
    """markdown-it-py asks ``validateLink`` about every link and image destination before using it."""

    def validateLink(self, url: str) -> bool:
        return url.lower().startswith(("http://", "https://"))


def _text(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """Plain text runs only: code spans and blocks never reach here, so ``[1]`` in code stays code."""
    escaped = escape(tokens[idx].content)
    linker: TextLinker | None = env.get("citations")
    linked = linker(escaped) if linker else escaped
    marks: Highlighter | None = env.get("marks")
    return marks(linked) if marks else linked


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    return escape(self.renderInlineAsText(tokens[idx].children or [], options, env))


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    return str(self.renderToken(tokens, idx, options, env))


def _parser() -> MarkdownIt:
    # breaks: a single newline stays a line break, as it was when chunks were shown as preformatted text.
    md = _SafeMarkdown("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    md.add_render_rule("text", _text)
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _parser()


def block(text: str, citations: TextLinker | None = None, marks: Sequence[Mark] = ()) -> str:
    """A whole answer or chunk: paragraphs, lists, code blocks, tables; ``marks`` highlight ranges of ``text``."""
    if not marks:
        return str(_MD.render(clean(text), {"citations": citations}))
    rendered = _MD.render(with_marks(clean(text), marks), {"citations": citations, "marks": Highlighter(marks)})
    return clean(str(rendered))


def plain(text: str, marks: Sequence[Mark] = ()) -> str:
    """Text that is not Markdown (a text file, a slide, a web page's text), escaped, with ``marks``."""
    return clean(Highlighter(marks)(escape(with_marks(clean(text), marks))))


def inline(text: str, citations: TextLinker | None = None) -> str:
    """One sentence inside Kura's own markup (an evidence list item): emphasis, code and links only."""
    return str(_MD.renderInline(clean(text), {"citations": citations}))
