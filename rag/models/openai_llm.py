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
        key = os.environ.get(settings.api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, trust_env=False)
        self.name = settings.model or self._first_model()
        self.context_window = settings.context_window or DEFAULT_CONTEXT
        self.device_choice = DeviceChoice(f"server {self.base_url}")

    def _first_model(self) -> str:
        try:
            response = self.client.get("/models")
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise KuraError(
                f"cannot list models at {self.base_url}/models ({type(exc).__name__}); set llm.model, check the server"
            ) from None

    def count_tokens(self, text: str) -> int:
        """No tokenizer here: a deliberately high estimate (3 characters a token) keeps prompts in the window."""
        return len(text) // 3 + 1

    def starts_in_think(self, messages: list[Message]) -> bool:
        return False

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
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
        except httpx.HTTPError as exc:
            raise KuraError(f"the model server at {self.base_url} failed ({type(exc).__name__}: {exc})") from None
