"""A Chroma server or model server that is not there, through the real CLI: one ``error:`` line, no traceback,
and a user and password in the configured URL appear in nothing the command prints. Each run loads the
embedder, so only these two; the handling itself (a server killed mid-ingest, the web upload's staged copy, the
key over plain http, the page header, footers and `kura doctor`'s device line) is tests/rag/test_transport.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_kura
from tests.helpers import free_port
from tests.reliability.helpers import one_error_line, private_config

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SECRET = "hunter2"


def test_chroma_server_down_during_ingest(settings: Any, tmp_path: Path) -> None:
    port = free_port()
    config = private_config(tmp_path / "kura", settings, vectorstore={"url": f"http://kura:{SECRET}@127.0.0.1:{port}"})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nThe loading dock opens at seven.\n")
    result = run_kura("ingest", str(docs), "--config", str(config))
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"error: cannot reach the Chroma server at http://127.0.0.1:{port} (connection refused); "
        "is `chroma run` running there?"
    )
    assert SECRET not in result.stdout + result.stderr


def test_model_server_down_during_ask(sample_settings: Any, settings: Any, tmp_path: Path) -> None:
    port = free_port()
    shutil.copytree(sample_settings.paths.store, tmp_path / "kura" / "store")
    # auto: the model is asked (extract, the default, never calls it)
    llm = {"backend": "openai", "base_url": f"http://kura:{SECRET}@127.0.0.1:{port}/v1", "answer_mode": "auto"}
    config = private_config(tmp_path / "kura", settings, vectorstore={"collection": "sample"}, llm=llm)
    result = run_kura("ask", "When does the loading dock open?", "--config", str(config))
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"error: cannot reach the model server at http://127.0.0.1:{port}/v1 (connection refused); "
        "is it running? (llm.base_url)"
    )
    assert SECRET not in result.stdout + result.stderr
