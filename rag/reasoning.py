"""Separate a reasoning model's ``<think>…</think>`` text from its answer, while the reply streams.

Reasoning models (DeepSeek-R1 distills and the like) write their chain of thought between tags before
the answer. The UI shows it folded away, and it must never reach the chat history or the question
condensation, so it is split off here, piece by piece, as the LLM adapter yields text.

Tags may arrive split across pieces (``"<thi"`` + ``"nk>"``), so the splitter holds back only the
shortest tail that could still grow into a tag; everything else is emitted at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

Kind = Literal["reasoning", "answer"]


@dataclass
class Piece:
    """A run of text that is all reasoning or all answer."""

    kind: Kind
    text: str


class ThinkSplitter:
    """Incrementally split streamed text into reasoning and answer pieces.

    Rules:

    * Text between an open and a close tag is reasoning; all blocks are concatenated.
    * Other text is answer. Leading whitespace of the answer is dropped at the start of the stream and
      right after a close tag, so ``"<think>…</think>\\n\\nAnswer"`` gives ``"Answer"``.
    * ``starts_in_think=True``: the chat template already wrote the open tag, so the stream begins inside
      a block (DeepSeek-R1 style).
    * A bare close tag before any tag was seen means the model started inside a block without saying so:
      everything before it becomes reasoning. Text already returned from :meth:`feed` as answer cannot be
      taken back, so :attr:`reasoning` and :attr:`answer` are corrected and :attr:`reclassified` is set;
      a UI should then re-render from those properties. Pieces of the same :meth:`feed` call are relabelled
      before they are returned.
    * Tags that change nothing (an open tag inside a block, a close tag in the answer after a block) are
      dropped: no tag text ever reaches the output.

    Apart from the dropped whitespace, the emitted piece texts joined together always equal the input
    with the tags removed.
    """

    def __init__(self, starts_in_think: bool = False, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG) -> None:
        if not open_tag or not close_tag or open_tag == close_tag:
            raise ValueError("open_tag and close_tag must be non-empty and different")
        self._open = open_tag
        self._close = close_tag
        self._in_think = starts_in_think
        # Once a tag was seen (or the template opened one), a close tag can no longer reclassify text.
        self._seen_tag = starts_in_think
        self._strip_answer = True
        self._pending = ""
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self._reclassified = False
        self._finished = False

    @property
    def reasoning(self) -> str:
        """All reasoning so far, blocks concatenated."""
        return "".join(self._reasoning)

    @property
    def answer(self) -> str:
        """All answer text so far."""
        return "".join(self._answer)

    @property
    def in_think(self) -> bool:
        """Whether the stream is currently inside a think block (for a "thinking…" indicator)."""
        return self._in_think

    @property
    def unclosed(self) -> bool:
        """The stream ended (:meth:`finish` was called) inside a think block, e.g. the token budget ran out."""
        return self._finished and self._in_think

    @property
    def reclassified(self) -> bool:
        """A bare close tag turned answer text that :meth:`feed` had already returned into reasoning."""
        return self._reclassified

    def feed(self, text: str) -> list[Piece]:
        """Consume the next streamed piece; return the pieces that are now certain."""
        if self._finished:
            raise RuntimeError("feed() called after finish()")
        out: list[Piece] = []
        buffer = self._pending + text
        while True:
            position, tag = self._next_tag(buffer)
            if tag is None:
                break
            self._emit(buffer[:position], out)
            self._on_tag(tag, out)
            buffer = buffer[position + len(tag) :]
        keep = self._partial_tag_length(buffer)
        self._emit(buffer[: len(buffer) - keep], out)
        self._pending = buffer[len(buffer) - keep :]
        return out

    def finish(self) -> list[Piece]:
        """End of stream: a held-back partial tag was only text after all, so emit it."""
        if self._finished:
            return []
        out: list[Piece] = []
        self._emit(self._pending, out)
        self._pending = ""
        self._finished = True
        return out

    def _next_tag(self, buffer: str) -> tuple[int, str | None]:
        found = [(i, -len(tag), tag) for tag in (self._open, self._close) if (i := buffer.find(tag)) >= 0]
        if not found:
            return -1, None
        position, _, tag = min(found)  # earliest; the longer tag wins a tie
        return position, tag

    def _partial_tag_length(self, buffer: str) -> int:
        """Length of the longest tail of ``buffer`` that is a proper prefix of a tag."""
        longest = max(len(self._open), len(self._close)) - 1
        for size in range(min(longest, len(buffer)), 0, -1):
            tail = buffer[-size:]
            if any(tag.startswith(tail) and size < len(tag) for tag in (self._open, self._close)):
                return size
        return 0

    def _on_tag(self, tag: str, out: list[Piece]) -> None:
        if tag == self._open:
            self._in_think = True
        elif self._in_think:
            self._in_think = False
            self._strip_answer = True
        elif not self._seen_tag:
            self._reclassify(out)
        self._seen_tag = True

    def _reclassify(self, out: list[Piece]) -> None:
        """A bare close tag: the answer so far was reasoning all along."""
        returned_before = sum(map(len, self._answer)) - sum(len(p.text) for p in out)
        if returned_before > 0:
            self._reclassified = True
        # No tag was seen yet, so there is no earlier reasoning to keep in front of this.
        self._reasoning = [*self._answer]
        self._answer = []
        for piece in out:
            piece.kind = "reasoning"
        self._strip_answer = True

    def _emit(self, text: str, out: list[Piece]) -> None:
        kind: Kind = "reasoning" if self._in_think else "answer"
        if kind == "answer" and self._strip_answer:
            text = text.lstrip()
            if text:
                self._strip_answer = False
        if not text:
            return
        (self._reasoning if kind == "reasoning" else self._answer).append(text)
        if out and out[-1].kind == kind:
            out[-1].text += text
        else:
            out.append(Piece(kind, text))


def strip_reasoning(
    text: str, *, starts_in_think: bool = False, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG
) -> str:
    """The answer part of a complete reply: think blocks, and an unclosed block, removed.

    Used so that chat history fed back to the model, and question condensation, never contain
    reasoning. Same rules as :class:`ThinkSplitter`, so a stored reply and a streamed one agree.
    """
    splitter = ThinkSplitter(starts_in_think, open_tag, close_tag)
    splitter.feed(text)
    splitter.finish()
    return splitter.answer
