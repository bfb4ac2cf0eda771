"""Model sources' fingerprints: what makes a collection's vectors comparable across installs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.models.sources import ModelSource


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_package_source_survives_a_reinstall_but_not_a_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reinstall gives the same files new mtimes: that must not re-convert models or re-embed collections."""
    model = tmp_path / "kura_fake_weights" / "model"
    model.mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"w" * 10)
    info = tmp_path / "kura_fake_weights-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kura_fake_weights\nVersion: 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    source = ModelSource("pkg:kura_fake_weights/model", "hf", model)
    before = source.fingerprint()
    _touch_later(model / "weights.bin")
    assert source.fingerprint() == before
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kura_fake_weights\nVersion: 1.1\n")
    assert source.fingerprint() != before


def test_a_local_folder_changes_with_its_files(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w" * 10)
    source = ModelSource(str(tmp_path), "hf", tmp_path)
    before = source.fingerprint()
    _touch_later(tmp_path / "weights.bin")
    assert source.fingerprint() != before
