"""The API and MCP of a real ``kura serve`` on 127.0.0.1 (and a real ``kura mcp``) with the official clients:
the ``openai`` client, streaming and not, and the ``mcp`` SDK's client over streamable HTTP and over stdio.

The server is tests/ui/conftest.py's: the sample corpus as 'kura', the restricted 'secret' (only alice), users
alice and bob. Keys are made and removed with the real CLI; the session's audit lines are read back with
``kura audit --json`` and checked field by field. The API's own logic on fake models: tests/ui/test_api.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KURA, run_kura
from tests.helpers import Server, start_server
from tests.ui.conftest import PASSWORDS

pytestmark = pytest.mark.slow

PORT_QUESTION = "Which internal phone extension reaches the IT Service Desk?"
VAULT_QUESTION = "What is the vault code?"
CITATION = re.compile(r"\[\d+\]")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cli(config: Path, *args: str) -> str:
    done = run_kura(*args, "--config", str(config))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def keys(store_folder: Path) -> dict[str, str]:
    """A key each for alice and bob, and one of alice's made and removed again, all with the CLI."""
    config = store_folder / "config.yaml"
    made = {name: json.loads(cli(config, "users", "key", "add", name, "--json")) for name in ("alice", "bob")}
    gone = json.loads(cli(config, "users", "key", "add", "alice", "--json"))
    assert f"removed API key {gone['id']} of alice" in cli(config, "users", "key", "rm", gone["id"])
    listed = json.loads(cli(config, "users", "key", "list", "--json"))
    assert sorted(row["id"] for row in listed) == sorted(k["id"] for k in made.values())
    stored = (store_folder / "data" / "api_keys.json").read_text()
    assert all(k["key"] not in stored for k in made.values())
    return {**{name: k["key"] for name, k in made.items()}, "removed": gone["key"], "ids": made}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def site(store_folder: Path, keys: dict[str, Any]) -> Iterator[Server]:
    server = start_server(store_folder / "config.yaml", store_folder, "api")
    yield server
    server.stop()


def openai_client(site: Server, key: str) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=f"{site.url}v1", api_key=key, max_retries=0)


def test_the_openai_client_lists_the_callers_collections_and_answers(site: Server, keys: dict[str, Any]) -> None:
    alice, bob = openai_client(site, keys["alice"]), openai_client(site, keys["bob"])
    assert [m.id for m in alice.models.list().data] == ["kura/kura", "kura/secret"]
    assert [m.id for m in bob.models.list().data] == ["kura/kura"]

    reply = alice.chat.completions.create(model="kura/secret", messages=[{"role": "user", "content": VAULT_QUESTION}])
    text = reply.choices[0].message.content
    assert "4711" in text and "[1]" in text and reply.choices[0].finish_reason == "stop"
    kura = reply.model_extra["kura"]
    assert kura["abstained"] is False and kura["answer_source"] == "extracted"
    assert kura["sources"][0]["file"] == "vault.md" and kura["sources"][0]["heading"] == "Vault"
    assert "4711" in kura["sources"][0]["snippet"] and kura["sources"][0]["evidence"]

    stream = bob.chat.completions.create(
        model="kura/kura", stream=True, messages=[{"role": "user", "content": PORT_QUESTION}]
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "4357" in streamed and CITATION.search(streamed) and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["kura"]["sources"][0]["n"] == 1


def test_the_openai_client_is_refused_without_a_key_and_across_collections(site: Server, keys: dict[str, Any]) -> None:
    import openai

    question = [{"role": "user", "content": VAULT_QUESTION}]
    for key in ("", "not-a-key", keys["removed"]):
        with pytest.raises(openai.AuthenticationError):
            openai_client(site, key or "none").models.list()
    with pytest.raises(openai.NotFoundError, match="no model 'kura/secret' that you may use"):
        openai_client(site, keys["bob"]).chat.completions.create(model="kura/secret", messages=question)


def mcp_calls(client_source: Any, *tools: tuple[str, dict[str, Any]]) -> list[Any]:
    from mcp import Client

    async def run() -> list[Any]:
        async with Client(client_source()) as client:
            names = sorted(tool.name for tool in (await client.list_tools()).tools)
            assert names == ["ask", "list_collections", "search"]
            return [await client.call_tool(name, arguments) for name, arguments in tools]

    return asyncio.run(run())


def over_http(site: Server, key: str | None) -> Any:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return lambda: streamable_http_client(f"{site.url}mcp", http_client=create_mcp_http_client(headers=headers))


def test_mcp_over_streamable_http_with_the_callers_access(site: Server, keys: dict[str, Any]) -> None:
    listed, asked, searched = mcp_calls(
        over_http(site, keys["alice"]),
        ("list_collections", {}),
        ("ask", {"collection": "secret", "question": VAULT_QUESTION}),
        ("search", {"collection": "kura", "query": "IT Service Desk phone extension", "k": 3}),
    )
    assert listed.structured_content == {"collections": ["kura", "secret"]}
    assert "4711" in asked.structured_content["answer"] and asked.structured_content["sources"][0]["file"] == "vault.md"
    results = searched.structured_content["results"]
    assert len(results) == 3 and [r["n"] for r in results] == [1, 2, 3]
    assert all({"file", "page", "heading", "score", "text", "id"} <= set(r) for r in results)

    [denied] = mcp_calls(over_http(site, keys["bob"]), ("ask", {"collection": "secret", "question": VAULT_QUESTION}))
    assert denied.is_error and "no collection named 'secret' that you may use" in denied.content[0].text
    with pytest.raises(BaseException):  # noqa: B017 - 401 before any MCP message: the client cannot connect
        mcp_calls(over_http(site, None), ("list_collections", {}))


def test_kura_mcp_over_stdio_acts_for_its_key(store_folder: Path, keys: dict[str, Any]) -> None:
    from mcp import StdioServerParameters

    env = {"KURA_API_KEY": keys["bob"], "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    params = StdioServerParameters(command=KURA, args=["mcp", "--config", str(store_folder / "config.yaml")], env=env)
    listed, asked, denied = mcp_calls(
        lambda: __import__("mcp").client.stdio.stdio_client(params),
        ("list_collections", {}),
        ("ask", {"collection": "kura", "question": PORT_QUESTION}),
        ("search", {"collection": "secret", "query": "vault"}),
    )
    assert listed.structured_content == {"collections": ["kura"]}
    assert "4357" in asked.structured_content["answer"] and CITATION.search(asked.structured_content["answer"])
    assert denied.is_error


def login(site: Server, name: str, password: str) -> int:
    form = urllib.parse.urlencode({"username": name, "password": password}).encode()
    try:
        with _NO_PROXY.open(urllib.request.Request(f"{site.url}login", data=form), timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_sessions_audit_lines_field_by_field(site: Server, store_folder: Path, keys: dict[str, Any]) -> None:
    """Runs last: the questions above, two logins, then the whole log read back with `kura audit --json`."""
    assert login(site, "alice", PASSWORDS["alice"]) == 200
    assert login(site, "alice", "not-her-password") >= 400
    config = store_folder / "config.yaml"
    events = json.loads(cli(config, "audit", "--json"))
    ids = keys["ids"]

    created = [e for e in events if e["event"] == "key_created"]
    assert [(e["user"], e["via"]) for e in created] == [("alice", "cli"), ("bob", "cli"), ("alice", "cli")]
    [removed] = [e for e in events if e["event"] == "key_removed"]
    assert removed["user"] == "alice" and removed["key"] == created[2]["key"]

    api = [e for e in events if e["event"] == "question" and e["via"] == "api"]
    vault, port, refused = api
    assert set(vault) == {"time", "event", "user", "via", "key", "address", "collection", "follow_up", "chunks",
                          "answer_source", "abstained", "latency_ms"}  # fmt: skip  # no question or answer text
    assert (vault["user"], vault["key"], vault["address"], vault["collection"]) == (
        "alice", ids["alice"]["id"], "127.0.0.1", "secret",
    )  # fmt: skip
    assert vault["answer_source"] == "extracted" and vault["abstained"] is False and vault["follow_up"] is False
    assert len(vault["chunks"]) >= 1 and all(len(c) == 32 for c in vault["chunks"]) and vault["latency_ms"] > 0
    assert (port["user"], port["collection"], port["key"]) == ("bob", "kura", ids["bob"]["id"])
    assert (refused["user"], refused["collection"]) == ("bob", "secret") and "refused" in refused
    assert "chunks" not in refused

    asked = [e for e in events if e["event"] in ("question", "search")]
    mcp = [(e["event"], e["user"], e["collection"], "refused" in e) for e in asked if e["via"] == "mcp"]
    assert mcp == [
        ("question", "alice", "secret", False),
        ("search", "alice", "kura", False),
        ("question", "bob", "secret", True),
        ("question", "bob", "kura", False),  # kura mcp over stdio, as bob's key
        ("search", "bob", "secret", True),
    ]
    failed = [e for e in events if e["event"] == "auth_failed"]
    assert {e["reason"] for e in failed} == {"no key", "invalid key"} and all(e["via"] for e in failed)
    logins = [(e["user"], e["ok"], e["via"]) for e in events if e["event"] == "login"]
    assert logins == [("alice", True, "web"), ("alice", False, "web")]

    everything = json.dumps(events)
    assert VAULT_QUESTION not in everything and PORT_QUESTION not in everything and "4711" not in everything
    assert VAULT_QUESTION not in site.output() and PORT_QUESTION not in site.output()  # nor in the server's log
    bob_only = json.loads(cli(config, "audit", "--json", "--user", "bob"))
    assert bob_only and {e["user"] for e in bob_only} == {"bob"}
    assert json.loads(cli(config, "audit", "--json", "--since", "2999-01-01")) == []
