"""The MCP tools in process (the SDK's in-memory client) over fake models, and who ``kura mcp`` acts for.

Over streamable HTTP against a real ``kura serve``, and over stdio against a real ``kura mcp``, they are in
tests/ui/test_api_server.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ingest.collection import Collection
from rag.config import Settings
from rag.errors import KuraError
from rag.keys import add_key
from rag.service import Caller, Service
from rag.users import add_user
from tests.fakes import ScriptedLLM
from tests.helpers import fake_collection
from ui.mcp_server import build_server, stdio_caller

VPN = "# VPN\n\nThe company VPN gateway accepts connections on TCP port 4433. Log in with your badge.\n"


@pytest.fixture
def service(tmp_path: Path) -> Service:
    settings, embedder = fake_collection(tmp_path, {"vpn.md": VPN})
    secret = tmp_path / "secret-docs"
    secret.mkdir()
    (secret / "salaries.md").write_text("# Salaries\n\nThe salary bands are reviewed every March.\n")
    Collection(settings, "secret").ingest([secret], embedder)
    settings.ui.collection_access = {"secret": ["alice"], "*": ["alice", "bob"]}
    return Service(settings, embedder, ScriptedLLM())


def calls(service: Service, user: str, *tools: tuple[str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with Client(build_server(service, Caller(user, "mcp", address="stdio"))) as client:
            return [await client.call_tool(name, arguments) for name, arguments in tools]

    return asyncio.run(run())


def test_the_tools_answer_search_and_list_for_the_caller(service: Service) -> None:
    listed, asked, searched = calls(
        service,
        "alice",
        ("list_collections", {}),
        ("ask", {"collection": "kura", "question": "Which TCP port does the VPN gateway use?"}),
        ("search", {"collection": "kura", "query": "VPN port", "k": 1}),
    )
    assert listed.structured_content == {"collections": ["kura", "secret"]}
    answer = asked.structured_content
    assert "4433" in answer["answer"] and answer["answer"].endswith("[1]") and answer["abstained"] is False
    assert answer["sources"][0]["file"] == "vpn.md" and answer["sources"][0]["evidence"]
    [hit] = searched.structured_content["results"]
    assert hit["file"] == "vpn.md" and hit["heading"] == "VPN" and "4433" in hit["text"] and hit["n"] == 1


def test_a_collection_the_caller_may_not_use_is_a_tool_error(service: Service) -> None:
    listed, asked, searched = calls(
        service,
        "bob",
        ("list_collections", {}),
        ("ask", {"collection": "secret", "question": "When are salary bands reviewed?"}),
        ("search", {"collection": "secret", "query": "salary"}),
    )
    assert listed.structured_content == {"collections": ["kura"]}
    for result in (asked, searched):
        assert result.is_error and "no collection named 'secret' that you may use" in result.content[0].text
    from rag.audit import read_events

    refused = [(e["event"], e["user"], e["via"]) for e in read_events(service.settings) if "refused" in e]
    assert refused == [("question", "bob", "mcp"), ("search", "bob", "mcp")]


def test_kura_mcp_acts_for_the_key_in_its_environment(tmp_path: Path) -> None:
    settings: Settings
    settings, _ = fake_collection(tmp_path, {"vpn.md": VPN})
    assert stdio_caller(settings, None) == Caller(None, "mcp", None, "stdio")  # no users: this machine's person
    add_user(settings, "alice", "alice-long-password")
    with pytest.raises(KuraError, match="set KURA_API_KEY"):
        stdio_caller(settings, None)
    with pytest.raises(KuraError, match="KURA_API_KEY is not a current API key"):
        stdio_caller(settings, "kura-00000000-nope")
    key_id, key = add_key(settings, "alice")
    assert stdio_caller(settings, key) == Caller("alice", "mcp", key_id, "stdio")
