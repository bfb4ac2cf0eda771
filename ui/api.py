"""The doors ``kura serve`` opens for other programs beside the page: the OpenAI-compatible API at ``/v1``
and MCP at ``/mcp``, both behind one :class:`~ui.access.ApiGate` (keys, the loopback rule, the rate limit)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Scope

from rag.service import Service
from ui.access import API_PATHS, ApiGate
from ui.mcp_server import McpEndpoint
from ui.openai_api import OpenAIApi


class ApiDoors:
    """The routes, their lifespan (MCP's session manager) and the guard's exception for keyed API requests."""

    def __init__(self, service: Service) -> None:
        self.gate = ApiGate(service.settings, service.audit)
        self.openai = OpenAIApi(service, self.gate)
        self.mcp = McpEndpoint(service, self.gate)

    def install(self, app: Any) -> None:
        """Add the routes to ``app`` (before the page's mount, which takes every other path)."""
        app.include_router(self.openai.router())
        for path in ("/mcp", "/mcp/"):
            app.router.routes.append(Route(path, self.mcp, methods=["GET", "POST", "DELETE"]))

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        async with self.mcp.lifespan():
            yield

    def keyed(self, scope: Scope) -> bool:
        """An API or MCP request carrying a valid key: not a browser's (a page cannot add this header to a
        cross-site request without a CORS preflight, which carries none), so the guard's Host and Origin
        checks, which stop other websites acting through a visitor's browser, do not apply to it."""
        path = scope.get("path", "")
        if not path.startswith(API_PATHS):
            return False
        return self.gate.key_is_valid(Headers(scope=scope).get("authorization"))
