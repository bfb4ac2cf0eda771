"""Servers Kura talks to: URLs shown without user or password, a secret never sent in clear to another machine,
and a Chroma or model server that is down (or dies mid-ingest) reported in one line, with nothing left behind.

The Chroma servers here are real ``chroma run`` processes (killed by the test); the model server is a real
closed port. The embedder and LLM are the fakes: what is tested is Kura's handling, not the models. The same
through the real CLI is tests/reliability/test_transport_cli.py.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ingest.collection import Collection
from rag.config import LLMSettings, load_settings
from rag.errors import KuraError
from rag.models.llm import GenerationOptions, complete
from rag.models.openai_llm import OpenAICompatibleLLM
from rag.store import connect
from rag.urls import is_loopback, redact, sends_in_clear
from tests.conftest import write_config
from tests.fakes import HashEmbedder, ScriptedLLM
from tests.helpers import free_port, snapshot, start_chroma, write_corpus
from ui import render
from ui.app import KuraApp

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://kura:hunter2@models.example/v1", "https://models.example/v1"),
        ("https://kura:p@ss@models.example:8443/v1?x=1", "https://models.example:8443/v1?x=1"),
        ("http://token@127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://kura:hunter2@[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://kura:hunter2@host:port/v1", "<unparsable URL>"),
    ],
)
def test_redact_drops_user_and_password(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    ("url", "clear"),
    [
        ("http://models.example/v1", True),
        ("http://10.0.0.5:8000/v1", True),
        ("http://127.0.0.1:8000/v1", False),
        ("http://127.8.9.10/v1", False),
        ("http://localhost:8000/v1", False),
        ("http://models.localhost/v1", False),
        ("http://[::1]:8000/v1", False),
        ("https://models.example/v1", False),
    ],
)
def test_plain_http_counts_as_clear_only_off_this_machine(url: str, clear: bool) -> None:
    assert sends_in_clear(url) is clear
    assert is_loopback(None) is False


def openai(base_url: str, **values: Any) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(LLMSettings(backend="openai", base_url=base_url, model="m", **values))


def test_a_key_over_plain_http_to_another_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURA_OPENAI_API_KEY", "sk-secret-key")
    with pytest.raises(KuraError) as refused:
        openai("http://models.example/v1")
    assert str(refused.value) == (
        "llm.base_url http://models.example/v1 is plain http to another machine, so the API key "
        "($KURA_OPENAI_API_KEY) would cross the network unencrypted; use https, or set "
        "llm.allow_insecure_http: true if you trust that network"
    )
    for allowed in ("https://models.example/v1", "http://127.0.0.1:9/v1", "http://localhost:9/v1", "http://[::1]:9/v1"):
        assert openai(allowed).client.headers["Authorization"] == "Bearer sk-secret-key"
    assert openai("http://models.example/v1", allow_insecure_http=True).name == "m"
    monkeypatch.delenv("KURA_OPENAI_API_KEY")
    assert openai("http://models.example/v1").name == "m"  # nothing secret to send
    with pytest.raises(KuraError, match="so the password in it would cross") as password:
        openai(f"http://kura:{SECRET}@models.example/v1")
    assert SECRET not in str(password.value)
    with pytest.raises(KuraError, match=r"llm.base_url <unparsable URL> is not a valid URL"):
        openai(f"http://kura:{SECRET}@[::1/v1")


def test_user_and_password_never_reach_the_page_footer_or_doctor(tmp_path: Path) -> None:
    llm = openai(f"https://kura:{SECRET}@models.example/v1")
    assert llm.device_choice.device == "server https://models.example/v1"
    settings = load_settings(write_config(tmp_path))
    app = KuraApp(settings, HashEmbedder(), llm, None, login=False)
    footer = render.footer({"model": llm.name, "device": llm.device_choice.device, "timings": {}})
    shown = [app.status(), footer, llm.device_choice.explain()]  # header, every answer's footer, `kura doctor`
    assert all("models.example/v1" in text and SECRET not in text for text in shown), shown


def test_a_model_server_that_is_down_is_one_line_without_credentials() -> None:
    url = f"http://kura:{SECRET}@127.0.0.1:{free_port()}/v1"
    expected = f"cannot reach the model server at {redact(url)} (connection refused); is it running? (llm.base_url)"
    with pytest.raises(KuraError) as listing:
        OpenAICompatibleLLM(LLMSettings(backend="openai", base_url=url))
    assert str(listing.value) == expected
    with pytest.raises(KuraError) as generating:
        complete(openai(url), [{"role": "user", "content": "hi"}], GenerationOptions(max_new_tokens=4))
    assert str(generating.value) == expected


def test_a_chroma_server_that_is_down_is_one_line_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    settings = load_settings(write_config(tmp_path, vectorstore={"url": f"http://kura:{SECRET}@127.0.0.1:{port}"}))
    with pytest.raises(KuraError) as refused:
        connect(settings)
    assert str(refused.value) == (
        f"cannot reach the Chroma server at http://127.0.0.1:{port} (connection refused); "
        "is `chroma run` running there?"
    )


class KillingEmbedder(HashEmbedder):
    """Kills the Chroma server when asked for its ``nth`` batch of vectors: an outage in the middle of a write."""

    def __init__(self, server: subprocess.Popen, nth: int) -> None:
        super().__init__()
        self.server, self.nth, self.calls = server, nth, 0

    def embed(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.nth:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait()
        return super().embed(*args, **kwargs)


def test_chroma_killed_mid_ingest_is_one_line_and_the_rerun_completes(tmp_path: Path) -> None:
    data = tmp_path / "chroma"
    data.mkdir()
    server, url = start_chroma(data)
    try:
        # groups of 64 chunks: three of them, so the kill lands between writes
        config = write_config(tmp_path, vectorstore={"url": url}, ingest={"embed_group_chunks": 64})
        settings = load_settings(config)
        docs = write_corpus(tmp_path / "docs", files=60)
        with pytest.raises(KuraError) as outage:
            Collection(settings).ingest([docs], KillingEmbedder(server, nth=2))
        assert str(outage.value) == (
            f"cannot reach the Chroma server at {url} (connection refused); is `chroma run` running there?"
        )
        server, _ = start_chroma(data, port=int(url.rsplit(":", 1)[1]))
        report = Collection(settings).ingest([docs], HashEmbedder())
        chunks, rows = snapshot(config)  # nothing pending; every committed file has its chunks
        assert len(rows) == 60 and len(chunks) == sum(row[-1] for row in rows)
        assert report.counts()["added"] + report.counts().get("unchanged", 0) == 60
    finally:
        server.kill()
        server.wait(timeout=30)


def test_web_upload_during_a_chroma_outage_leaves_no_staged_copy(tmp_path: Path) -> None:
    data = tmp_path / "chroma"
    data.mkdir()
    server, url = start_chroma(data)
    try:
        settings = load_settings(write_config(tmp_path, vectorstore={"url": url}))
        app = KuraApp(settings, KillingEmbedder(server, nth=1), ScriptedLLM(), None, login=False)
        upload = tmp_path / "gradio-copy.md"
        upload.write_text("# Note\n\nThe loading dock opens at seven.\n")
        with pytest.raises(KuraError, match="cannot reach the Chroma server"):
            app.upload([str(upload)], "kura", None, progress=lambda *args, **kwargs: None)  # type: ignore[arg-type]
        assert [p for p in (tmp_path / "up").rglob("*") if p.is_file()] == []
    finally:
        server.kill()
        server.wait(timeout=30)
