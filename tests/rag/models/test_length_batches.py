"""Dynamic-shape batching: texts sorted by length into batches padded only to a small multiple."""

from __future__ import annotations

import random

from rag.models.embedder import length_batches


def test_every_text_lands_in_exactly_one_batch_that_holds_it() -> None:
    rng = random.Random(3)
    lengths = [rng.randint(1, 256) for _ in range(500)]
    batches = length_batches(lengths, max_tokens=2048, max_rows=64, multiple=8)
    placed = sorted(index for _, rows in batches for index in rows)
    assert placed == list(range(len(lengths)))
    for padded, rows in batches:
        assert padded % 8 == 0
        assert max(lengths[i] for i in rows) <= padded < max(lengths[i] for i in rows) + 8
        assert len(rows) * padded <= 2048 or len(rows) == 1
        assert len(rows) <= 64


def test_batches_run_shortest_first_and_padding_is_only_the_rounding_for_equal_lengths() -> None:
    lengths = [200, 10, 120, 10, 200, 120]
    batches = length_batches(lengths, max_tokens=10_000, max_rows=2, multiple=16)
    assert batches == [(16, [1, 3]), (128, [2, 5]), (208, [0, 4])]


def test_short_texts_share_wide_batches_long_ones_narrow_ones() -> None:
    lengths = [16] * 40 + [256] * 40
    batches = length_batches(lengths, max_tokens=1024, max_rows=64, multiple=16)
    rows_by_length = {padded: len(rows) for padded, rows in batches}
    assert rows_by_length == {16: 40, 256: 4}
    assert sum(len(rows) for padded, rows in batches if padded == 256) == 40


def test_a_text_longer_than_the_budget_still_runs_alone_and_an_empty_one_takes_one_step() -> None:
    assert length_batches([500, 0], max_tokens=256, max_rows=8, multiple=16) == [(16, [1]), (512, [0])]
    assert length_batches([], max_tokens=256, max_rows=8, multiple=16) == []
