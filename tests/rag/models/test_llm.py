from __future__ import annotations

from typing import Any

import pytest

from rag.models.llm import GenerationOptions, complete

pytestmark = pytest.mark.slow

GROUNDED = [
    {"role": "system", "content": "Answer using only the context."},
    {
        "role": "user",
        "content": "Context: The Kura project stores its vectors in Chroma on port 8123.\n\n"
        "Question: On which port does Kura's Chroma run?",
    },
]


def test_grounded_answer_through_chat_template(llm: Any) -> None:
    prompt = llm.render(GROUNDED)
    assert prompt.startswith("<|im_start|>system\nAnswer using only the context.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
    answer = complete(llm, GROUNDED, GenerationOptions(max_new_tokens=40))
    assert answer.strip()
    assert "8123" in answer
    assert "<|im_end|>" not in answer


def test_streams_in_pieces_and_stops_when_closed(llm: Any) -> None:
    pieces = llm.stream(GROUNDED, GenerationOptions(max_new_tokens=64))
    first = [next(pieces) for _ in range(3)]
    pieces.close()
    assert all(isinstance(p, str) for p in first)
    again = complete(llm, GROUNDED, GenerationOptions(max_new_tokens=8))
    assert again.strip(), "the pipeline is usable after a stream was abandoned"


def test_falls_back_from_gpu_to_cpu(llm: Any) -> None:
    assert llm.device == "CPU"
    assert [d for d, _ in llm.device_choice.skipped] == ["GPU"]
    assert llm.context_window == 8192
    assert llm.count_tokens("Hello world") == 2
