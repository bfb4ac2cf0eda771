"""One generation as the caller sees it, and how an openvino-genai pipeline is timed from outside."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Generation:
    """One generation seen from the caller: seconds to the first token, total seconds, token counts."""

    ttft_s: float
    total_s: float
    tokens: int
    prompt_tokens: int
    text: str = ""

    @property
    def decode_tokens_per_s(self) -> float:
        return (self.tokens - 1) / (self.total_s - self.ttft_s) if self.tokens > 1 else 0.0


def genai_generate(pipeline: Any, prompt: str, config: Any) -> Generation:
    """One openvino-genai generation, timed from outside (list input so perf metrics come back)."""
    import openvino_genai

    first: list[float] = []

    def on_piece(_: str) -> Any:
        if not first:
            first.append(time.perf_counter())
        return openvino_genai.StreamingStatus.RUNNING

    started = time.perf_counter()
    result = pipeline.generate([prompt], config, on_piece)
    total = time.perf_counter() - started
    metrics = result.perf_metrics
    ttft = (first[0] - started) if first else total
    return Generation(ttft, total, metrics.get_num_generated_tokens(), metrics.get_num_input_tokens(), result.texts[0])
