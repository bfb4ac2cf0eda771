"""The guard in front of the page, in process over a tiny app: hosts, origins, remote file= paths, headers.

The same checks against a real ``kura serve`` and a real Chromium are in tests/ui/test_browser.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import gradio as gr
import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from rag.config import load_settings
from rag.errors import KuraError
from tests.conftest import write_config
from ui.server import SECURITY_HEADERS, Guard, allowed_hosts, fetches_remote, run, same_origin

KURA = "http://127.0.0.1:7860"


@pytest.fixture(scope="module")
def client() -> TestClient:
    """What Gradio does that the guard must undo: a ``SameSite=None`` cookie and a CORS grant for anyone."""
    app = FastAPI()
    app.add_middleware(Guard, hosts=["127.0.0.1", "localhost", "::1"])

    @app.api_route("/{path:path}", methods=["GET", "POST", "OPTIONS"])
    def anything(path: str, response: Response) -> dict[str, str]:
        response.set_cookie("access-token", "t", httponly=True, samesite="none", secure=True)
        response.headers["Access-Control-Allow-Origin"] = "https://evil.example"
        response.headers["Access-Control-Allow-Credentials"] = "true"
        return {"path": path}

    return TestClient(app, base_url=KURA)


def test_default_hosts_are_the_bind_address_and_this_machines_names(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    assert allowed_hosts(settings, "192.168.1.20") == {"192.168.1.20", "localhost", "127.0.0.1", "::1"}
    settings.ui.allowed_hosts = ["Kura.Example.org", "[fd00::1]"]
    assert allowed_hosts(settings, "0.0.0.0") == {"kura.example.org", "fd00::1"}


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
        ("http://LOCALHOST:7860", "localhost:7860", True),
        ("http://[::1]:7860", "[::1]:7860", True),
        ("https://kura.example.org", "kura.example.org", True),  # behind a TLS proxy that keeps the Host
        ("https://kura.example.org:443", "kura.example.org", True),
        ("http://127.0.0.1:8000", "127.0.0.1:7860", False),  # another server on this machine
        ("http://localhost:7860", "127.0.0.1:7860", False),
        ("https://evil.example", "127.0.0.1:7860", False),
        ("null", "127.0.0.1:7860", False),  # sandboxed frames and file: pages
        ("file://", "127.0.0.1:7860", False),
        ("http://127.0.0.1:99999", "127.0.0.1:7860", False),
        ("http://127.0.0.1:7860", "evil@127.0.0.1:7860", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


@pytest.mark.parametrize(
    ("path", "remote"),
    [
        ("/gradio_api/file=https://intranet-wiki.corp.example/x", True),
        ("/gradio_api/file=http://10.0.0.1/", True),
        ("/gradio_api/file=https%3A%2F%2Fintranet-wiki.corp.example%2Fx", True),  # encoded twice on the wire
        ("/gradio_api/file=//intranet/x", True),
        ("/gradio_api/file=\\\\intranet\\share\\x", True),
        ("/gradio_api/file=ftp://files.example/x", True),
        ("/gradio_api/proxy=https://x.hf.space/file", True),
        ("/gradio_api/file=/tmp/gradio/abc/report.pdf", False),
        ("/gradio_api/file=C:\\Users\\me\\gradio\\report.pdf", False),
        ("/gradio_api/upload", False),
        ("/file=https://example.org/", False),
    ],
)
def test_remote_file_paths(path: str, remote: bool) -> None:
    assert fetches_remote(path) is remote


def test_unknown_host_is_refused(client: TestClient) -> None:
    for host in ("rebind.attacker.example", "127.0.0.1.attacker.example:7860", "", "evil@127.0.0.1"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 400, host
        assert "ui.allowed_hosts" in response.text


def test_foreign_origin_is_refused_with_no_cors_grant(client: TestClient) -> None:
    for method in ("GET", "POST", "OPTIONS"):
        for origin in ("https://evil.example", "http://127.0.0.1:8000", "null"):
            response = client.request(
                method, "/gradio_api/token", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
            )
            assert response.status_code == 403, (method, origin)
            assert not [name for name in response.headers if name.startswith("access-control-")]
            assert "set-cookie" not in response.headers


def test_own_origin_and_no_origin_pass_without_cors_headers_and_cookies_are_lax(client: TestClient) -> None:
    for headers in ({"Origin": KURA}, {}):
        response = client.post("/gradio_api/call/documents", headers=headers)
        assert response.status_code == 200 and response.json() == {"path": "gradio_api/call/documents"}
        assert not [name for name in response.headers if name.startswith("access-control-")]
        cookie = response.headers["set-cookie"]
        assert "SameSite=lax" in cookie and "none" not in cookie.lower() and "HttpOnly" in cookie


def test_every_response_has_the_security_headers(client: TestClient) -> None:
    for response in (
        client.get("/"),
        client.get("/", headers={"Host": "evil.example"}),
        client.get("/gradio_api/file=https%3A%2F%2Fintranet-wiki.corp.example%2Fx"),
    ):
        assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


def test_remote_file_is_refused_before_the_app(client: TestClient) -> None:
    response = client.get("/gradio_api/file=https%3A%2F%2Fintranet-wiki.corp.example%2Fx")
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_a_port_in_use_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(KuraError, match=rf"^cannot listen on 127.0.0.1:{port} \(.+\): choose another --port$"):
            run(FastAPI(), gr.Blocks(), "127.0.0.1", port, lambda: None)
