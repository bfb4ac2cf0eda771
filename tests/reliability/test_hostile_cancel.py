"""Ctrl-C during a real ``kura ingest`` that is parsing a hostile PDF: the run stops without waiting for the
file, says how far it got in one line, leaves nothing half-written and no parser process behind; the next
run finishes the job."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KURA, run_kura
from tests.helpers import pdf_one_stream
from tests.reliability.helpers import assert_consistent, private_config, store_state

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (the forkserver and the parser processes it forked)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_stops_the_run_and_the_next_run_finishes(settings: Any, tmp_path: Path) -> None:
    config = private_config(tmp_path / "kura", settings, ingest={"parse_timeout_s": 900, "parse_workers": 1})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-good.md").write_text("# Good\n\nThe vault door code is 4711.\n", encoding="utf-8")
    pdf_one_stream(docs / "b-stream.pdf", 5 * 1024 * 1024, pages=10)  # ran past 120 s in the issue
    (docs / "c-good.md").write_text("# Also good\n\nThe canteen opens at noon.\n", encoding="utf-8")

    proc = subprocess.Popen(
        [KURA, "ingest", str(docs), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while not descendants(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # the parser is past a-good.md and inside the PDF
    workers = descendants(proc.pid)
    assert workers and proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)  # a hang guard: the PDF alone would take minutes

    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Cancelled: 0 of 3 files ingested; run again to continue"
    assert "Traceback" not in stderr
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)
    state = store_state(config)
    assert_consistent(state)
    assert state["pending"] == [] and state["files"] == {}

    rerun = run_kura("ingest", str(docs), "--json", "--config", str(config), env={"KURA_INGEST__PARSE_TIMEOUT_S": "5"})
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["counts"] == {"added": 2, "updated": 0, "unchanged": 0, "removed": 0, "skipped": 1}
