"""Kura's MCP server (the official ``mcp`` SDK): tools ``list_collections``, ``search`` and ``ask``.

The same server runs over streamable HTTP at ``/mcp`` on ``kura serve`` and over stdio as ``kura mcp`` (for
an IDE assistant that starts it). Every tool call goes through :class:`~rag.service.Service`, so access and
the audit log are the page's. Over HTTP the caller is the key of the request (``ui.access``, checked before
the SDK sees the request, and left in the ASGI scope for the tools); over stdio it is the key in
``KURA_API_KEY``, which is needed once users exist, or nobody (this machine only) without users.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from rag.config import Settings
from rag.errors import KuraError
from rag.keys import KeyDirectory
from rag.service import Caller, Service, source_rows
from rag.users import load_users
from ui.access import ApiGate, Refusal

SCOPE_KEY = "kura.caller"
INSTRUCTIONS = (
    "Kura answers questions from private document collections with numbered [n] citations. Call "
    "list_collections first, then ask (a cited answer) or search (the ranked passages with file, page and "
    "heading). An answer that says the documents do not hold it is Kura abstaining: do not answer it yourself."
)


def build_server(service: Service, stdio_caller: Caller | None = None) -> MCPServer:
    """The tools over ``service``; ``stdio_caller`` is who calls when there is no HTTP request (stdio)."""
    server = MCPServer("kura", instructions=INSTRUCTIONS, log_level="WARNING")

    def caller(ctx: Context) -> Caller:
        request = ctx.request_context.request
        scope = getattr(request, "scope", None)
        found = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
        if isinstance(found, Caller):
            return found
        if stdio_caller is not None and request is None:
            return stdio_caller
        raise ToolError("not authenticated")

    @server.tool()
    def list_collections(ctx: Context) -> dict[str, Any]:
        """The document collections you may ask or search, by name."""
        return {"collections": service.collections(caller(ctx).user)}

    @server.tool()
    def search(collection: str, query: str, ctx: Context, k: int = 5) -> dict[str, Any]:
        """The passages of a collection that best match the query, best first, each with its file, page,
        heading, score and text. Use it to read what the documents say; use ask for an answer."""
        try:
            return {"results": service.search(caller(ctx), collection, query, max(1, min(k, 50)))}
        except KuraError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    def ask(collection: str, question: str, ctx: Context) -> dict[str, Any]:
        """A short answer from a collection's documents with [n] citations, and the sources they number.
        ``abstained`` true means the documents do not answer the question."""
        try:
            answer = None
            for event in service.ask(caller(ctx), collection, question):
                answer = event.answer or answer
        except KuraError as exc:
            raise ToolError(str(exc)) from None
        if answer is None:
            raise ToolError("the answer ended without a result")
        return {
            "answer": answer.answer,
            "abstained": answer.abstained,
            "abstain_reason": answer.abstain_reason,
            "answer_source": answer.answer_source,
            "sources": source_rows(answer),
        }

    return server


class McpEndpoint:
    """``/mcp`` on ``kura serve``: the key checked by :class:`ApiGate`, then the SDK's streamable HTTP app.

    Stateless (one transport per POST): the tools need no session, and nothing piles up per client. The
    SDK's own Host/Origin checks are off because Kura's guard (``ui.server.Guard``) makes them for every path.
    """

    def __init__(self, service: Service, gate: ApiGate) -> None:
        self.gate = gate
        self.server = build_server(service)
        self.app = self.server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        client = scope.get("client")
        try:
            scope[SCOPE_KEY] = self.gate.check(authorization, client[0] if client else None, "mcp")
        except Refusal as refusal:
            extra = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else {}
            if refusal.status == 401:
                extra["WWW-Authenticate"] = 'Bearer realm="kura"'
            body = {"error": {"message": refusal.message, "type": refusal.type, "code": refusal.code}}
            await JSONResponse(body, refusal.status, headers=extra)(scope, receive, send)
            return
        await self.app(scope, receive, send)


KEY_ENV = "KURA_API_KEY"


def stdio_caller(settings: Settings, key: str | None) -> Caller:
    """Who ``kura mcp`` acts for: the user of ``key`` (needed once users exist), or nobody without users."""
    if key:
        found = KeyDirectory(settings).user_of(key)
        if found is None:
            raise KuraError(f"{KEY_ENV} is not a current API key; make one with `kura users key add USER`")
        return Caller(found[1], "mcp", found[0], "stdio")
    if load_users(settings):
        raise KuraError(f"this Kura has users: set {KEY_ENV} to a key of yours (`kura users key add USER`)")
    return Caller(None, "mcp", None, "stdio")


def run_stdio(settings: Settings, say: Callable[[str], None]) -> None:
    """``kura mcp``: the key is checked before minutes of model loading; the LLM loads in the background
    (``PendingLLM``), so ``list_collections`` and ``search`` answer before it is ready. Only MCP messages go
    to stdout; everything Kura says goes to stderr."""
    from rag.models.factory import PendingLLM, load_embedder, load_llm

    caller = stdio_caller(settings, os.environ.get(KEY_ENV))
    llm = PendingLLM(lambda: load_llm(settings, say))
    service = Service(settings, load_embedder(settings, say), llm)
    say(f"kura mcp: serving over stdio as {caller.user or 'this machine (no users)'}")
    build_server(service, caller).run("stdio")
