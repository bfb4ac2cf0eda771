"""A folder of bad files next to good ones: the run completes, every bad file is skipped with its
reason, and the store holds exactly the good files' chunks."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import ingest_paths
from rag.config import Settings
from rag.store import open_store
from tests.conftest import run_kura, write_config

pytestmark = pytest.mark.slow


def pdf_bytes(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def build_hostile(root: Path, outside: Path) -> dict[str, str]:
    """Returns good file name -> a phrase that must be stored."""
    from pypdf import PdfReader, PdfWriter

    root.mkdir()
    good = {
        "good.md": "# Good\n\nThe vault door code is 4711.\n",
        "nested name with spaces 🙂.txt": "Emoji folders keep the coffee machine manual.",
        "-leading-dash.txt": "Leading dashes are fine for the archive index.",
        "utf16.txt": "UTF-16 text about the Zürich office.",
        "latin1.txt": "Latin-1 text about the Köln office.",
        "copy-a.txt": "Duplicate content under two names.",
        "copy-b.txt": "Duplicate content under two names.",
        "good.pdf": "Printable policy about shredders.",
    }
    for name, text in good.items():
        path = root / name
        if name == "utf16.txt":
            path.write_bytes(text.encode("utf-16"))
        elif name == "latin1.txt":
            path.write_bytes(text.encode("latin-1"))
        elif name.endswith(".pdf"):
            path.write_bytes(pdf_bytes(text))
        else:
            path.write_text(text, encoding="utf-8")
    deep = root
    for level in range(30):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("The deepest file mentions the tape library.", encoding="utf-8")
    good["d0/" + "/".join(f"d{i}" for i in range(1, 30)) + "/deep.md"] = "tape library"

    (root / "zero.txt").write_bytes(b"")
    (root / "image.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(512))
    valid = pdf_bytes("Truncated in the middle of its bytes.")
    (root / "truncated.pdf").write_bytes(valid[: len(valid) // 2])
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes("Secret plans."))))
    writer.encrypt("secret", algorithm="RC4-128")
    with (root / "encrypted.pdf").open("wb") as handle:
        writer.write(handle)
    (root / "random.txt").write_bytes(os.urandom(4096))
    (root / "bad.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "program.exe").write_bytes(b"MZ")
    (root / "line\nbreak.txt").write_text("A name with a newline still ingests.", encoding="utf-8")
    good["line\nbreak.txt"] = "newline still ingests"
    (root / "loop").symlink_to(root, target_is_directory=True)
    outside.write_text("This file is outside the ingested root.", encoding="utf-8")
    (root / "escape.txt").symlink_to(outside)
    (root / "big.txt").write_bytes(b"big words " * (1024 * 1024 // 5))  # 2 MB, over a 1 MB limit
    return good


def test_hostile_folder(settings: Settings, embedder: Any, tmp_path: Path) -> None:
    custom = settings.model_copy(deep=True)
    custom.paths.store = tmp_path / "store"
    custom.ingest.max_file_mb = 1
    good = build_hostile(tmp_path / "docs", tmp_path / "outside.txt")
    report = ingest_paths([tmp_path / "docs"], custom, embedder)
    outcomes = {f.rel: f for f in report.files}
    skipped = {rel: f.reason for rel, f in outcomes.items() if f.status == "skipped"}
    assert skipped == {
        "zero.txt": "empty file",
        "image.pdf": "not a PDF file (no %PDF header)",
        "truncated.pdf": skipped["truncated.pdf"],
        "encrypted.pdf": "encrypted PDF (password protected)",
        "random.txt": "binary data, not text",
        "bad.docx": skipped["bad.docx"],
        "program.exe": "unsupported type .exe",
        "escape.txt": "symlink leaves the ingested folder",
        "big.txt": "too large (2 MB > limit 1 MB; raise ingest.max_file_mb)",
    }
    assert skipped["truncated.pdf"] and skipped["bad.docx"].startswith("not a valid Word document")
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
