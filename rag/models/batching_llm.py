"""An LLM for several users at once (``llm.engine: batching``, or ``auto`` in ``kura serve``): openvino-genai's
ContinuousBatchingPipeline behind the same interface.

``OpenVINOLLM`` serves one generation at a time (its pipeline is not re-entrant), so in ``kura serve``
the fourth user waited for three whole answers: 4.6 s to a first token, 0.86x the aggregate rate of
one. Here every caller adds a request and one driver thread steps the pipeline, each step decoding a
token for every running request with one read of the weights: 1.62x the aggregate rate at four at
once and 1.4 s to the slowest first token, for 6% less speed with a single user (README Performance).
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

from rag.config import LLMSettings
from rag.models.llm import GenerationOptions, Message, OpenVINOLLM, Stop

POLL_S = 0.001
MAX_SEQUENCES = 8
# Tokens per KV block of genai's PagedAttention on CPU (its block size there); num_kv_blocks counts these.
KV_BLOCK_TOKENS = 32


def kv_blocks(settings: LLMSettings, context_window: int) -> int:
    """Blocks for ``llm.kv_cache_tokens``, but never fewer than one whole context window needs.

    A cache sized in blocks is bounded; the former ``cache_size = 1`` GB was a ceiling whose pages were
    touched progressively, and a server's RSS grew 1.42x over the 60 s load test (README Performance).
    """
    tokens = max(settings.kv_cache_tokens, context_window)
    return -(-tokens // KV_BLOCK_TOKENS)


class OpenVINOBatchingLLM(OpenVINOLLM):
    """Streams like OpenVINOLLM (same template, tokenizer, prompt lookup, grammar) but serves callers together."""

    def _scheduler(self) -> Any:
        scheduler = self._genai.SchedulerConfig()
        scheduler.num_kv_blocks = kv_blocks(self.settings, self.context_window)
        scheduler.max_num_seqs = MAX_SEQUENCES
        # Prefix caching keeps finished requests' blocks until the cache is full, so a server's memory
        # climbed by the cache size (measured 766 -> 1,496 MB over 24 requests); without it blocks are reused.
        scheduler.enable_prefix_caching = False
        return scheduler

    def _pipeline(self, device: str, properties: dict[str, str]) -> object:
        scheduler = self._scheduler()
        path = str(self.model.path)
        pipeline = self._lookup_or_plain(
            device,
            lambda lookup: self._genai.ContinuousBatchingPipeline(
                path, scheduler, device, {**properties, **({"prompt_lookup": True} if lookup else {})}
            ),
        )
        return self._start(pipeline)

    def _start(self, pipeline: Any) -> Any:
        self._batching = pipeline
        self._local = threading.local()
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._closed = False
        self._driver = threading.Thread(target=self._drive, name="kura-llm-batching", daemon=True)
        self._driver.start()
        return pipeline

    def _drive(self) -> None:
        while not self._closed:
            if self._batching.has_non_finished_requests():
                self._batching.step()
            else:
                self._wake.wait(0.05)
                self._wake.clear()

    def _thread_tokenizer(self) -> Any:
        """Each caller thread decodes with its own copy: a fast tokenizer is not re-entrant."""
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = copy.deepcopy(self.tokenizer)
        return tokenizer

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        """Yield text pieces as the driver decodes them; closing the iterator or ``options.stop`` cancels the request.

        The stop is checked every ``POLL_S``, so at most the driver's step under way decodes after it.
        """
        handle = self._batching.add_request(next(self._ids), self.render(messages), self._config(options))
        self._wake.set()
        running = self._genai.GenerationStatus.RUNNING
        tokenizer = self._thread_tokenizer()
        ids: list[int] = []
        emitted = ""
        try:
            while True:
                if options.stop is not None and options.stop.is_set():
                    self._cancel(handle, options.stop)
                    break
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

    def _cancel(self, handle: Any, stop: Stop) -> None:
        """Cancel the request, counting the tokens the driver decoded after the stop and not yet read."""
        handle.cancel()
        if handle.can_read():
            stop.count(sum(len(output.generated_ids) for output in handle.read().values()))

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._driver.join(timeout=30)
