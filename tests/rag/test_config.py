from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import load_settings
from rag.errors import ConfigError
from tests.conftest import REPO, run_kura


def test_repo_config_equals_defaults() -> None:
    from rag.config import Settings

    from_file = load_settings(REPO / "config.yaml").model_dump()
    assert from_file == Settings().model_dump()


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("llm:\n  device: NPU\n  max_new_tokens: 64\n")
    monkeypatch.setenv("KURA_LLM__DEVICE", "cpu")
    settings = load_settings(config)
    assert settings.llm.device == "CPU"
    assert settings.llm.max_new_tokens == 64


def test_relative_paths_resolve_against_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sub" / "c.yaml"
    config.parent.mkdir()
    config.write_text("paths:\n  models: m\n")
    assert load_settings(config).models_dir == (tmp_path / "sub" / "m").resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llm:\n  devize: GPU\n", "unknown config key 'llm.devize'; allowed here: preset, backend, source, device"),
        ("llm:\n  device: TPU\n", "config key 'llm.device' (got 'TPU'): must be NPU, GPU or CPU"),
        ("llm:\n  weight_format: int3\n", "Input should be 'int4', 'int8' or 'fp16'"),
        ("embedder:\n  buckets: [128, 512]\n", "buckets must each be at most max_length (256)"),
        ("ingest:\n  chunk_size: 50\n  chunk_overlap: 60\n", "chunk_overlap must be smaller than chunk_size"),
        ("colour: blue\n", "unknown config key 'colour'; allowed here: paths, embedder, llm"),
        ("llm: [\n", "is not valid YAML at line"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURA_LLM__TEMPERATURE", "hot")
    with pytest.raises(ConfigError, match="environment variable KURA_LLM__TEMPERATURE"):
        load_settings(REPO / "config.yaml")


@pytest.mark.parametrize("command", [["doctor"], ["models", "prepare"]])
def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("embedder:\n  batch_size: 0\n")
    result = run_kura(*command, "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: config key 'embedder.batch_size' (got 0): Input should be greater than or equal to 1 [{config}]"
    ]
    assert "Traceback" not in result.stderr


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = run_kura("doctor", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_preset_fills_keys_the_user_did_not_set(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("llm:\n  preset: deepseek-r1-distill-qwen-1.5b\n  weight_format: int8\n")
    llm = load_settings(config).llm
    assert llm.source == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert llm.thinking_budget == 1024 and llm.weight_format == "int8"
    config.write_text("llm:\n  preset: gpt-9\n")
    with pytest.raises(ConfigError, match=r"unknown preset 'gpt-9'; known: deepseek-r1-distill-qwen-1\.5b"):
        load_settings(config)
