"""Uploads are staged safely and everything a user or a file controls is rendered as text; no models needed."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from ingest.pipeline import FileOutcome, IngestReport
from rag.errors import KuraError
from ui import render
from ui.uploads import MAX_NAME_BYTES, safe_name, stage_uploads

EVIL = "<img src=x onerror=alert(1)>.md"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.md", "_.._etc_passwd.md"),
        (".hidden.md", "hidden.md"),
        ("a\nb\x00c.txt", "a_b_c.txt"),
        (EVIL, EVIL),  # harmless on disk; the page escapes it
        ("...", "upload"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_long_names_keep_their_extension() -> None:
    name = safe_name("x" * 500 + ".docx")
    assert name.endswith(".docx") and len(name.encode()) <= MAX_NAME_BYTES


def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_zip_members_that_escape_or_link_are_refused(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "docs.zip",
        {
            "docs/a.md": b"# A",
            "docs/sub/b.txt": b"B",
            "../outside.md": b"x",
            "/absolute.md": b"x",
            "docs/tool.exe": b"MZ",
            "docs/.hidden.md": b"x",
            "__MACOSX/docs/._a.md": b"x",
            f"docs/{EVIL}": b"evil",
        },
        symlink="docs/link.md",
    )
    staged = stage_uploads([(archive, "docs.zip")], tmp_path / "up", "kura", 5, 5)
    files = sorted(str(p.relative_to(staged.folder)) for p in staged.folder.rglob("*") if p.is_file())
    assert files == sorted(["docs/a.md", f"docs/{EVIL}", "docs/sub/b.txt"])
    reasons = dict(staged.skipped)
    assert reasons["docs.zip/../outside.md"] == "'..' in its path in the zip"
    assert reasons["docs.zip//absolute.md"] == "absolute path in the zip"
    assert reasons["docs.zip/docs/link.md"] == "symlink in the zip"
    assert reasons["docs.zip/docs/tool.exe"] == "unsupported type .exe"
    assert not (tmp_path / "outside.md").exists() and staged.folder.is_relative_to(tmp_path / "up" / "kura")


def test_loose_zip_unpacks_into_a_folder_of_its_name_and_files_never_collide(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "notes.zip", {"one.md": b"1", "two.txt": b"2"})
    plain = tmp_path / "one.md"
    plain.write_text("plain")
    staged = stage_uploads([(archive, "notes.zip"), (plain, "one.md"), (plain, "one.md")], tmp_path / "up", "c", 5, 5)
    files = sorted(str(p.relative_to(staged.folder)) for p in staged.folder.rglob("*") if p.is_file())
    assert files == ["notes/one.md", "notes/two.txt", "one (2).md", "one.md"]


def test_zip_bombs_and_large_members_are_stopped(tmp_path: Path) -> None:
    big = b"0" * (3 * 1024 * 1024)
    archive = _zip(tmp_path / "big.zip", {"big.txt": big, "small.txt": b"ok"})
    staged = stage_uploads([(archive, "big.zip")], tmp_path / "up", "c", 5, 2)
    assert dict(staged.skipped)["big.zip/big.txt"].startswith("too large")
    assert [p.name for p in staged.folder.rglob("*") if p.is_file()] == ["small.txt"]

    bomb = _zip(tmp_path / "bomb.zip", {f"part{i}.txt": big for i in range(8)})  # 24 MB from a tiny zip
    with pytest.raises(KuraError, match="unpacked zip content is larger than 4 MB; nothing was added"):
        stage_uploads([(bomb, "bomb.zip")], tmp_path / "up2", "c", 1, 32)
    assert list((tmp_path / "up2" / "c").iterdir()) == []  # the half-unpacked folder is gone


def test_upload_over_the_limit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    large = tmp_path / "large.txt"
    large.write_bytes(b"x" * (2 * 1024 * 1024))
    with pytest.raises(KuraError, match="the upload is larger than 1 MB"):
        stage_uploads([(large, "large.txt")], tmp_path / "up", "c", 1, 32)
    assert not (tmp_path / "up").exists()


def _source(**overrides: object) -> dict[str, object]:
    source = {"n": 1, "path": EVIL, "page": 2, "heading": "<b>h</b>", "text": "<script>x()</script>", "score": 0.5}
    return {**source, **overrides}


def test_everything_from_files_or_users_is_escaped() -> None:
    final = {
        "answer": "Report within 4 hours [1, 2]. See a[1] and [3] <img src=x onerror=alert(1)>",
        "sources": [_source(), _source(n=2, path="b.md")],
        "citation_warnings": ["removed <i>[9]</i>"],
        "timings": {"retrieve_ms": 12.0, "ttft_ms": 80.0, "decode_tokens_per_s": 30.0, "total_ms": 900.0},
        "model": "m",
        "device": "CPU",
    }
    turn = {"question": "<b>q</b>", "reasoning": "<think>", "final": final}
    chat = render.conversation([turn], True, "kura")
    page = chat + render.source_panel(_source())
    assert "<img" not in page and "<script" not in page and "<b>q" not in page and "<i>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;x()&lt;/script&gt;" in page
    # [1, 2] become two buttons; a[1] is an index and [3] names no source, so both stay text.
    assert chat.count('data-n="1"') == 2 and chat.count('data-n="2"') == 2 and "a[1]" in chat and " [3] " in chat
    assert "retrieve 12 ms · first token 80 ms · 30.0 tokens/s" in page and "m on CPU" in page
    assert '<details class="kura-reasoning"><summary>Reasoning</summary>' in page
    replaced = {**final, "answer_source": "extracted", "generated": "Ask Bob."}
    extracted = render.conversation([{**turn, "final": replaced}], True, "kura")
    assert "did not support the model's own answer" in extracted and "did not support" not in chat
    chosen = render.conversation([{**turn, "final": {**replaced, "generated": ""}}], True, "kura")
    assert "did not support" not in chosen and "passage of the sources that best answers" in chosen
    rows = [{"file": EVIL, "chunks": 1, "ingested_at": 0.0, "origin": "<up>"}]
    table = render.documents_table(rows, "<c>")
    assert "<img" not in table and "&lt;up&gt;" in table and "&lt;c&gt;" in table
    scan = FileOutcome(EVIL, EVIL, "added", 1, note="1 of 2 pages <without> text")
    report = IngestReport("kura", dry_run=False, files=[FileOutcome(EVIL, EVIL, "skipped", reason="<r>"), scan])
    summary = render.ingest_summary(report, [("z.zip/<x>", "symlink in the zip")], [EVIL])
    assert "<img" not in summary and "skipped 2" in summary and "&lt;r&gt;" in summary
    assert "1 of 2 pages &lt;without&gt; text</li>" in summary


def test_same_named_zip_members_get_numbered_names(tmp_path: Path) -> None:
    """5,000 members (the most a zip may hold), all but one of one name: 58 s of name probing before."""
    archive = tmp_path / "same.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for _ in range(4999):
            out.writestr("notes.md", "the same name")
        out.writestr("notes (3).md", "a name the numbering also wants")
    staged = stage_uploads([(archive, "same.zip")], tmp_path / "up", "c", 5, 5)
    names = {p.name for p in (staged.folder / "same").iterdir()}
    assert names == {"notes.md", *(f"notes ({n}).md" for n in range(2, 5000)), "notes (3) (2).md"}
