"""``kura bench ingest``: Kura and the notebook pipeline on one tiny folder, and the table and floor they make.

The real run loads both embedders (Kura's, and sentence-transformers' OpenVINO backend, exported at load:
about 25 s on a loaded 2-core machine), so it is marked slow; the table and the floor are judged from a
results dictionary alone. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag.bench import ingest
from rag.bench.report import floors, ingest_table
from rag.bench.timing import Plan
from rag.config import Settings

TEXT = (
    "The heating in building B is serviced every October. Report a cold radiator to the facilities desk, "
    "room 0.14, or call extension 4410. "
)


def _side(seconds: float, chunks: int) -> dict[str, Any]:
    figure = {"median": seconds, "min": seconds, "max": seconds, "runs": [seconds]}
    return {
        "files": 2, "skipped": 1, "chunks": chunks, "tokens": 10 * chunks, "seconds": figure,
        "files_per_s": {**figure, "median": 2 / seconds}, "chunks_per_s": {**figure, "median": chunks / seconds},
        "tokens_per_s": {**figure, "median": 10 * chunks / seconds}, "embed_share": {**figure, "median": 0.5},
        "padding_share": 0.25, "peak_rss_mb": 700.0,
    }  # fmt: skip


def test_the_table_and_the_floor_come_from_the_results_alone() -> None:
    data = {
        "path": "/docs",
        "runs": 1,
        "engines": {ingest.KURA: _side(10.0, 40), ingest.BASELINE: _side(40.0, 60)},
        "wall_ratio_vs_baseline": 0.25,
    }
    columns, rows = ingest_table(data)
    assert rows[0][columns.index("× baseline")] == "0.25×"
    assert rows[0][columns.index("padding share")] == "25.0%"
    found = [f for f in floors({"ingest": data}) if f.name.startswith("ingest")]
    assert [(f.measured, f.met) for f in found] == [("0.25×", True)]
    data["wall_ratio_vs_baseline"] = 0.5
    assert [f.met for f in floors({"ingest": data}) if f.name.startswith("ingest")] == [False]


def test_a_failed_baseline_is_a_row_and_no_floor() -> None:
    data = {
        "path": "/docs",
        "runs": 1,
        "engines": {ingest.KURA: _side(10.0, 40), ingest.BASELINE: {"error": "ImportError: no optimum"}},
        "wall_ratio_vs_baseline": None,
    }
    _, rows = ingest_table(data)
    assert rows[1][1] == "failed"
    assert not [f for f in floors({"ingest": data}) if f.name.startswith("ingest")]


@pytest.mark.slow
def test_both_pipelines_ingest_the_same_files(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "heating.md").write_text("# Heating\n\n" + TEXT * 12)
    (tmp_path / "notes.txt").write_text(TEXT * 3)
    (tmp_path / "tool.bin").write_bytes(b"\0\1\2")
    said: list[str] = []
    data = ingest.run(settings, Plan.make(quick=True), said.append, tmp_path)
    assert len(said) == 2 and data["wall_ratio_vs_baseline"] > 0
    for name, side in data["engines"].items():
        assert (side["files"], side["skipped"]) == (2, 1), name
        assert side["chunks"] > 2 and side["tokens"] > side["chunks"], name
        assert 0 <= side["padding_share"] < 1 and 0 < side["embed_share"]["median"] < 1, name
        assert side["peak_rss_mb"] > 0, name
