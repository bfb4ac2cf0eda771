"""The hostile folder of tests/ingest/test_hostile.py, grown (a 50 MB file at the default size limit, invalid
UTF-8, a 200,000-character line) and run through the real ``kura ingest --json``: exit 0, each bad file skipped
with its reason, and the store holding exactly the good files' chunks."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_kura
from tests.helpers import build_hostile
from tests.reliability.helpers import assert_consistent, private_config, save_figures, store_state

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

LONG_SENTENCE = "The long line talks about the orchard irrigation schedule for the east terraces. "


def grow_hostile(root: Path) -> dict[str, str]:
    """What this test adds to the ingest-level hostile folder; returns the added good files -> a stored phrase."""
    (root / "big.txt").unlink()  # 2 MB: under the default limit, it would only cost embedding time here
    with (root / "huge.txt").open("wb") as handle:  # 50 MB over the default 32 MB limit, written in one go
        handle.write(b"a repeated line of a very large log file\n" * (50 * 1024 * 1024 // 41 + 1))
    (root / "invalid-utf8.txt").write_bytes(b"Broken \xff\xfe bytes, but the Bremen depot is open on Sundays.\n")
    line = (LONG_SENTENCE * (200_000 // len(LONG_SENTENCE) + 1))[:200_000]
    (root / "one-long-line.txt").write_text(line, encoding="utf-8")
    return {"invalid-utf8.txt": "Bremen depot", "one-long-line.txt": "orchard irrigation"}


def test_hostile_folder_through_the_cli(settings: Any, tmp_path: Path) -> None:
    config = private_config(tmp_path / "kura", settings)
    docs = tmp_path / "docs"
    good = build_hostile(docs, tmp_path / "outside.txt")
    good.update(grow_hostile(docs))
    files_on_disk = sum(1 for p in docs.rglob("*") if p.is_file() or p.is_symlink())

    started = time.monotonic()
    result = run_kura("ingest", str(docs), "--json", "--config", str(config))
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    outcomes = {f["rel"]: f for f in report["files"]}
    skipped = {rel: f["reason"] for rel, f in outcomes.items() if f["status"] == "skipped"}
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
        "huge.txt": "too large (50 MB > limit 32 MB; raise ingest.max_file_mb)",
    }
    added = {rel for rel, f in outcomes.items() if f["status"] == "added"}
    assert added == set(good)  # the duplicates under two names, the newline, emoji and leading-dash names too
    assert "loop" not in outcomes  # the symlink loop is not followed (and not reported as a file)

    state = store_state(config)
    assert_consistent(state)
    added_chunks = sum(f["chunks"] for f in report["files"] if f["status"] == "added")
    assert added_chunks == report["chunks_written"] == state["count"] == sum(state["files"].values())
    assert state["pending"] == [] and len(state["files"]) == len(good)
    assert outcomes["one-long-line.txt"]["chunks"] > 100 and report["truncated_chunks"] == 0
    save_figures(
        "hostile_cli",
        {
            "files_tried": len(outcomes),
            "files_on_disk_incl_symlinks": files_on_disk,
            "added": len(added),
            "skipped": len(skipped),
            "chunks": state["count"],
            "long_line_chunks": outcomes["one-long-line.txt"]["chunks"],
            "seconds": round(seconds, 1),
        },
    )
