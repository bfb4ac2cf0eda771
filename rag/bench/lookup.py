"""Prompt-lookup decoding in openvino-genai, on grounded answers that copy from their sources.

Prompt lookup drafts the next tokens by finding the last few generated tokens (an n-gram of up to
``max_ngram_size``) earlier in the prompt and proposing what followed them there; one forward pass
then verifies ``num_assistant_tokens`` drafts at once. RAG answers quote their sources, so drafts
are often right. It needs its own pipeline (``LLMPipeline(..., prompt_lookup=True)``), which then
refuses configs without the two settings: the product pipeline is the "off" row, and the rows are
measured prompt by prompt in turn so load on the machine hits them alike.
"""

from __future__ import annotations

import sys
from typing import Any

from rag.bench.generation import Generation, genai_generate
from rag.bench.timing import peak_rss_mb, summary
from rag.config import Settings

SETTINGS = ((5, 3), (10, 3))  # (num_assistant_tokens, max_ngram_size)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _difference(text: str, other: str) -> int | None:
    """Index of the first differing character, None when the texts are identical."""
    if text == other:
        return None
    return next((i for i, (a, b) in enumerate(zip(text, other, strict=False)) if a != b), min(len(text), len(other)))


def _greedy(new_tokens: int) -> Any:
    """Greedy, up to ``new_tokens``, stopping at EOS like a real answer (unlike the exact-length llm rows)."""
    import openvino_genai

    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = new_tokens
    config.do_sample = False
    config.apply_chat_template = False
    return config


def measure_lookup(settings: Settings, prompts: list[str], new_tokens: int, quick: bool) -> dict[str, Any]:
    """In a child: the product pipeline and one prompt-lookup pipeline per setting, prompt by prompt."""
    import openvino_genai

    from rag.models.factory import cache_dir, load_llm

    without = settings.model_copy(deep=True)
    without.llm.prompt_lookup = False
    llm: Any = load_llm(without, _say)
    pipelines = {"off": llm.pipeline}
    configs: dict[str, Any] = {}
    configs["off"] = _greedy(new_tokens)
    for assistant_tokens, ngram in SETTINGS[:1] if quick else SETTINGS:
        name = f"k={assistant_tokens}, n={ngram}"
        config = _greedy(new_tokens)
        config.num_assistant_tokens = assistant_tokens
        config.max_ngram_size = ngram
        # One pipeline per setting: a shared one would serve the second setting from its prefix cache.
        pipelines[name] = openvino_genai.LLMPipeline(
            str(llm.model.path), llm.device, prompt_lookup=True, CACHE_DIR=str(cache_dir(settings))
        )
        configs[name] = config
    runs: dict[str, list[Generation]] = {name: [] for name in configs}
    names = list(configs)
    for index, prompt in enumerate(prompts):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            runs[name].append(genai_generate(pipelines[name], prompt, configs[name]))
    out: dict[str, Any] = {}
    for name, generations in runs.items():
        timed = generations[1:]
        out[name] = {
            "answer_tokens_per_s": summary([g.tokens / g.total_s for g in timed], 1),
            "decode_tokens_per_s": summary([g.decode_tokens_per_s for g in timed], 1),
            "ttft_ms": summary([g.ttft_s * 1000 for g in timed], 1),
            "generated_tokens": [g.tokens for g in timed],
            "same_text_as_off": [g.text == o.text for g, o in zip(timed, runs["off"][1:], strict=True)],
            # Verifying several drafted tokens in one pass changes the float summation order: a near-tie
            # can flip, after which the greedy texts part ways. Where (in characters) that happened:
            "first_difference_at": [_difference(g.text, o.text) for g, o in zip(timed, runs["off"][1:], strict=True)],
        }
    out["peak_rss_mb"] = peak_rss_mb()
    return out
