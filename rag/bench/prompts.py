"""Grounded prompts shaped exactly like Kura's answer prompt, each opened by a unique request tag.

openvino-genai keeps a prefix cache and llama-cpp-python reuses the longest matching prefix of the
previous prompt, so a repeated prompt measures a cache hit (~10 ms), not prefill. The tag sits at
the very start of the system message: no two measured prompts share more than the template's first
few tokens.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from rag.bench.corpus import sample_sections, synthetic_chunks

Message = dict[str, str]
ABSTAIN = "I couldn't find this in your documents."


def grounded_messages(sources: list[tuple[str, str]], question: str, tag: str) -> list[Message]:
    """Kura's own answer prompt (rag.prompt.PROMPT) over ``sources`` (label, text), tagged."""
    from rag.prompt import PROMPT

    fenced = "\n\n".join(
        f'<source id="{n}" file="{label}">\n{text}\n</source>' for n, (label, text) in enumerate(sources, 1)
    )
    roles = {"human": "user", "ai": "assistant", "system": "system"}
    formatted = PROMPT.format_messages(abstain=ABSTAIN, history=[], sources=fenced, question=question)
    messages = [{"role": roles[m.type], "content": str(m.content)} for m in formatted]
    messages[0]["content"] = f"Request {tag}. " + messages[0]["content"]
    return messages


def _tag(rng: random.Random, index: int) -> str:
    return f"{index:04d}-{rng.getrandbits(32):08x}"


def sized_prompts(
    render: Callable[[list[Message]], str], count_tokens: Callable[[str], int], count: int, target: int
) -> list[str]:
    """``count`` rendered prompts of about ``target`` tokens, each over different synthetic sources."""
    chunks = synthetic_chunks(40 * count + 40, seed=99)
    rng = random.Random(5)
    prompts = []
    cursor = 0
    for index in range(count):
        tag = _tag(rng, index)
        question = chunks[cursor].question
        sources: list[tuple[str, str]] = []
        while True:
            chunk = chunks[cursor]
            cursor += 1
            sources.append((f"handbook/{cursor}.md", chunk.text))
            prompt = render(grounded_messages(sources, question, tag))
            if count_tokens(prompt) >= target:
                break
        prompts.append(_trim(render, count_tokens, sources, question, tag, target))
    return prompts


def _trim(
    render: Callable[[list[Message]], str],
    count_tokens: Callable[[str], int],
    sources: list[tuple[str, str]],
    question: str,
    tag: str,
    target: int,
) -> str:
    """Cut the last source word by word (bisection) so the prompt lands on ``target`` tokens or just under."""
    label, text = sources[-1]
    words = text.split(" ")
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        prompt = render(grounded_messages([*sources[:-1], (label, " ".join(words[:middle]))], question, tag))
        if count_tokens(prompt) <= target:
            low = middle
        else:
            high = middle - 1
    return render(grounded_messages([*sources[:-1], (label, " ".join(words[:low]))], question, tag))


def copy_prompts(render: Callable[[list[Message]], str], count: int) -> list[str]:
    """Questions whose right answer repeats a sample-document section: where prompt lookup should shine."""
    sections = sample_sections()
    rng = random.Random(3)
    prompts = []
    for index in range(count):
        heading, text = sections[index % len(sections)]
        others = [sections[(index + step) % len(sections)] for step in (5, 11)]
        sources = [(f"sample/{h}", t) for h, t in [(heading, text), *others]]
        question = f'What does the section "{heading}" say? Repeat its sentences word for word, with the citation.'
        prompts.append(render(grounded_messages(sources, question, _tag(rng, index))))
    return prompts


def hf_renderer(folder: Any) -> tuple[Callable[[list[Message]], str], Callable[[str], int]]:
    """Render and count with the converted model's own tokenizer, as OpenVINOLLM.render does."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)

    def render(messages: list[Message]) -> str:
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return render, count


def section_messages(count: int, sources_each: int = 2, seed: int = 17) -> list[list[Message]]:
    """``count`` tagged grounded conversations over the sample documents, for concurrent callers."""
    sections = sample_sections()
    rng = random.Random(seed)
    out = []
    for index in range(count):
        picked = [sections[(index + 7 * step) % len(sections)] for step in range(sources_each)]
        heading = picked[0][0]
        sources = [(f"sample/{h}", t) for h, t in picked]
        question = f'What does the section "{heading}" say? Answer in a few sentences with citations.'
        out.append(grounded_messages(sources, question, _tag(rng, index)))
    return out
