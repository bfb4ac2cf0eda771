"""Faults a user's machine can have: a bad config, a damaged model, a read-only store, a full disk. Each is one
clear error line (no traceback), leaves the manifest and the store consistent, and the next good run works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE, run_kura
from tests.reliability.helpers import assert_consistent, one_error_line, private_config, save_figures, store_state

pytestmark = pytest.mark.reliability
ROOT = os.geteuid() == 0


@pytest.mark.parametrize("command", [["ingest", "."], ["ask", "anything"], ["serve"]])
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    """The commands tests/rag/test_config.py::test_cli_bad_config_exits_2_with_one_line does not run."""
    config = tmp_path / "config.yaml"
    config.write_text("ingest:\n  chunk_size: lots\n")
    result = run_kura(*command, "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: config key 'ingest.chunk_size'")


@pytest.mark.slow
def test_damaged_model_is_one_line_and_restoring_it_works(settings: Any, tmp_path: Path) -> None:
    """A copy of the converted embedder used as an OpenVINO folder: truncated weights, then a missing file."""
    original = next(p for p in (settings.models_dir / "embedder").iterdir() if (p / "openvino_model.xml").is_file())
    model = tmp_path / "embedder-copy"
    shutil.copytree(original, model)
    config = private_config(tmp_path / "kura", settings, embedder={"source": str(model)})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nThe server room key hangs in cabinet 3.\n")
    weights = model / "openvino_model.bin"
    intact = weights.read_bytes()

    weights.write_bytes(intact[: len(intact) // 2])
    truncated = run_kura("ingest", str(docs), "--config", str(config))
    assert truncated.returncode == 1
    line = one_error_line(truncated.stderr)
    assert line == f"error: embedder: cannot load the model in {model} (Incorrect weights in bin file!); restore it"

    weights.unlink()
    missing = run_kura("ingest", str(docs), "--config", str(config))
    assert missing.returncode == 1
    assert one_error_line(missing.stderr).startswith(f"error: embedder: cannot load the model in {model} (")
    assert not (tmp_path / "kura" / "store").exists() or store_state(config)["count"] == 0

    weights.write_bytes(intact)
    restored = run_kura("ingest", str(docs), "--json", "--config", str(config))
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["counts"]["added"] == 1
    save_figures("damaged_model", {"truncated": line, "missing": one_error_line(missing.stderr)})


def _without_privileges(*args: str, config: Path) -> subprocess.CompletedProcess:
    """``kura`` as root without capabilities: root then obeys file modes like any user (chmod 0555 binds)."""
    from tests.conftest import KURA

    command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", KURA, *args, "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(not ROOT or not shutil.which("setpriv"), reason="needs root and setpriv to drop privileges")
def test_read_only_store_is_one_line_and_nothing_changes(settings: Any, tmp_path: Path) -> None:
    config = private_config(tmp_path / "kura", settings)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.md").write_text("# First\n\nThe first note is about the loading dock.\n")
    assert run_kura("ingest", str(docs), "--config", str(config)).returncode == 0
    (docs / "second.md").write_text("# Second\n\nThe second note is about the fire doors.\n")
    store = tmp_path / "kura" / "store"
    before = store_state(config)
    modes = {p: p.stat().st_mode for p in [store, *store.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        refused = _without_privileges("ingest", str(docs), config=config)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert refused.returncode == 1
    line = one_error_line(refused.stderr)
    assert line.startswith(f"error: cannot open the store at {store} (") and "readonly" in line
    after = store_state(config)
    assert after == before and after["pending"] == []
    assert_consistent(after)

    again = run_kura("ingest", str(docs), "--json", "--config", str(config))
    assert again.returncode == 0, again.stderr
    counts = json.loads(again.stdout)["counts"]
    assert (counts["added"], counts["unchanged"]) == (1, 1)
    assert_consistent(store_state(config))
    save_figures("read_only_store", {"error": line})


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs: enough for an empty Chroma store, not for the sample corpus."""
    mount = tmp_path / "kura" / "store"
    mount.mkdir(parents=True)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="mounting a small tmpfs needs root")
def test_full_disk_is_one_line_consistent_and_recoverable(settings: Any, tiny_disk: Path, tmp_path: Path) -> None:
    config = private_config(tmp_path / "kura", settings)
    full = run_kura("ingest", str(SAMPLE), "--json", "--config", str(config))
    assert full.returncode == 1
    line = one_error_line(full.stderr)
    assert line.startswith("error: writing to the store failed (") and "full" in line, line

    # Chroma cannot even open a full store (it writes on open), so give it room, then look at what the failed
    # run left behind before the next run touches it.
    grown = subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], capture_output=True, text=True)
    assert grown.returncode == 0, grown.stderr
    state = store_state(config)
    assert_consistent(state)
    committed_when_full = len(state["files"])
    again = run_kura("ingest", str(SAMPLE), "--json", "--config", str(config))
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    state = store_state(config)
    assert_consistent(state)
    assert state["pending"] == [] and len(state["files"]) == 11
    assert state["count"] == sum(state["files"].values())
    save_figures(
        "full_disk",
        {"error": line, "files_committed_before_full": committed_when_full, "chunks_after_recovery": state["count"]},
    )
    assert report["counts"]["added"] + report["counts"]["unchanged"] == 11
