"""The OpenAI-compatible API of ``kura serve``: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Chat front-ends (Open WebUI, LibreChat), IDE assistants and scripts speak this API. Each collection the
caller may use is a model named ``kura/<collection>``; a chat completion answers the last user message from
that collection through the same chain as the page and the CLI (``Service.ask``, so the same settings,
access rule and audit), with the earlier user/assistant turns as its history. The text carries ``[n]``
citations; the sources behind them (file, page, heading, score, snippet, evidence) are in the extra field
``kura`` of the completion (and of the last chunk of a stream). docs/api.md describes both.

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the HTTP status an
OpenAI client expects (401, 403-like 404 for a model the caller may not use, 429, 400). An abstention is a
normal answer (the abstain message, which chat front-ends show as a reply) whose ``kura.abstention`` is in
that error shape; a request with ``"abstain": "error"`` gets it as an HTTP 422 error instead.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.answer import Answer
from rag.errors import KuraError
from rag.models.llm import Stop
from rag.prompt import Turn
from rag.service import AccessDenied, Caller, Service, source_rows
from ui.access import ApiGate, Refusal

log = logging.getLogger("kura.api")
MODEL_PREFIX = "kura/"
MAX_TOKENS = 4096


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The text of a message; content parts other than text (images) are left out."""
        if isinstance(self.content, list):
            return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The fields Kura uses; the rest of OpenAI's (n, top_p, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    k: int | None = Field(default=None, ge=1, le=100)  # sources to retrieve (Kura's own; extra_body)
    abstain: Literal["answer", "error"] = "answer"


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def refusal_response(refusal: Refusal) -> JSONResponse:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else None
    return JSONResponse(error_body(refusal.message, refusal.type, refusal.code), refusal.status, headers=headers)


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last message, from the user) and the earlier (question, answer) pairs.

    System messages are left out: Kura's own prompt decides how answers are written.
    """
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise Refusal(400, "the last message must be the user's question", "invalid_request_error", "invalid_messages")
    history: list[Turn] = []
    pending: str | None = None
    for message in turns[:-1]:
        if message.role == "user":
            pending = message.text()
        elif pending is not None:
            history.append((pending, message.text()))
            pending = None
    return turns[-1].text().strip(), history


def collection_of(model: str) -> str:
    return model.removeprefix(MODEL_PREFIX)


def kura_field(answer: Answer) -> dict[str, Any]:
    """The extra field: the sources behind the [n], how the answer was made, and an abstention's reason."""
    field: dict[str, Any] = {
        "sources": source_rows(answer),
        "answer_source": answer.answer_source,
        "abstained": answer.abstained,
        "timings_ms": {"retrieve": answer.timings.retrieve_ms, "total": answer.timings.total_ms},
    }
    if declined(answer):
        field["abstention"] = abstention(answer)["error"]
    return field


def declined(answer: Answer) -> bool:
    """Kura abstained, or the model itself replied that the documents do not say (``abstain_reason`` model)."""
    return answer.abstained or answer.abstain_reason is not None


def abstention(answer: Answer) -> dict[str, Any]:
    return error_body(answer.answer, "abstained", f"not_in_documents:{answer.abstain_reason or 'evidence'}")


def final(events: Iterator[Any]) -> Answer:
    """The done event's answer, the stream read to its end (where the question is audited)."""
    answer = None
    for event in events:
        answer = event.answer or answer
    if answer is None:
        raise RuntimeError("the answer stream ended without a result")
    return answer


class OpenAIApi:
    """The routes, over one :class:`Service` and one :class:`ApiGate`."""

    def __init__(self, service: Service, gate: ApiGate) -> None:
        self.service = service
        self.gate = gate

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/v1/models", self.models, methods=["GET"])
        router.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])
        return router

    def caller(self, request: Request) -> Caller:
        address = request.client.host if request.client else None
        return self.gate.check(request.headers.get("authorization"), address, "api")

    async def models(self, request: Request) -> JSONResponse:
        try:
            caller = self.caller(request)
        except Refusal as refusal:
            return refusal_response(refusal)
        names = await run_in_threadpool(self.service.collections, caller.user)
        data = [{"id": f"{MODEL_PREFIX}{name}", "object": "model", "created": 0, "owned_by": "kura"} for name in names]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Any:
        try:
            caller = self.caller(request)
            body = await self.parse(request)
            question, history = split_messages(body.messages)
            name = collection_of(body.model)
            try:
                await run_in_threadpool(self.service.admit, caller, name, "question")
            except AccessDenied:
                message = f"no model '{body.model}' that you may use; GET /v1/models lists yours"
                raise Refusal(404, message, "invalid_request_error", "model_not_found") from None
        except Refusal as refusal:
            return refusal_response(refusal)
        limit = body.max_completion_tokens or body.max_tokens
        options = {
            "k": body.k,
            "temperature": body.temperature,
            "max_new_tokens": min(limit, MAX_TOKENS) if limit else None,
        }
        reply = Reply(body.model, body.abstain)
        if body.stream:
            stop = Stop()
            events = self.service.ask(caller, name, question, history, stop=stop, **options)
            return StreamingResponse(reply.stream(events, stop), media_type="text/event-stream")
        return await run_in_threadpool(reply.whole, self.service, caller, name, question, history, options)

    async def parse(self, request: Request) -> ChatRequest:
        try:
            return ChatRequest.model_validate(json.loads(await request.body()))
        except (ValueError, ValidationError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else None
            where = ".".join(str(p) for p in first["loc"]) if first else None
            what = f"{where}: {first['msg']}" if first else "the body is not JSON"
            raise Refusal(400, f"bad request: {what}", "invalid_request_error", "invalid_request") from None


class Reply:
    """One completion's envelope: its id, creation time and model, in the whole and the streamed form."""

    def __init__(self, model: str, abstain: str) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model
        self.abstain = abstain

    def whole(
        self, service: Service, caller: Caller, name: str, question: str, history: list[Turn], options: dict[str, Any]
    ) -> JSONResponse:
        try:
            answer = final(service.ask(caller, name, question, history, **options))
        except KuraError as exc:
            return JSONResponse(error_body(str(exc), "invalid_request_error", "kura_error"), 400)
        except Exception as exc:
            log.exception("answering failed")
            message = f"answering failed ({type(exc).__name__}); see the server log"
            return JSONResponse(error_body(message, "server_error", "internal_error"), 500)
        if declined(answer) and self.abstain == "error":
            return JSONResponse(abstention(answer), 422)
        return JSONResponse(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
                ],
                "kura": kura_field(answer),
            }
        )

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def stream(self, events: Iterator[Any], stop: Stop) -> Iterator[str]:
        """Server-sent events: the role, the answer's pieces, a last chunk with ``kura``, then ``[DONE]``.

        A failure midway is an ``error`` event in OpenAI's shape (the official client raises it). Reasoning
        pieces are not sent: the text is the answer's. A client that goes away stops the model. With
        ``abstain: error`` the text is held back until the answer is known not to be an abstention.
        """
        yield self.chunk({"role": "assistant", "content": ""})
        held: list[str] = []
        try:
            for event in events:
                if event.kind == "answer" and event.text:
                    if self.abstain == "error":
                        held.append(event.text)
                    else:
                        yield self.chunk({"content": event.text})
                elif event.answer is not None:
                    if declined(event.answer) and self.abstain == "error":
                        yield f"data: {json.dumps(abstention(event.answer))}\n\n"
                        continue
                    if held:
                        yield self.chunk({"content": "".join(held)})
                    yield self.chunk({}, "stop", kura=kura_field(event.answer))
        except KuraError as exc:
            yield f"data: {json.dumps(error_body(str(exc), 'invalid_request_error', 'kura_error'))}\n\n"
        except Exception as exc:
            log.exception("answering failed")
            message = f"answering failed ({type(exc).__name__}); see the server log"
            yield f"data: {json.dumps(error_body(message, 'server_error', 'internal_error'))}\n\n"
        finally:
            stop.set()
            close = getattr(events, "close", None)
            if close is not None:
                close()
        yield "data: [DONE]\n\n"
