"""``kill -9`` of a real ``kura ingest`` of the sample corpus plus 200 generated files, before anything was
committed and mid-way; each re-run must give exactly the store of an uninterrupted run (ids, metadata, manifest).
tests/ingest/test_crash_and_lock.py does the same on 40 files; this one is larger and mixes formats."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KURA, SAMPLE, run_kura
from tests.helpers import committed_files, snapshot
from tests.reliability.helpers import private_config, save_figures

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

GENERATED = 200
KILL_AFTER = [0, 90]  # committed files when the SIGKILL lands (0: during model loading / the first batch)
# Files are committed a group of embedded chunks at a time: groups of 64 (not the default 512, more than the
# whole corpus) so that "after 90 files" lands between commits.
GROUPS = {"embed_group_chunks": 64}
TOPICS = ["badge", "printer", "parking", "kitchen", "travel", "payroll", "backup", "visitor", "locker", "canteen"]


def write_varied(folder: Path, count: int) -> None:
    """Small .md and .txt files of one to four paragraphs, some in sub-folders; some share a body."""
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        paragraphs = [
            f"The {topic} rule {i}-{p} says the limit is {i * 7 + p} units and room {100 + i % 37} is in charge."
            for p in range(1 + i % 4)
        ]
        sub = folder / (f"team-{i % 5}" if i % 3 else "")
        sub.mkdir(parents=True, exist_ok=True)
        if i % 2:
            (sub / f"{i:03d}-{topic}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        else:
            (sub / f"{i:03d}-{topic}.md").write_text(f"# {topic.title()} {i}\n\n" + "\n\n".join(paragraphs) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kill9-corpus")
    shutil.copytree(SAMPLE, folder / "sample")
    write_varied(folder / "generated", GENERATED)
    return folder


@pytest.fixture(scope="module")
def clean(corpus: Path, settings: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = private_config(tmp_path_factory.mktemp("kill9-clean"), settings, ingest=GROUPS)
    started = time.monotonic()
    result = run_kura("ingest", str(corpus), "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {"snapshot": snapshot(config), "report": report, "seconds": time.monotonic() - started}


@pytest.mark.parametrize("kill_after", KILL_AFTER)
def test_kill9_then_rerun_equals_a_clean_run(
    kill_after: int, corpus: Path, clean: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    files = clean["report"]["counts"]["added"]
    assert files >= GENERATED + 11
    config = private_config(tmp_path, settings, ingest=GROUPS)
    proc = subprocess.Popen(
        [KURA, "ingest", str(corpus), "--json", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while committed_files(config) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if kill_after == 0:
        time.sleep(4)  # inside model loading or the first embedding batch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; use a larger corpus"
    at_kill = committed_files(config)
    assert at_kill < files
    rerun = run_kura("ingest", str(corpus), "--json", "--config", str(config))
    assert rerun.returncode == 0, rerun.stderr
    chunks, rows = snapshot(config)
    assert (chunks, rows) == clean["snapshot"]
    assert len(chunks) == sum(row[-1] for row in rows) == clean["report"]["chunks_written"]
    figures = {
        "files": files,
        "chunks": len(chunks),
        "clean_run_s": round(clean["seconds"], 1),
        "committed_at_kill": at_kill,
        "rerun_added_or_updated": sum(json.loads(rerun.stdout)["counts"][s] for s in ("added", "updated")),
    }
    if kill_after == KILL_AFTER[-1]:  # once: a third run after recovery changes nothing
        again = json.loads(run_kura("ingest", str(corpus), "--json", "--config", str(config)).stdout)
        assert again["counts"]["unchanged"] == files and again["chunks_written"] == 0
    save_figures(f"kill9_after_{kill_after}_files", figures)
