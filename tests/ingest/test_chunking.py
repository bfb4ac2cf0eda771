"""Chunks measured in the embedder's tokens: each one, heading included, fits the encoder; none is cut."""

from __future__ import annotations

from ingest.chunking import Chunk, _hard_split, chunk_sections
from ingest.documents import Section
from tests.fakes import HashEmbedder

WORDS = " ".join(f"word{i}" for i in range(100))


def words(chunk: Chunk) -> list[str]:
    return chunk.text.split()


def test_embedding_text_puts_the_heading_first() -> None:
    assert Chunk("The body.", 2, "Guide > Setup", 0).embedding_text() == "Guide > Setup\nThe body."
    assert Chunk("The body.", None, None, 0).embedding_text() == "The body."


def test_chunks_keep_size_and_overlap_in_tokens() -> None:
    count = HashEmbedder().count_tokens  # one token a word, plus two special tokens
    chunks = chunk_sections([Section(WORDS, page=3, heading="Guide > Setup")], count, 20, 4, 32)
    assert [c.index for c in chunks] == list(range(6))
    assert {(c.page, c.heading) for c in chunks} == {(3, "Guide > Setup")}
    assert words(chunks[0]) == [f"word{i}" for i in range(20)]
    assert words(chunks[1])[:4] == ["word16", "word17", "word18", "word19"]  # the overlap
    assert words(chunks[-1])[-1] == "word99"
    assert all(count(c.embedding_text()) <= 32 for c in chunks)


def test_the_heading_is_taken_out_of_the_budget() -> None:
    count = HashEmbedder().count_tokens
    # 16 tokens for the encoder: 2 special, 4 for "A B C D" and its newline, so 10 words of text
    chunks = chunk_sections([Section(WORDS, heading="A B C D")], count, 20, 0, 16)
    assert [len(words(c)) for c in chunks] == [10] * 10
    assert max(count(c.embedding_text()) for c in chunks) == 16


def test_a_heading_longer_than_a_quarter_of_the_encoder_keeps_its_innermost_part() -> None:
    heading = " > ".join(f"Chapter {i}" for i in range(40))
    chunks = chunk_sections([Section("Short body text.", heading=heading)], HashEmbedder().count_tokens, 200, 0, 256)
    assert [c.heading for c in chunks] == [heading[-120:]]
    assert chunks[0].heading and chunks[0].heading.endswith("Chapter 39")


def test_index_runs_on_across_sections_and_blank_sections_give_nothing() -> None:
    sections = [Section("First page text.", page=1), Section("   \n ", page=2), Section("Third page text.", page=3)]
    chunks = chunk_sections(sections, HashEmbedder().count_tokens, 20, 4, 32)
    assert [(c.index, c.page, c.text) for c in chunks] == [(0, 1, "First page text."), (1, 3, "Third page text.")]


def test_hard_split_cuts_text_without_separators_into_pieces_that_fit() -> None:
    text = "x" * 100
    pieces = _hard_split(text, len, 30)
    assert "".join(pieces) == text
    assert all(0 < len(piece) <= 30 for piece in pieces)
    assert len(pieces) == 4
