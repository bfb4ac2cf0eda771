"""Kura's own web app: a FastAPI app that serves the Gradio page behind a guard, run by uvicorn.

Gradio on its own trusts any Host header (DNS rebinding reaches a loopback server), grants credentialed CORS
to any Origin, sets its login cookie ``SameSite=None`` and sends no security headers (issue 15). The guard
runs before Gradio sees a request, so none of that depends on Gradio's own checks. Kura's own routes (the
API) are added to the app :func:`create_app` builds, before the Gradio mount, which takes every other path.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import gradio as gr
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.config import Settings
from rag.errors import KuraError
from ui import render
from ui.api import ApiDoors

THEME = gr.themes.Default(
    primary_hue="teal",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],  # system fonts: no font download
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)
AUTH_MESSAGE = "Kura: log in with the name and password you were given for this server."
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",  # no other site may frame the page (clickjacking)
    "X-Frame-Options": "DENY",  # the same for browsers without CSP 3
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DEFAULT_PORTS = {"http": 80, "https": 443}
# Gradio fetches any http(s) URL named after file= (and proxies Spaces after proxy=): Kura serves neither.
REMOTE_FETCH = re.compile(r"/gradio_api/(file|proxy)=(.*)", re.DOTALL)
SAME_SITE_NONE = re.compile(r";\s*samesite=none", re.IGNORECASE)
SHUTDOWN_GRACE_S = 3  # open event streams would otherwise hold Ctrl-C until every browser tab closes


def allowed_hosts(settings: Settings, bind_host: str) -> frozenset[str]:
    """The names a request's Host may carry: ``ui.allowed_hosts``, or the bind address and this machine's."""
    names = settings.ui.allowed_hosts or [bind_host, *LOCAL_NAMES]
    return frozenset(name.strip("[]").lower() for name in names)


def serves_every_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def host_and_port(value: str, default_port: int | None) -> tuple[str, int | None] | None:
    """``name``, ``name:port``, ``[v6]`` or ``[v6]:port``, split; None when it is none of those."""
    try:
        parts = urlsplit(f"//{value}")
        if not parts.hostname or parts.netloc != value or "@" in value:
            return None
        return parts.hostname, parts.port or default_port
    except ValueError:
        return None


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` names the server the request reached (its ``Host``, already trusted).

    The scheme is not compared: behind a TLS proxy the page is ``https`` while Kura hears plain http.
    """
    try:
        parts = urlsplit(origin)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False
    return host_and_port(host, DEFAULT_PORTS[parts.scheme]) == (parts.hostname, port)


def fetches_remote(path: str) -> bool:
    """A Gradio route that would resolve and connect to a name from the request (``file=<URL>``, ``proxy=``)."""
    found = REMOTE_FETCH.fullmatch(path)
    if found is None:
        return False
    if found[1] == "proxy":
        return True
    target = found[2]
    while (decoded := unquote(target)) != target:  # Gradio may decode once more; judge what it would see
        target = decoded
    parts = urlsplit(target.replace("\\", "/"))
    return bool(parts.netloc) or len(parts.scheme) > 1 or target.startswith(("//", "\\\\"))


class Guard:
    """Refuses before Gradio: an unknown Host (400), a foreign Origin (403), a remote ``file=`` (403).

    Browsers send ``Origin`` with every POST and every cross-origin fetch, so refusing a foreign one covers
    uploads, deletes, API calls, the login and the token; a plain link into Kura carries none and still works.
    Every response gets the security headers, loses any CORS grant (Kura serves only its own page), and its
    cookies become ``SameSite=Lax``: no other site's request carries the login.
    """

    def __init__(self, app: ASGIApp, hosts: Iterable[str], keyed: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.keyed = keyed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif refusal is not None:
            await PlainTextResponse(refusal[1], refusal[0])(scope, receive, functools.partial(_harden, send))
        else:
            await self.app(scope, receive, functools.partial(_harden, send))

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why a request is refused, or None. An API or MCP request with a valid key (``keyed``) passes:
        it is a program's, not a browser's, and the key says who it is (``ui.api.ApiDoors.keyed``)."""
        if self.keyed is not None and self.keyed(scope):
            return None
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        named = host_and_port(host, None)
        if named is None or named[0] not in self.hosts:
            return 400, "unknown host: open Kura by a name in ui.allowed_hosts"
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, host):
            return 403, "refused: this request comes from another website"
        if fetches_remote(scope["path"]):
            return 403, "refused: Kura serves only its own files"
        return None


async def _harden(send: Send, message: Message) -> None:
    if message["type"] == "http.response.start":
        headers = MutableHeaders(scope=message)
        for name in {key for key in headers if key.startswith("access-control-")}:
            del headers[name]
        cookies = [SAME_SITE_NONE.sub("; SameSite=lax", value) for value in headers.getlist("set-cookie")]
        if cookies:
            del headers["set-cookie"]
            for cookie in cookies:
                headers.append("set-cookie", cookie)
        headers.update(SECURITY_HEADERS)
    await send(message)


def create_app(
    settings: Settings,
    demo: gr.Blocks,
    host: str,
    port: int,
    auth: Callable[[str, str], Any] | None,
    doors: ApiDoors | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The guarded app with the API and MCP (``doors``), Kura's own ``routers`` (the verify view's), and the
    page mounted at ``/`` after them (the mount takes every other path); run history off (it would keep
    answers in the browser)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=doors.lifespan if doors else None)
    app.add_middleware(Guard, hosts=allowed_hosts(settings, host), keyed=doors.keyed if doors else None)
    if doors is not None:
        doors.install(app)
    for router in routers:
        app.include_router(router)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message=AUTH_MESSAGE,
        footer_links=[],  # no "Use via API", "Built with Gradio" or Settings: developer items (issue 18)
        run_history=False,
        ssr_mode=False,
        enable_monitoring=False,
        mcp_server=False,
        max_file_size=f"{settings.ui.max_upload_mb}mb",
        theme=THEME,
        css=render.CSS,
    )


class _Server(uvicorn.Server):
    def __init__(self, app: FastAPI, demo: gr.Blocks, on_ready: Callable[[], None]) -> None:
        super().__init__(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S))
        self.app = app
        self.demo = demo
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Gradio's queue and session streams end first: uvicorn would otherwise cancel them mid-response and
        log each as a traceback. The served Gradio app's ``stop_event`` ends the session streams; the one
        ``demo.close()`` sets belongs to another instance when the app is mounted rather than launched."""
        self.demo.close()
        for route in self.app.routes:
            if isinstance(route, Mount) and hasattr(route.app, "stop_event"):
                route.app.stop_event.set()
        await super().shutdown(sockets)


def run(app: FastAPI, demo: gr.Blocks, host: str, port: int, on_ready: Callable[[], None]) -> None:
    """Serve in this thread until Ctrl-C or SIGTERM; a port that cannot be had is one line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise KuraError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port") from None
    try:
        with listener:
            _Server(app, demo, on_ready).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn stops gracefully, then raises the signal again
        return
