"""Nothing leaves the machine, proved where it runs: a real ``kura serve`` (and ``kura ingest`` and ``kura ask``)
in a network namespace with only loopback, a logging DNS server as the namespace's resolver, and a catch-all
route that records every packet to any other address (tests/netns). Unlike the socket hook of tests/netguard,
this sees what libuv (uvloop, which serves the web app), Chroma's Rust and C libraries do.

One server start for the module; each test takes a mark, does its step over HTTP (through a Unix socket into
the namespace) and asserts that no DNS query and no outside packet followed. The control test proves the
harness can fail: a lookup through glibc and one through uvloop, and uvloop connects to outside addresses, are
all recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.offline import OFFLINE_ENV
from tests.conftest import KURA, REPO
from tests.netns import Namespace
from tests.reliability.helpers import private_config, save_figures

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

USER, PASSWORD = "dana", "dana-long-password"
PORT = 7860  # the namespace is fresh: any port is free in it
QUESTION = "Which internal phone extension reaches the IT Service Desk?"
PROBE = "/gradio_api/file=https%3A%2F%2Fintranet-wiki.corp.example%2Fx"
ASSET = re.compile(r'(?:src|href)="(\./|/)?(assets/[^"]+)"')


def user_env(folder: Path) -> dict[str, str]:
    """The environment a user would have: without the offline variables the test session sets for itself, so
    what keeps Kura's libraries off the network is Kura's own doing."""
    env = {name: value for name, value in os.environ.items() if name not in OFFLINE_ENV}
    env["GRADIO_TEMP_DIR"] = str(folder / "gradio-tmp")
    return env


@pytest.fixture(scope="module")
def isolated(sample_settings: Any, settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    """``kura serve`` with login on over a copy of the session's sample collection, in its own namespace."""
    from rag.config import load_settings
    from rag.users import add_user

    folder = tmp_path_factory.mktemp("zero-egress")
    shutil.copytree(sample_settings.paths.store, folder / "kura" / "store")
    config = private_config(folder / "kura", settings, vectorstore={"collection": "sample"})
    add_user(load_settings(config), USER, PASSWORD)
    serve = [KURA, "serve", "--host", "127.0.0.1", "--port", str(PORT), "--config", str(config)]
    namespace = Namespace(folder / "ns", PORT, serve, user_env(folder))
    try:
        namespace.ready_s = namespace.wait_for_http()  # type: ignore[attr-defined]
        yield namespace
    finally:
        namespace.stop()


@pytest.fixture(scope="module")
def session(isolated: Namespace) -> Iterator[httpx.Client]:
    """One client for the module, as the page's own scripts would send it (same origin), keeping its cookies."""
    with isolated.client(timeout=120, headers={"Origin": f"http://127.0.0.1:{PORT}"}) as http:
        yield http


def names(events: list[dict[str, Any]]) -> set[str]:
    return {event["name"] for event in events if event["kind"] == "dns"}


def test_server_start_makes_no_query_and_no_connection(isolated: Namespace) -> None:
    assert isolated.events() == [], isolated.output()[-2000:]


def test_page_load_makes_none(isolated: Namespace, session: httpx.Client) -> None:
    mark = isolated.mark()
    page = session.get("/")
    assert page.status_code == 200
    assets = sorted({match[1] for match in ASSET.findall(page.text)})
    for path in ["config", "theme.css", *assets]:
        assert session.get(f"/{path}").status_code in (200, 401), path  # /config needs the login first
    assert isolated.since(mark) == []


def test_login_makes_none(isolated: Namespace, session: httpx.Client) -> None:
    mark = isolated.mark()
    assert session.post("/login", data={"username": USER, "password": "wrong-password"}).status_code >= 400
    assert session.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
    assert session.get("/config").status_code == 200
    assert isolated.since(mark) == []


def test_ask_through_the_api_makes_none(isolated: Namespace, session: httpx.Client) -> None:
    mark = isolated.mark()
    call = session.post("/gradio_api/call/ask", json={"data": [QUESTION, "sample", 3, 0.0, 48, False]})
    assert call.status_code == 200, call.text
    event, data = "", ""
    with session.stream("GET", f"/gradio_api/call/ask/{call.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = line.removeprefix("data:").strip()
                break
    assert event == "complete", data
    assert "kura-turn" in json.loads(data)[0]  # a rendered answer (or the abstention), with its footer
    assert isolated.since(mark) == []


def test_remote_file_probe_makes_none(isolated: Namespace, session: httpx.Client) -> None:
    """Issue 15 item 2: Gradio's file route resolved a remote URL's name; the server must not touch it."""
    mark = isolated.mark()
    response = session.get(PROBE)
    assert response.status_code >= 400
    assert isolated.since(mark) == []


def test_cli_ingest_and_ask_make_none(isolated: Namespace, settings: Any) -> None:
    """The CLI in the same namespace, with a store of its own (the server keeps its own)."""
    folder = isolated.folder.parent / "cli"
    docs = folder / "docs"
    docs.mkdir(parents=True)
    (docs / "parking.md").write_text("# Parking\n\nThe parking garage opens at 6:30 and closes at 22:00.\n")
    config = private_config(folder / "kura", settings)
    env = user_env(folder)
    mark = isolated.mark()
    ingested = isolated.run(KURA, "ingest", str(docs), "--config", str(config), env=env)
    assert ingested.returncode == 0, ingested.stderr
    asked = isolated.run(KURA, "ask", "When does the parking garage open?", "--json", "--config", str(config), env=env)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["answer"]
    assert isolated.since(mark) == []


CONTROL = """
import asyncio, socket, sys, uvloop
try:
    socket.getaddrinfo("glibc-control.kura.invalid", 443)
except OSError:
    pass
async def main():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, uvloop.Loop)
    try:
        await loop.getaddrinfo("uvloop-control.kura.invalid", 443)
    except OSError:
        pass
    for host in ("192.0.2.7", "2001:db8::7"):  # documentation addresses: nothing answers
        try:
            await asyncio.wait_for(asyncio.open_connection(host, 443), 1)
        except (OSError, TimeoutError):
            pass
uvloop.run(main())
"""


def test_control_the_harness_sees_lookups_and_connects_from_libuv(isolated: Namespace) -> None:
    mark = isolated.mark()
    result = isolated.run(sys.executable, "-c", CONTROL, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    seen = isolated.since(mark)
    assert names(seen) == {"glibc-control.kura.invalid", "uvloop-control.kura.invalid"}
    packets = {(e["dst"], e["proto"], e["port"]) for e in seen if e["kind"] == "packet"}
    assert packets == {("192.0.2.7", "tcp", 443), ("2001:db8::7", "tcp", 443)}
    save_figures(
        "zero_egress",
        {
            "server_ready_s": getattr(isolated, "ready_s", None),
            "events_total": len(isolated.events()),
            "control_events": len(seen),
        },
    )
