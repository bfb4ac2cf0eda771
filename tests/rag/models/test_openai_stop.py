"""The OpenAI-compatible backend's Stop, over a fake server: it stops reading, which drops the connection."""

from __future__ import annotations

import json

import httpx

from rag.config import LLMSettings
from rag.models.llm import GenerationOptions, Stop
from rag.models.openai_llm import OpenAICompatibleLLM


def sse(pieces: list[str]) -> bytes:
    chunks = [f"data: {json.dumps({'choices': [{'delta': {'content': p}}]})}\n\n" for p in pieces]
    return "".join([*chunks, "data: [DONE]\n\n"]).encode()


def test_stop_ends_the_stream_at_the_next_piece() -> None:
    llm = OpenAICompatibleLLM(LLMSettings(backend="openai", base_url="http://127.0.0.1:9/v1", model="m"))
    body = sse([f"word{i} " for i in range(50)])
    llm.client = httpx.Client(
        base_url=llm.base_url, transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    )
    stop = Stop()
    read = []
    for piece in llm.stream([{"role": "user", "content": "q"}], GenerationOptions(stop=stop)):
        read.append(piece)
        if len(read) == 3:
            stop.set()
    assert read == ["word0 ", "word1 ", "word2 "] and stop.decoded_tokens == 1
