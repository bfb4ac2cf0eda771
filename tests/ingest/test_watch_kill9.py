"""``kill -9`` of a real ``kura ingest --watch`` in the middle of a live sync, then a restart: the store is
exactly what a clean ``kura ingest`` of the folder as it is gives (chunk ids, metadata, manifest rows)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KURA, run_kura, write_config
from tests.helpers import committed_files, snapshot, write_corpus

pytestmark = pytest.mark.slow
TIMEOUT_S = 300.0
# MORE: ~750 chunks, more than one embedding group (ingest.embed_group_chunks, 512), so the kill
# lands after a group's files are written and before the next group's.
FIRST, MORE = 8, 300


class Watcher:
    """A running ``kura ingest --watch --json``, its stdout read line by line as JSON objects."""

    def __init__(self, docs: Path, config: Path) -> None:
        command = [KURA, "ingest", str(docs), "--watch", "--json", "--config", str(config)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))  # every line is one JSON object

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line["event"] == event:
                return line
        raise AssertionError(f"no '{event}' line from kura ingest --watch")


def private_config(folder: Path, settings: Any) -> Path:
    folder.mkdir()
    os.symlink(settings.models_dir, folder / "models")
    return write_config(folder)


def test_kill9_mid_sync_then_restart_equals_a_clean_run(settings: Any, tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs", files=FIRST)
    config = private_config(tmp_path / "watched", settings)
    watcher = Watcher(docs, config)
    watcher.wait_for("watching")
    write_corpus(docs / "more", files=MORE)
    (docs / "00-backups.md").write_text("# Backups\n\nBackups are now kept for 90 days.\n", encoding="utf-8")
    (docs / "01-printers.md").unlink()
    deadline = time.monotonic() + TIMEOUT_S
    while committed_files(config) < FIRST + 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    watcher.proc.send_signal(signal.SIGKILL)
    watcher.proc.wait()
    assert committed_files(config) < FIRST + MORE, "the sync finished before the kill; use more files"

    restarted = Watcher(docs, config)
    restarted.wait_for("watching")
    restarted.proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert restarted.proc.wait(timeout=TIMEOUT_S) == 0

    clean = private_config(tmp_path / "clean", settings)
    assert run_kura("ingest", str(docs), "--config", str(clean)).returncode == 0
    assert snapshot(config) == snapshot(clean)
