from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from rag.packing import PackResult, pack_sources, truncate_to_tokens


@dataclass(frozen=True)
class Chunk:
    id: int
    text: str


def words(text: str) -> int:
    return len(text.split())


def chars4(text: str) -> int:
    return math.ceil(len(text) / 4)


def chunk(i: int, n_words: int) -> Chunk:
    return Chunk(i, " ".join(f"w{i}_{k}" for k in range(n_words)))


def pack(chunks: list[Chunk], window: int, reserved: int = 0, fixed: int = 0, **kwargs: int) -> PackResult[Chunk]:
    return pack_sources(chunks, lambda c: c.text, words, window, reserved, fixed, **kwargs)


def test_everything_fits() -> None:
    chunks = [chunk(0, 10), chunk(1, 20)]
    result = pack(chunks, window=100, reserved=20, fixed=10, per_source_overhead=2)
    assert result.chunks == chunks
    assert result.texts == [c.text for c in chunks]
    assert result.dropped == 0
    assert result.prompt_tokens == 10 + 12 + 22
    assert not result.truncated


def test_first_misfit_is_truncated_and_rest_dropped() -> None:
    chunks = [chunk(0, 30), chunk(1, 100), chunk(2, 5)]
    # budget 100 - 10 - 0 = 90; first costs 32; 58 left, 56 for the text of the second
    result = pack(chunks, window=100, reserved=10, per_source_overhead=2, min_truncated_tokens=10)
    assert [c.id for c in result.chunks] == [0, 1]
    assert result.texts[0] == chunks[0].text
    assert result.texts[1] == " ".join(chunks[1].text.split()[:56])
    assert result.dropped == 1
    assert result.truncated
    assert result.prompt_tokens == 90


def test_later_small_chunk_is_not_used_out_of_rank_order() -> None:
    chunks = [chunk(0, 50), chunk(1, 3)]
    result = pack(chunks, window=40, per_source_overhead=0, min_truncated_tokens=100)
    assert result.chunks == []
    assert result.dropped == 2


def test_too_little_room_means_drop_not_truncate() -> None:
    chunks = [chunk(0, 10), chunk(1, 100)]
    result = pack(chunks, window=70, per_source_overhead=2, min_truncated_tokens=48)
    # 70 - 12 = 58 left, 56 for text: enough
    assert len(result.chunks) == 2
    result = pack(chunks, window=61, per_source_overhead=2, min_truncated_tokens=48)
    # 61 - 12 = 49 left, 47 for text: not enough
    assert [c.id for c in result.chunks] == [0]
    assert result.dropped == 1
    assert not result.truncated
    assert result.prompt_tokens == 12


@pytest.mark.parametrize(("window", "reserved", "fixed"), [(100, 100, 0), (100, 60, 40), (100, 80, 50), (0, 0, 0)])
def test_no_budget_keeps_nothing(window: int, reserved: int, fixed: int) -> None:
    result = pack([chunk(0, 1)], window=window, reserved=reserved, fixed=fixed, per_source_overhead=0)
    assert result.chunks == []
    assert result.texts == []
    assert result.dropped == 1
    assert result.prompt_tokens == fixed


def test_empty_input() -> None:
    result = pack([], window=100)
    assert (result.chunks, result.texts, result.dropped, result.prompt_tokens) == ([], [], 0, 0)


def test_truncation_cuts_at_a_word_boundary() -> None:
    text = "alpha beta gamma delta epsilon"
    short = truncate_to_tokens(text, 3, chars4)  # 12 characters at most: "alpha beta g"
    assert short == "alpha beta"
    assert text.startswith(short)


def test_truncation_without_spaces_cuts_between_characters() -> None:
    assert truncate_to_tokens("x" * 100, 3, chars4) == "x" * 12


def test_truncation_returns_empty_when_nothing_fits() -> None:
    assert truncate_to_tokens("hello world", 0, words) == ""
    assert truncate_to_tokens("hello", 1, lambda t: 2 if t else 0) == ""


def test_truncation_keeps_whole_text_that_fits() -> None:
    assert truncate_to_tokens("a b c", 3, words) == "a b c"


def test_truncation_checks_what_it_returns() -> None:
    # A tokenizer that is not monotone: the word-boundary cut "ab" costs more than the longer "ab c".
    def odd(text: str) -> int:
        return len(text) + (100 if text == "ab" else 0)

    assert truncate_to_tokens("ab cd", 4, odd) == "ab c"


def test_generic_over_chunk_type() -> None:
    result = pack_sources(["one two", "three"], str, words, 100, 0, 0)
    assert result.chunks == ["one two", "three"]


def test_negative_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        pack([chunk(0, 1)], window=100, per_source_overhead=-1)


def test_random_sizes_never_exceed_the_budget() -> None:
    rng = random.Random(20240607)
    truncations = drops = 0
    for case in range(500):
        chunks = [chunk(i, rng.randint(0, 120)) for i in range(rng.randint(0, 10))]
        window = rng.randint(0, 1200)
        reserved = rng.randint(0, 400)
        fixed = rng.randint(0, 300)
        overhead = rng.randint(0, 20)
        minimum = rng.randint(0, 60)
        result = pack(chunks, window, reserved, fixed, per_source_overhead=overhead, min_truncated_tokens=minimum)
        budget = window - reserved - fixed
        used = sum(words(t) + overhead for t in result.texts)
        context = (case, window, reserved, fixed, overhead, minimum, [words(c.text) for c in chunks])

        assert result.prompt_tokens == fixed + used, context
        assert used <= max(budget, 0), context
        kept = len(result.chunks)
        assert result.chunks == chunks[:kept], context
        assert len(result.texts) == kept and result.dropped == len(chunks) - kept, context
        assert result.texts[:-1] == [c.text for c in chunks[: max(kept - 1, 0)]], context
        if kept:
            last, original = result.texts[-1], chunks[kept - 1].text
            assert original.startswith(last), context
            assert result.truncated == (last != original), context
            if result.truncated:
                # Cut exactly to the room left, at a word boundary, never to nothing.
                assert last, context
                assert words(last) == budget - (used - words(last)), context
                assert last.split() == original.split()[: words(last)], context
                truncations += 1
        if kept < len(chunks) and not result.truncated and budget > 0:
            # The first chunk left out did not fit, and there was not enough room to shorten it.
            room = budget - used
            assert words(chunks[kept].text) + overhead > room, context
            assert room - overhead < max(minimum, 1), context
            drops += 1
    assert truncations > 20 and drops > 20  # the cases exercise both paths
