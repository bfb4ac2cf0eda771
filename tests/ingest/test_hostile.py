"""A folder of bad files next to good ones: the run completes, every bad file is skipped with its
reason, and the store holds exactly the good files' chunks."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from ingest.collection import Collection
from rag.config import Settings
from rag.store import open_store
from tests.conftest import run_kura, write_config
from tests.helpers import build_hostile

pytestmark = pytest.mark.slow


def test_hostile_folder(settings: Settings, embedder: Any, tmp_path: Path) -> None:
    custom = settings.model_copy(deep=True)
    custom.paths.store = tmp_path / "store"
    custom.ingest.max_file_mb = 1
    good = build_hostile(tmp_path / "docs", tmp_path / "outside.txt")
    report = Collection(custom).ingest([tmp_path / "docs"], embedder)
    outcomes = {f.rel: f for f in report.files}
    skipped = {rel: f.reason for rel, f in outcomes.items() if f.status == "skipped"}
    # The parser library's own words follow the loader's; only the loader's part is Kura's promise.
    assert re.fullmatch(r"not a valid PDF \(.+\)", skipped.pop("truncated.pdf", ""))
    assert re.fullmatch(r"not a valid Word document \(.+\)", skipped.pop("bad.docx", ""))
    assert skipped == {
        "zero.txt": "empty file",
        "image.pdf": "not a PDF file (no %PDF header)",
        "encrypted.pdf": "encrypted PDF (password protected)",
        "random.txt": "binary data, not text",
        "program.exe": "unsupported type .exe",
        "escape.txt": "symlink leaves the ingested folder",
        "big.txt": "too large (2 MB > limit 1 MB; raise ingest.max_file_mb)",
    }
    added = {rel for rel, f in outcomes.items() if f.status == "added"}
    assert added == set(good) | {"nested name with spaces 🙂.txt"}
    texts = [text for _, text, _ in open_store(custom, embedder).all_chunks()]
    joined = "\n".join(texts)
    for phrase in ("4711", "coffee machine", "archive index", "Zürich", "Köln", "shredders", "tape library"):
        assert phrase in joined
    assert "outside the ingested root" not in joined and "Secret plans" not in joined
    assert sum(f.chunks for f in report.files if f.status == "added") == len(texts)


def test_cli_reports_skips_and_exit_codes(settings: Settings, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    os.symlink(settings.models_dir, tmp_path / "models")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# Fine\n\nA readable file.", encoding="utf-8")
    (docs / "zero.txt").write_bytes(b"")
    result = run_kura("ingest", str(docs), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "skipped zero.txt: empty file" in result.stdout
    strict = run_kura("ingest", str(docs), "--strict", "--config", str(config))
    assert strict.returncode == 1
    empty = tmp_path / "nothing-readable"
    empty.mkdir()
    (empty / "a.exe").write_bytes(b"MZ")
    nothing = run_kura("ingest", str(empty), "--config", str(config))
    assert nothing.returncode == 1 and "unsupported type .exe" in nothing.stdout
    missing = run_kura("ingest", str(tmp_path / "nope"), "--config", str(config))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == f"error: no such file or folder: {tmp_path / 'nope'}"
    assert "Traceback" not in missing.stderr + nothing.stderr + strict.stderr
