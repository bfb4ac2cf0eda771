"""Session-wide real parts: the bundled models are converted once, under the network guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.config import Settings, load_settings
from rag.offline import apply_offline_environment

REPO = Path(__file__).resolve().parents[1]
KURA = str(Path(sys.executable).with_name("kura"))
NETGUARD = Path(__file__).with_name("netguard")

apply_offline_environment()


def write_config(folder: Path, **sections: dict[str, Any]) -> Path:
    """A config file under ``folder`` whose data paths all live in ``folder`` too."""
    data: dict[str, Any] = yaml.safe_load((REPO / "config.yaml").read_text())
    data["paths"] = {"models": str(folder / "models"), "store": str(folder / "store"), "uploads": str(folder / "up")}
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_kura(
    *args: str, guard_log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real ``kura`` command; with ``guard_log``, every non-loopback connection is recorded."""
    child_env = {**os.environ, **(env or {})}
    if guard_log is not None:
        child_env["PYTHONPATH"] = os.pathsep.join([str(NETGUARD), child_env.get("PYTHONPATH", "")])
        child_env["KURA_NETGUARD_LOG"] = str(guard_log)
    return subprocess.run([KURA, *args], capture_output=True, text=True, env=child_env, timeout=1200)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kura")


@pytest.fixture(scope="session")
def config_file(workdir: Path) -> Path:
    return write_config(workdir)


@pytest.fixture(scope="session")
def prepare_run(config_file: Path, workdir: Path) -> dict[str, Any]:
    """``kura models prepare`` on an empty models folder: the real first-run conversion."""
    guard_log = workdir / "netguard-prepare.log"
    result = run_kura("models", "prepare", "--json", "--config", str(config_file), guard_log=guard_log)
    assert result.returncode == 0, result.stderr
    return {"models": json.loads(result.stdout), "stderr": result.stderr, "guard_log": guard_log}


@pytest.fixture(scope="session")
def settings(config_file: Path, prepare_run: dict[str, Any]) -> Settings:
    return load_settings(config_file)


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Iterator[Any]:
    from rag.models.factory import load_embedder

    yield load_embedder(settings)


@pytest.fixture(scope="session")
def llm(settings: Settings) -> Iterator[Any]:
    from rag.models.factory import load_llm

    yield load_llm(settings)


SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="session")
def sample_settings(settings: Settings, embedder: Any, workdir: Path) -> Settings:
    """The sample corpus ingested once into its own collection, for the answer and UI tests."""
    from ingest.collection import Collection

    custom = settings.model_copy(deep=True)
    custom.paths.store = workdir / "sample-store"
    custom.vectorstore.collection = "sample"
    report = Collection(custom).ingest([SAMPLE], embedder)
    assert report.counts()["added"] == 11, report.to_dict()
    return custom


class RecordingLLM:
    """The real LLM, with every prompt it is sent recorded (to check what reached the model)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.calls: list[list[dict[str, str]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)

    def stream(self, messages: list[dict[str, str]], options: Any) -> Iterator[str]:
        self.calls.append(messages)
        return self.llm.stream(messages, options)
