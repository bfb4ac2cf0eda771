"""SIGKILL mid-ingest, then a re-run, equals an uninterrupted run; a second writer is refused or waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ingest.lock import writer_lock
from tests.conftest import KURA, run_kura, write_config
from tests.helpers import committed_files, snapshot, write_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    write_corpus(folder / "generated", files=40)
    return folder


@pytest.fixture(scope="module")
def clean_run(big_corpus: Path, settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("clean")
    config = write_config(folder)
    os.symlink(settings.models_dir, folder / "models")
    result = run_kura("ingest", str(big_corpus), "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return snapshot(config)


@pytest.mark.parametrize("kill_after_files", [0, 7, 23])
def test_sigkill_then_rerun_equals_clean_run(
    kill_after_files: int, big_corpus: Path, clean_run: Any, settings: Any, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    os.symlink(settings.models_dir, tmp_path / "models")
    proc = subprocess.Popen(
        [KURA, "ingest", str(big_corpus), "--json", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while committed_files(config) < kill_after_files and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if kill_after_files == 0:  # as soon as the store is opened: inside model loading or the first batch
        # (a fixed 4 s sleep let a quiet machine finish the whole run first)
        while not (tmp_path / "store").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; use a larger corpus"
    rerun = run_kura("ingest", str(big_corpus), "--json", "--config", str(config))
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(config) == clean_run
    again = json.loads(run_kura("ingest", str(big_corpus), "--json", "--config", str(config)).stdout)
    assert again["counts"]["unchanged"] == 40 and again["chunks_written"] == 0


def test_second_writer_stops_with_a_clear_message(settings: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    os.symlink(settings.models_dir, tmp_path / "models")
    docs = write_corpus(tmp_path / "docs", files=2)
    lock = tmp_path / "store" / ".kura-writer.lock"
    with writer_lock(lock, "a test holding the lock"):
        refused = run_kura("ingest", str(docs), "--config", str(config))
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: the store is being written by pid {os.getpid()}, a test holding the lock, since")
    )
    assert "Traceback" not in refused.stderr

    holding = threading.Event()

    def hold_briefly() -> None:
        with writer_lock(lock, "a test holding the lock"):
            holding.set()
            time.sleep(3)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    holding.wait()
    waited = run_kura("ingest", str(docs), "--wait", "60", "--json", "--config", str(config))
    holder.join()
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["counts"]["added"] == 2
