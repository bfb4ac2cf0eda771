"""Split sections into chunks measured in the embedder's own tokens, so every chunk fits its static shape.

A chunk is embedded with its heading in front (retrieval then knows which part of the document a
passage is from), so the heading's tokens are taken out of the chunk's budget: nothing is ever cut
by the encoder's truncation.
"""

from __future__ import annotations

from collections.abc import Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.documents import Chunk, CountTokens, Section
from ingest.ocr import chunk_boxes

# No "" (character level) at the end: the splitter then counted the tokens of every single character, about
# 75 us a character (200 KB without whitespace: 25 s). A piece no separator can split goes to ``_hard_split``.
SEPARATORS = ["\n\n", "\n", ". ", "。", "; ", ", ", " "]


def _hard_split(text: str, count: CountTokens, limit: int) -> list[str]:
    """Cut text the splitter could not (no separators at all) into pieces of at most ``limit`` tokens.

    A cut is scaled by how far its count is over the limit, and the next piece starts from a window a
    little longer than the last: a piece then takes about two counts of its own length. (Counting a
    window of ``limit * 32`` characters for every piece made 200 KB of "kura." cost 1.3 s a 32 KB.)
    """
    widest = limit * 32  # no token spans more characters than this
    pieces: list[str] = []
    start = 0
    window = widest
    while start < len(text):
        cut = min(len(text) - start, window)
        while cut > 1 and (tokens := count(text[start : start + cut])) > limit:
            cut = max(1, min(cut - 1, cut * limit // tokens))
        pieces.append(text[start : start + cut])
        start += cut
        window = min(widest, cut + cut // 4 + 8)
    return pieces


def _remembered(count: CountTokens, special: int) -> CountTokens:
    """``count`` without the special tokens, tokenizing each distinct text once: the splitter counts every split
    when it checks its length and again when it merges splits into chunks. Made per section, so it holds at most
    a page's pieces. (125 files of the large eval: 96,858 counts, 36 of 138 s of parsing and chunking, cProfile.)"""
    known: dict[str, int] = {}

    def remembered(text: str) -> int:
        tokens = known.get(text)
        if tokens is None:
            tokens = known[text] = count(text) - special
        return tokens

    return remembered


def chunk_sections(
    sections: Iterable[Section], measure: CountTokens, chunk_size: int, overlap: int, max_tokens: int
) -> list[Chunk]:
    """Chunks in document order. ``measure`` counts special tokens too; ``max_tokens`` is the encoder's limit."""
    chunks: list[Chunk] = []
    special = measure("")
    for section in sections:
        length = _remembered(measure, special)
        heading = section.heading
        if heading and length(heading) > max_tokens // 4:
            heading = heading[-120:]  # the innermost headings say the most
        heading_cost = length(heading + "\n") if heading else 0
        budget = max(8, min(chunk_size, max_tokens - special - heading_cost))
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=budget,
            chunk_overlap=min(overlap, budget // 2),
            length_function=length,
            separators=SEPARATORS,
            keep_separator="end",
        )
        cursor = 0
        for piece in splitter.split_text(section.text):
            parts = [piece.strip()]
            if length(parts[0]) > budget:
                parts = _hard_split(parts[0], length, budget)
            for part in parts:
                if text := part.strip():
                    boxes = None
                    if section.boxes:  # OCR'd: the chunk keeps the boxes of its own words
                        start = section.text.find(text, cursor)
                        cursor = max(start, cursor)
                        boxes = chunk_boxes(section.boxes, start, start + len(text)) if start >= 0 else None
                    chunks.append(Chunk(text, section.page, heading, len(chunks), boxes))
    return chunks
