"""A real ``kura serve`` over the sample corpus, under the network guard, and a Chromium to drive it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KURA, REPO, run_kura, write_config
from tests.helpers import Server, start_server

SAMPLE = REPO / "data" / "sample"
ARTIFACTS = REPO / "tests" / "artifacts"
PASSWORDS = {"alice": "alice-long-password", "bob": "bob-long-password"}
ACCESS = {"secret": ["alice"], "*": ["alice", "bob"]}  # bob exists but may not see 'secret'; both see the rest
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Record:
    """What the module saw: every browser request, and timings for the report."""

    requests: list[str] = field(default_factory=list)
    servers: set[str] = field(default_factory=set)  # host:port of every server this module started
    timings: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "ui-timings.json").write_text(json.dumps(self.timings, indent=2))


@pytest.fixture(scope="module")
def record() -> Iterator[Record]:
    seen = Record()
    yield seen
    seen.save()


@pytest.fixture(scope="module")
def store_folder(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus as collection 'kura', one note as the restricted collection 'secret', two users."""
    from rag.config import load_settings
    from rag.users import add_user

    folder = tmp_path_factory.mktemp("ui")
    config = write_config(folder, ui={"collection_access": ACCESS})
    os.symlink(settings.models_dir, folder / "models")
    ingested = run_kura("ingest", str(SAMPLE), "--config", str(config))
    assert ingested.returncode == 0, ingested.stderr
    (folder / "vault").mkdir()
    (folder / "vault" / "vault.md").write_text("# Vault\n\nThe vault code is 4711 and only Alice may know it.\n")
    secret = run_kura("ingest", str(folder / "vault"), "--collection", "secret", "--config", str(config))
    assert secret.returncode == 0, secret.stderr
    adding = subprocess.run(
        [KURA, "users", "add", "alice", "--password-stdin", "--config", str(config)],
        input=PASSWORDS["alice"] + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert adding.returncode == 0, adding.stderr
    add_user(load_settings(config), "bob", PASSWORDS["bob"])
    leftover = folder / "up" / ".gradio" / "from-an-earlier-run" / "never-submitted.md"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("An upload nobody submitted before the last server stopped.")
    return folder


@pytest.fixture(scope="module")
def site(store_folder: Path, record: Record) -> Iterator[Server]:
    server = start_server(store_folder / "config.yaml", store_folder, "serve")
    record.timings["first_start_s"] = server.ready_s
    record.servers.add(f"127.0.0.1:{server.port}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, record: Record) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.on("request", lambda request: record.requests.append(request.url))
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()
