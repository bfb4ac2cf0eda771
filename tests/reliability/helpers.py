"""Shared by the reliability tests: private configs, the store read from a fresh process, the figures file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO, write_config

FIGURES = REPO / "tests" / "artifacts" / "reliability.json"

STORE_STATE = r"""
import json, sqlite3, sys
from pathlib import Path
from collections import Counter
from rag.config import load_settings
from ingest.manifest import manifest_path
from rag.store import connect
settings = load_settings(Path(sys.argv[1]))
vectors = connect(settings)
name = settings.vectorstore.collection
keys = Counter()
count = 0
if name in vectors.names():
    store = vectors.open(name)
    count = store.count()
    keys = Counter(meta["key"] for _, _, meta in store.all_chunks())
files, pending = {}, []
path = manifest_path(settings)
if path.exists():
    db = sqlite3.connect(path)
    files = dict(db.execute("SELECT key, chunks FROM files WHERE collection = ?", (name,)).fetchall())
    pending = [r[0] for r in db.execute("SELECT key FROM pending WHERE collection = ?", (name,))]
print(json.dumps({"count": count, "keys": dict(keys), "files": files, "pending": pending}))
"""


def private_config(folder: Path, settings: Any, **sections: dict[str, Any]) -> Path:
    """A config whose store is private to the test and whose models are the session's (already converted)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, **sections)
    if not (folder / "models").exists():
        os.symlink(settings.models_dir, folder / "models")
    return config


def store_state(config: Path) -> dict[str, Any]:
    """Chunk count, chunks per file key, manifest rows and pending marks, read by a fresh process (no caching,
    and nothing held open on the store)."""
    result = subprocess.run(
        [sys.executable, "-c", STORE_STATE, str(config)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_consistent(state: dict[str, Any]) -> None:
    """Every committed file has exactly its chunks in the store; any other chunks belong to a file marked pending
    (the next run redoes it); the total matches."""
    for key, chunks in state["files"].items():
        if key not in state["pending"]:
            assert state["keys"].get(key, 0) == chunks, (key, chunks, state["keys"].get(key))
    stray = set(state["keys"]) - set(state["files"])
    assert stray <= set(state["pending"]), stray
    assert state["count"] == sum(state["keys"].values())


def one_error_line(stderr: str) -> str:
    """The last stderr line, after checking there is no traceback (device fallback notes may come before it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr
    return lines[-1]


def save_figures(section: str, figures: dict[str, Any]) -> None:
    """Measured figures, merged into tests/artifacts/reliability.json (and printed for `pytest -s`)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[section] = figures
    FIGURES.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(f"\nreliability {section}: {json.dumps(figures, ensure_ascii=False)}")
