"""The batching engine's memory bound: its KV cache is sized in blocks up front, not grown up to a ceiling."""

from __future__ import annotations

from typing import Any

from rag.config import LLMSettings
from rag.models.batching_llm import KV_BLOCK_TOKENS, OpenVINOBatchingLLM, kv_blocks


def scheduler_for(settings: LLMSettings, context_window: int) -> Any:
    """The SchedulerConfig the engine would build, without loading a model."""
    import openvino_genai

    engine = object.__new__(OpenVINOBatchingLLM)
    engine._genai = openvino_genai
    engine.settings = settings
    engine.context_window = context_window
    return engine._scheduler()


def test_kv_cache_is_sized_in_blocks_from_the_setting() -> None:
    scheduler = scheduler_for(LLMSettings(kv_cache_tokens=16384), context_window=8192)
    assert scheduler.num_kv_blocks == 16384 // KV_BLOCK_TOKENS
    assert scheduler.cache_size == 0  # no GB ceiling whose pages fill in as the server runs
    assert not scheduler.enable_prefix_caching  # finished requests' blocks are reused, not kept


def test_kv_cache_holds_at_least_one_whole_context_window() -> None:
    assert kv_blocks(LLMSettings(kv_cache_tokens=1024), context_window=8192) == 8192 // KV_BLOCK_TOKENS
    assert kv_blocks(LLMSettings(kv_cache_tokens=10000), context_window=2048) == -(-10000 // KV_BLOCK_TOKENS)
