"""A ChatLLM over openvino-genai's ContinuousBatchingPipeline, measured beside the product's OpenVINOLLM.

OpenVINOLLM holds a lock around ``LLMPipeline.generate``, so concurrent questions queue and the
aggregate rate stays that of one stream. Here every caller adds a request and one driver thread
steps the pipeline: each step decodes one token for every running request, reading the weights
once for all of them, which is where batching wins when decode is bound by memory bandwidth.
This lives in the bench only; whether the product switches is decided from the measured numbers.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

from rag.models.llm import GenerationOptions, Message

POLL_S = 0.001


class BatchingLLM:
    """Streams like OpenVINOLLM (same template, same tokenizer) but serves concurrent callers together."""

    def __init__(self, base: Any, cache_dir: str | None = None, max_sequences: int = 8, kv_cache_gb: int = 1) -> None:
        import openvino_genai

        self._genai = openvino_genai
        self.base = base
        self.name = base.name
        self.device_choice = base.device_choice
        self.context_window = base.context_window
        self.tokenizer = base.tokenizer
        scheduler = openvino_genai.SchedulerConfig()
        scheduler.cache_size = kv_cache_gb
        scheduler.max_num_seqs = max_sequences
        scheduler.enable_prefix_caching = True
        properties = {"CACHE_DIR": cache_dir} if cache_dir else {}
        self.pipeline = openvino_genai.ContinuousBatchingPipeline(
            str(base.model.path), scheduler, base.device, properties
        )
        self._local = threading.local()
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._closed = False
        self._driver = threading.Thread(target=self._drive, name="kura-bench-batching", daemon=True)
        self._driver.start()

    def _drive(self) -> None:
        while not self._closed:
            if self.pipeline.has_non_finished_requests():
                self.pipeline.step()
            else:
                self._wake.wait(0.05)
                self._wake.clear()

    def _thread_tokenizer(self) -> Any:
        """Each caller thread decodes with its own copy: a fast tokenizer is not re-entrant."""
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = copy.deepcopy(self.tokenizer)
        return tokenizer

    def count_tokens(self, text: str) -> int:
        return int(self.base.count_tokens(text))

    def render(self, messages: list[Message]) -> str:
        return str(self.base.render(messages))

    def _config(self, options: GenerationOptions) -> Any:
        config = self._genai.GenerationConfig()
        config.max_new_tokens = options.max_new_tokens
        config.apply_chat_template = False
        config.do_sample = options.temperature > 0
        if config.do_sample:
            config.temperature = options.temperature
        return config

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        """Yield text pieces as the driver decodes them; closing the iterator cancels the request."""
        handle = self.pipeline.add_request(next(self._ids), self.render(messages), self._config(options))
        self._wake.set()
        running = self._genai.GenerationStatus.RUNNING
        tokenizer = self._thread_tokenizer()
        ids: list[int] = []
        emitted = ""
        try:
            while True:
                if handle.can_read():
                    for output in handle.read().values():
                        ids.extend(output.generated_ids)
                    text = tokenizer.decode(ids, skip_special_tokens=True)
                    # A token can end inside a multi-byte character: wait for the rest of it.
                    if len(text) > len(emitted) and not text.endswith("\ufffd"):
                        yield text[len(emitted) :]
                        emitted = text
                elif handle.get_status() != running:
                    break
                else:
                    time.sleep(POLL_S)
        finally:
            if handle.get_status() == running:
                handle.cancel()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._driver.join(timeout=30)
