"""Markdown from documents and the model to HTML that carries no markup of its own.

Answers, evidence sentences and chunks are Markdown often enough (``**Bitwarden**``, lists, code) that
showing them raw reads as noise, but they come from users' files and a model's output, so the rendering
is the CommonMark subset that cannot smuggle anything in: raw HTML stays text, images show their alt
text (an image would be a request leaving the machine), and a link is a link only to an absolute
http(s) address, opened in a new tab; any other link (``javascript:``, ``data:``, a path) stays text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Turns one escaped run of plain text into HTML: the web UI makes each "[1]" of an answer a citation button.
TextLinker = Callable[[str], str]


class _SafeMarkdown(MarkdownIt):
    """markdown-it-py asks ``validateLink`` about every link and image destination before using it."""

    def validateLink(self, url: str) -> bool:
        return url.lower().startswith(("http://", "https://"))


def _text(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """Plain text runs only: code spans and blocks never reach here, so ``[1]`` in code stays code."""
    escaped = escape(tokens[idx].content)
    linker: TextLinker | None = env.get("citations")
    return linker(escaped) if linker else escaped


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


def block(text: str, citations: TextLinker | None = None) -> str:
    """A whole answer or chunk: paragraphs, lists, code blocks, tables."""
    return str(_MD.render(text, {"citations": citations}))


def inline(text: str, citations: TextLinker | None = None) -> str:
    """One sentence inside Kura's own markup (an evidence list item): emphasis, code and links only."""
    return str(_MD.renderInline(text, {"citations": citations}))
