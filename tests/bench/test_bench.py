"""``kura bench --quick`` end to end: every section runs against the session's converted models.

A smoke test, not a measurement: it checks that each benchmark produces positive numbers in the
JSON (so a broken engine or a renamed field is caught), and asserts no timing at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from tests.conftest import run_kura

pytestmark = pytest.mark.slow


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and value > 0


@pytest.fixture(scope="module")
def quick_run(settings: Settings, config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = run_kura("bench", "all", "--quick", "--json", str(out), "--config", str(config_file))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "floors" in result.stdout
    return dict(json.loads(out.read_text()))


def test_every_section_is_there(quick_run: dict[str, Any]) -> None:
    for section in ("meta", "machine", "limits", "embed", "llm", "retrieve", "e2e", "ingest", "floors"):
        assert section in quick_run, section
    assert quick_run["meta"]["quick"] is True
    assert quick_run["meta"]["failed"] == []
    assert _positive(quick_run["limits"]["peak_gflops"]) and _positive(quick_run["limits"]["copy_bandwidth_gbs"])


def test_embed(quick_run: dict[str, Any]) -> None:
    variants = quick_run["embed"]["variants"]
    assert "sentence-transformers" in variants and len(variants) >= 3
    for info in variants.values():
        assert _positive(info["chunks_per_s"]["median"])
        assert _positive(info["cosine_vs_torch"]["min"])
        assert 0 <= info["hit_at_1"] <= 1


def test_llm(quick_run: dict[str, Any]) -> None:
    engines = quick_run["llm"]["engines"]
    assert {"Kura openvino-genai int4", "llama.cpp", "transformers (PyTorch fp32)"} <= set(engines)
    for info in engines.values():
        assert _positive(info["ttft_ms"]["median"]) and _positive(info["decode_tokens_per_s"]["median"])
        assert info["generated_tokens"] == [quick_run["meta"]["plan"]["new_tokens"]] * len(info["generated_tokens"])
    lookup = quick_run["llm"]["prompt_lookup"]
    assert _positive(lookup["off"]["answer_tokens_per_s"]["median"])
    assert any(_positive(v["answer_tokens_per_s"]["median"]) for k, v in lookup.items() if k.startswith("k="))


def test_retrieve(quick_run: dict[str, Any]) -> None:
    data = quick_run["retrieve"]
    for backend in ("embedded", "server"):
        for size in data["sizes"]:
            entry = data["backends"][backend][str(size)]
            assert entry["count"] == size
            assert _positive(entry["p50_ms"]["median"]) and _positive(entry["p95_ms"]["median"])


def test_e2e_and_ingest(quick_run: dict[str, Any]) -> None:
    e2e = quick_run["e2e"]
    assert _positive(e2e["first_answer_token_ms"]["median"]) and _positive(e2e["total_ms"]["median"])
    for levels in e2e["concurrency"].values():
        assert {"1", "2", "4"} <= set(levels)
        assert all(_positive(level["aggregate_tokens_per_s"]["median"]) for level in levels.values())
    ingest = quick_run["ingest"]
    assert _positive(ingest["wall_ratio_vs_baseline"])
    for side in ingest["engines"].values():
        assert side["files"] == 11 and _positive(side["chunks_per_s"]["median"])
        assert 0 < side["embed_share"]["median"] <= 1


def test_saved_run_renders_as_markdown(quick_run: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(quick_run))
    out = tmp_path / "bench.md"
    result = run_kura("bench", "--from-json", str(saved), "--markdown", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert "| variant | exec | chunks/s |" in text and "**floors**" in text
    assert text.count("| Kura openvino-genai int4 |") == 1


def test_a_file_that_is_no_saved_run_is_one_line(tmp_path: Path) -> None:
    saved = tmp_path / "other.json"
    saved.write_text("{}")
    result = run_kura("bench", "--from-json", str(saved))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {saved} is not a saved `kura bench --json` run (no 'meta' section)"
    ]
