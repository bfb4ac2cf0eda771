"""The OpenAI-compatible API, the MCP endpoint's gate and the guard's exception for keyed requests, in process
over fake models (the real server with the official clients is in tests/ui/test_api_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest.collection import Collection
from rag.config import Settings
from rag.keys import add_key
from rag.service import Service
from rag.users import add_user
from tests.fakes import ScriptedLLM
from tests.helpers import fake_collection
from ui.access import RateLimiter, bearer
from ui.api import ApiDoors
from ui.openai_api import ChatMessage, split_messages
from ui.server import Guard

URL = "http://127.0.0.1:7860"
LOCAL = ("127.0.0.1", 50000)
REMOTE = ("192.168.1.50", 50000)
VPN = "# VPN\n\nThe company VPN gateway accepts connections on TCP port 4433. Log in with your badge.\n"
SALARIES = "# Salaries\n\nThe salary bands are reviewed every March by the works council.\n"
QUESTION = "Which TCP port does the VPN gateway accept connections on?"


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Settings, Service]:
    settings, embedder = fake_collection(tmp_path, {"vpn.md": VPN})
    secret = tmp_path / "secret-docs"
    secret.mkdir()
    (secret / "salaries.md").write_text(SALARIES)
    Collection(settings, "secret").ingest([secret], embedder)
    settings.ui.collection_access = {"secret": ["alice"], "*": ["alice", "bob"]}
    return settings, Service(settings, embedder, ScriptedLLM(replies=[QUESTION]))


def serve(service: Service, client: tuple[str, int] = LOCAL) -> Iterator[TestClient]:
    doors = ApiDoors(service)
    app = FastAPI(lifespan=doors.lifespan)
    app.add_middleware(Guard, hosts=["127.0.0.1", "localhost"], keyed=doors.keyed)
    doors.install(app)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    def page(path: str) -> dict[str, str]:  # stands in for the Gradio mount
        return {"page": path}

    with TestClient(app, base_url=URL, client=client) as http:
        yield http


@pytest.fixture
def keys(parts: tuple[Settings, Service]) -> dict[str, str]:
    settings, _ = parts
    add_user(settings, "alice", "alice-long-password")
    add_user(settings, "bob", "bob-long-password")
    return {name: add_key(settings, name)[1] for name in ("alice", "bob")}


@pytest.fixture
def api(parts: tuple[Settings, Service]) -> Iterator[TestClient]:
    yield from serve(parts[1])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(model: str = "kura/kura", question: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


def audit_lines(settings: Settings) -> list[dict[str, Any]]:
    folder = settings.resolve(settings.audit.folder)
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]


def sse(text: str) -> list[Any]:
    return [
        line.removeprefix("data: ") if line == "data: [DONE]" else json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


# --- keys, the loopback rule, access ---------------------------------------------------------------
def test_without_users_this_machine_needs_no_key_and_others_are_refused(parts: tuple[Settings, Service]) -> None:
    for http in serve(parts[1]):
        models = http.get("/v1/models", headers=auth("anything")).json()  # the openai client must send one
        assert [m["id"] for m in models["data"]] == ["kura/kura"]  # 'secret' is listed in the rules: not for nobody
    for http in serve(parts[1], REMOTE):
        refused = http.get("/v1/models")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"


def test_with_users_every_request_needs_a_current_key(
    api: TestClient, keys: dict[str, str], parts: tuple[Settings, Service]
) -> None:
    missing = api.post("/v1/chat/completions", json=chat())
    assert missing.status_code == 401
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    wrong = api.get("/v1/models", headers=auth(keys["alice"][:-2] + "xx"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert api.post("/mcp", headers=auth("kura-00000000-nope"), json={}).status_code == 401
    assert api.post("/mcp", json={}).headers["www-authenticate"].startswith("Bearer")
    assert [e["reason"] for e in audit_lines(parts[0])] == ["no key", "invalid key", "invalid key", "no key"]


def test_a_key_sees_and_asks_only_its_users_collections(api: TestClient, keys: dict[str, str]) -> None:
    def models(key: str) -> list[str]:
        return [m["id"] for m in api.get("/v1/models", headers=auth(key)).json()["data"]]

    listed = {name: models(key) for name, key in keys.items()}
    assert listed == {"alice": ["kura/kura", "kura/secret"], "bob": ["kura/kura"]}
    denied = api.post("/v1/chat/completions", headers=auth(keys["bob"]), json=chat("kura/secret", "salary bands?"))
    missing = api.post("/v1/chat/completions", headers=auth(keys["bob"]), json=chat("kura/nothing-here"))
    assert denied.status_code == missing.status_code == 404
    assert denied.json()["error"]["code"] == missing.json()["error"]["code"] == "model_not_found"
    allowed = api.post("/v1/chat/completions", headers=auth(keys["alice"]), json=chat("kura/secret", "salary bands?"))
    assert allowed.status_code == 200


def test_each_key_has_its_rate_and_the_429_says_when_to_retry(parts: tuple[Settings, Service]) -> None:
    settings, service = parts
    settings.api.rate_limit_per_minute = 2
    add_user(settings, "alice", "alice-long-password")
    add_user(settings, "bob", "bob-long-password")
    alice, bob = add_key(settings, "alice")[1], add_key(settings, "bob")[1]
    for http in serve(service):
        assert [http.get("/v1/models", headers=auth(alice)).status_code for _ in range(3)] == [200, 200, 429]
        limited = http.get("/v1/models", headers=auth(alice))
        assert limited.json()["error"]["type"] == "rate_limit_exceeded" and int(limited.headers["retry-after"]) >= 1
        assert "2 requests a minute per key" in limited.json()["error"]["message"]
        assert http.get("/v1/models", headers=auth(bob)).status_code == 200  # another key, its own rate


def test_the_rate_refills_evenly_over_the_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(6)] == [0.0] * 6
    assert limiter.take("k") == pytest.approx(10.0)
    now[0] = 10.0
    assert limiter.take("k") == 0.0 and limiter.take("other") == 0.0


# --- the guard: keyed API requests pass, browsers are still checked --------------------------------
def test_the_guard_lets_keyed_api_requests_through_and_still_stops_browsers(
    api: TestClient, keys: dict[str, str]
) -> None:
    foreign = {"Origin": "https://evil.example"}
    other_host = {"Host": "kura.internal.example:7860"}
    key = auth(keys["alice"])
    assert api.get("/v1/models", headers={**key, **foreign}).status_code == 200  # a web client's own origin
    assert api.get("/v1/models", headers={**key, **other_host}).status_code == 200  # a name not in allowed_hosts
    assert api.get("/v1/models", headers=foreign).status_code == 403  # no key: the browser rules
    assert api.get("/v1/models", headers=other_host).status_code == 400
    assert api.get("/v1/models", headers={**auth("kura-00000000-forged"), **foreign}).status_code == 403
    assert api.post("/upload", headers={**key, **foreign}).status_code == 403  # a key opens no page route
    assert api.get("/", headers={**key, **other_host}).status_code == 400


# --- chat completions --------------------------------------------------------------------------------
def test_a_completion_cites_and_carries_its_sources(api: TestClient, parts: tuple[Settings, Service]) -> None:
    body = api.post("/v1/chat/completions", json=chat()).json()
    assert body["object"] == "chat.completion" and body["model"] == "kura/kura"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "4433" in choice["message"]["content"] and choice["message"]["content"].endswith("[1]")
    kura = body["kura"]
    assert kura["answer_source"] == "extracted" and kura["abstained"] is False and "abstention" not in kura
    source = kura["sources"][0]
    assert {k: source[k] for k in ("n", "file", "page", "heading")} == {"n": 1, "file": "vpn.md", "page": None,
                                                                         "heading": "VPN"}  # fmt: skip
    assert 0 < source["score"] <= 1 and "TCP port 4433" in source["snippet"]
    assert source["evidence"][0]["text"] == "The company VPN gateway accepts connections on TCP port 4433."
    [line] = audit_lines(parts[0])
    assert line["chunks"] == [source["id"]] and line["via"] == "api" and line["abstained"] is False


def test_a_stream_sends_the_pieces_then_the_sources_then_done(api: TestClient) -> None:
    with api.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "4433" in text and text.endswith("[1]")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["kura"]["sources"][0]["n"] == 1


def test_an_abstention_is_an_answer_or_on_request_an_error(api: TestClient) -> None:
    question = "What are the opening hours of the canteen on Sundays?"
    body = api.post("/v1/chat/completions", json=chat(question=question)).json()
    assert body["choices"][0]["message"]["content"] == "I couldn't find this in your documents."
    assert body["kura"]["abstained"] is True
    assert body["kura"]["abstention"]["type"] == "abstained"
    assert body["kura"]["abstention"]["code"].startswith("not_in_documents:")
    refused = api.post("/v1/chat/completions", json=chat(question=question, abstain="error"))
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "abstained"
    with api.stream("POST", "/v1/chat/completions", json=chat(question=question, stream=True, abstain="error")) as r:
        events = sse(r.read().decode())
    assert next(e for e in events if isinstance(e, dict) and "error" in e)["error"]["type"] == "abstained"
    assert not any(isinstance(e, dict) and e.get("choices", [{}])[0].get("delta", {}).get("content") for e in events)


def test_bad_requests_are_one_line_in_openais_error_shape(api: TestClient) -> None:
    cases = [
        b"not json",
        json.dumps({"model": "kura/kura", "messages": []}).encode(),
        json.dumps({"model": "kura/kura", "messages": [{"role": "assistant", "content": "hi"}]}).encode(),
        json.dumps({**chat(), "temperature": 9}).encode(),
    ]
    for body in cases:
        response = api.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and "\n" not in error["message"], error


def test_the_history_comes_from_the_messages(api: TestClient, parts: tuple[Settings, Service]) -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Where is the VPN documented?"},
        {"role": "assistant", "content": "In vpn.md [1]."},
        {"role": "user", "content": [{"type": "text", "text": "Which TCP port does it use?"}]},
    ]
    body = api.post("/v1/chat/completions", json={"model": "kura/kura", "messages": messages}).json()
    assert "4433" in body["choices"][0]["message"]["content"]
    assert audit_lines(parts[0])[-1]["follow_up"] is True


def test_split_messages() -> None:
    def m(role: str, text: str) -> ChatMessage:
        return ChatMessage(role=role, content=text)

    question, history = split_messages([m("system", "s"), m("user", "a"), m("assistant", "A"), m("user", "b"),
                                        m("user", "c"), m("assistant", "C"), m("user", "d")])  # fmt: skip
    assert question == "d" and history == [("a", "A"), ("c", "C")]


def test_bearer() -> None:
    assert bearer("Bearer abc") == bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None and bearer(None) is None and bearer("Bearer ") is None
