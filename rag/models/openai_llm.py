"""An LLM served by any OpenAI-compatible server (OpenVINO Model Server, vLLM, llama.cpp's server).

For on-prem pilots that outgrow one machine: Kura keeps retrieval, prompts and citation checks, the
server only generates. Streaming uses the chat completions endpoint's server-sent events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx

from rag.config import LLMSettings
from rag.devices import DeviceChoice
from rag.errors import KuraError
from rag.models.llm import GenerationOptions, Message
from rag.urls import has_password, redact, sends_in_clear, transport_reason

DEFAULT_CONTEXT = 4096


class OpenAICompatibleLLM:
    """``llm.backend: openai``: ``llm.base_url`` (e.g. http://127.0.0.1:8000/v1), ``llm.model``, key from env."""

    # Grammar-constrained output is not part of the OpenAI API (servers differ, most ignore it), so copy
    # decoding is not offered here: the answer chain answers in auto mode instead.
    constrains = False
    # The server applies the chat template, so whether it opens a <think> block is not known here: no thinking
    # budget is added, and reasoning the server sends (tags or ``reasoning_content``) is still split off.
    thinks = False

    def __init__(self, settings: LLMSettings, timeout_s: float = 300.0) -> None:
        if not settings.base_url:
            raise KuraError("llm.backend is 'openai' but llm.base_url is not set (e.g. http://127.0.0.1:8000/v1)")
        self.base_url = settings.base_url.rstrip("/")
        self.shown_url = redact(self.base_url)  # what any message, page or log may show: no user or password
        key = os.environ.get(settings.api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            check_secrets_encrypted(self.base_url, key, settings)
            self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, trust_env=False)
        except (httpx.InvalidURL, ValueError):
            raise KuraError(
                f"llm.base_url {self.shown_url} is not a valid URL (e.g. http://127.0.0.1:8000/v1)"
            ) from None
        self.name = settings.model or self._first_model()
        self.context_window = settings.context_window or DEFAULT_CONTEXT
        self.device_choice = DeviceChoice(f"server {self.shown_url}")

    def _unreachable(self, exc: httpx.TransportError) -> KuraError:
        return KuraError(
            f"cannot reach the model server at {self.shown_url} ({transport_reason(exc)}); "
            "is it running? (llm.base_url)"
        )

    def _first_model(self) -> str:
        try:
            response = self.client.get("/models")
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise KuraError(
                f"cannot list models at {self.shown_url}/models ({type(exc).__name__}); set llm.model, check the server"
            ) from None

    def count_tokens(self, text: str) -> int:
        """No tokenizer here: a deliberately high estimate (3 characters a token) keeps prompts in the window."""
        return len(text) // 3 + 1

    def starts_in_think(self, messages: list[Message]) -> bool:
        return False

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        """The server's stream, read until it ends or ``options.stop`` is set (a line read after it is a token)."""
        body = {
            "model": self.name,
            "messages": messages,
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "stream": True,
        }
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise KuraError(f"the model server answered {response.status_code}: {response.text[:200]}")
                for line in response.iter_lines():
                    if options.stop is not None and options.stop.count(1):
                        return  # closing the response drops the connection: the server stops decoding
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    choices = json.loads(data).get("choices") or [{}]
                    delta = choices[0].get("delta", {})
                    # Servers that split reasoning out send it separately; Kura's splitter expects tags.
                    if delta.get("reasoning_content"):
                        yield f"<think>{delta['reasoning_content']}</think>"
                    if delta.get("content"):
                        yield delta["content"]
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        except httpx.HTTPError as exc:  # an error httpx raises from a URL can hold the URL, user and password too
            raise KuraError(f"the model server at {self.shown_url} failed ({type(exc).__name__})") from None


def check_secrets_encrypted(url: str, key: str, settings: LLMSettings) -> None:
    """Refuse to send the API key (or a password in the URL) over plain ``http`` to another machine: anyone on
    the network between could read it. Loopback is fine (a server on this machine); so is an explicit
    ``llm.allow_insecure_http: true`` for a network the user trusts."""
    if not (key or has_password(url)) or settings.allow_insecure_http or not sends_in_clear(url):
        return
    secret = f"the API key (${settings.api_key_env})" if key else "the password in it"
    raise KuraError(
        f"llm.base_url {redact(url)} is plain http to another machine, so {secret} would cross the network "
        "unencrypted; use https, or set llm.allow_insecure_http: true if you trust that network"
    )
