"""End to end: ``Assistant`` answering sample questions, then several questions at once.

Single questions go through the whole chain (retrieval, packing, LLM, citation check) over the
sample corpus ingested into a temporary store; each timed question is a different one, so
openvino-genai's prefix cache only helps where the product's would (a shared system prompt, the
same sources). Concurrency is measured on the LLM the chain calls: N threads streaming at once,
once through ``llm.engine: pipeline`` (OpenVINOLLM, one generation at a time: the CLI) and once
through ``engine: batching`` (OpenVINOBatchingLLM, continuous batching: ``kura serve``), interleaved
round by round.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.bench.corpus import SAMPLE, sample_questions
from rag.bench.isolate import in_child
from rag.bench.prompts import section_messages
from rag.bench.timing import Plan, peak_rss_mb, summary
from rag.config import Settings

if TYPE_CHECKING:
    from rag.models.embedder import Embedder

LOCKED = "engine: pipeline (CLI; one at a time)"
BATCHING = "engine: batching (kura serve)"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ask(assistant: Any, question: str, max_new_tokens: int | None) -> dict[str, Any]:
    started = time.perf_counter()
    first: float | None = None
    answer = None
    for event in assistant.ask(question, max_new_tokens=max_new_tokens):
        if event.kind == "answer" and event.text and first is None:
            first = time.perf_counter()
        if event.answer is not None:
            answer = event.answer
    total = time.perf_counter() - started
    assert answer is not None
    return {
        "first_answer_token_ms": round(((first or time.perf_counter()) - started) * 1000, 1),
        "total_ms": round(total * 1000, 1),
        "retrieve_ms": answer.timings.retrieve_ms,
        "llm_ttft_ms": answer.timings.ttft_ms,
        "decode_tokens_per_s": answer.timings.decode_tokens_per_s,
        "abstained": answer.abstained,
        "answer_source": getattr(answer, "answer_source", None),
        "answer_tokens": assistant.llm.count_tokens(answer.answer),
    }


def _round(llm: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> dict[str, float]:
    """All conversations streamed at once, one thread each; aggregate tokens over the wall time."""
    from rag.models.llm import GenerationOptions

    options = GenerationOptions(max_new_tokens=max_new_tokens)
    texts = [""] * len(conversations)
    firsts = [0.0] * len(conversations)
    started = time.perf_counter()

    def one(index: int) -> None:
        pieces: list[str] = []
        for piece in llm.stream(conversations[index], options):
            if not pieces:
                firsts[index] = time.perf_counter() - started
            pieces.append(piece)
        texts[index] = "".join(pieces)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(conversations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    # Counted after the threads end: a fast tokenizer is not re-entrant ("Already borrowed").
    tokens = sum(llm.count_tokens(text) for text in texts)
    return {"tokens_per_s": tokens / wall, "tokens": tokens, "ttft_ms": max(firsts) * 1000}


def _concurrency(llm: Any, batching: Any, plan: Plan) -> dict[str, Any]:
    levels = plan.concurrency
    engines = ((LOCKED, llm), (BATCHING, batching))
    count = (plan.runs * sum(levels) + max(levels)) * len(engines)
    conversations = iter(section_messages(count, sources_each=1 if plan.quick else 2))
    for _, engine in engines:  # warm-up at the widest level: the batching pipeline sizes its KV cache
        _round(engine, [next(conversations) for _ in range(max(levels))], plan.new_tokens)
    rounds: dict[str, dict[int, list[dict[str, float]]]] = {LOCKED: {}, BATCHING: {}}
    for level in levels:
        for _ in range(plan.runs):
            for name, engine in engines:
                result = _round(engine, [next(conversations) for _ in range(level)], plan.new_tokens)
                rounds[name].setdefault(level, []).append(result)
    out: dict[str, Any] = {}
    for name, per_level in rounds.items():
        out[name] = {
            str(level): {
                "aggregate_tokens_per_s": summary([r["tokens_per_s"] for r in results], 1),
                "slowest_first_token_ms": summary([r["ttft_ms"] for r in results], 1),
                "tokens": [int(r["tokens"]) for r in results],
            }
            for level, results in per_level.items()
        }
        one = out[name].get("1", {}).get("aggregate_tokens_per_s", {}).get("median")
        for level_result in out[name].values():
            if one:
                level_result["ratio_vs_one"] = round(level_result["aggregate_tokens_per_s"]["median"] / one, 2)
    return out


def _answer_rate(answer: Any, tokens: int) -> float | None:
    """Answer tokens per second of generation (first token included), from the chain's own timings."""
    ttft, decode = answer.timings.ttft_ms, answer.timings.decode_tokens_per_s
    if ttft is None or not decode or tokens < 2:
        return None
    return tokens / (ttft / 1000 + (tokens - 1) / decode)


def _lookup_on_answers(
    settings: Settings, embedder: Embedder, assistant: Any, questions: list[str], plan: Plan
) -> dict[str, Any]:
    """Real ``kura ask`` answers with prompt lookup on and off, question by question in alternating order."""
    from rag.answer import Assistant
    from rag.models.factory import load_llm

    settings_off = settings.model_copy(deep=True)
    settings_off.llm.prompt_lookup = False
    assistants = {
        "on": assistant,
        "off": Assistant(settings_off, embedder, load_llm(settings_off, _say), assistant.store),
    }
    if not getattr(assistant.llm, "prompt_lookup", False):
        return {"error": "the product LLM was built without prompt lookup (llm.prompt_lookup: false?)"}
    rates: dict[str, list[float]] = {"on": [], "off": []}
    decode: dict[str, list[float]] = {"on": [], "off": []}
    texts: dict[str, list[str]] = {"on": [], "off": []}
    for index, question in enumerate(questions[: 2 if plan.quick else len(questions)]):
        for name in ("on", "off") if index % 2 == 0 else ("off", "on"):
            answer = assistants[name].answer(question)
            if answer.abstained:
                break
            rate = _answer_rate(answer, assistant.llm.count_tokens(answer.generated))
            if rate is not None:
                rates[name].append(rate)
                decode[name].append(answer.timings.decode_tokens_per_s)
            texts[name].append(answer.generated)
    out: dict[str, Any] = {
        name: {
            "answer_tokens_per_s": summary(rates[name], 1) if rates[name] else None,
            "decode_tokens_per_s": summary(decode[name], 1) if decode[name] else None,
        }
        for name in rates
    }
    pairs = list(zip(texts["on"], texts["off"], strict=False))
    out["answers"] = len(pairs)
    out["same_text"] = sum(a == b for a, b in pairs)
    return out


def _e2e(settings: Settings, plan: Plan, folder: str) -> dict[str, Any]:
    from ingest.collection import Collection
    from rag.answer import Assistant
    from rag.models.factory import load_embedder, load_llm
    from rag.store import open_store

    custom = settings.model_copy(deep=True)
    custom.paths.store = Path(folder)
    custom.vectorstore.path = None
    custom.vectorstore.url = None
    custom.vectorstore.collection = "bench-sample"
    custom.llm.answer_mode = "auto"  # this bench times the LLM's answers; extract (the default) never asks it
    embedder = load_embedder(custom, _say)
    report = Collection(custom, "bench-sample").ingest([SAMPLE], embedder)
    custom.llm.engine = "pipeline"
    llm: Any = load_llm(custom, _say)
    assistant = Assistant(custom, embedder, llm, open_store(custom, embedder, "bench-sample"))
    answerable = [q for q in sample_questions() if q.get("kind") != "unanswerable"]
    limit = plan.new_tokens if plan.quick else None
    for question in reversed(answerable[-5:]):  # warm-up: one question that reaches the LLM
        if not _ask(assistant, question["question"], limit)["abstained"]:
            break
    # Kura abstains before the LLM when the evidence is weak; those are kept but not timed as answers.
    asked: list[dict[str, Any]] = []
    for question in answerable:
        asked.append({"id": question["id"], **_ask(assistant, question["question"], limit)})
        if sum(not a["abstained"] for a in asked) >= plan.e2e_questions:
            break
    answered = [a for a in asked if not a["abstained"]]
    lookup = _lookup_on_answers(custom, embedder, assistant, [q["question"] for q in answerable], plan)
    serving = custom.model_copy(deep=True)
    serving.llm.engine = "batching"
    batching: Any = load_llm(serving, _say)
    try:
        concurrency = _concurrency(llm, batching, plan)
    finally:
        batching.close()
    rates = [a["decode_tokens_per_s"] for a in answered if a["decode_tokens_per_s"]]
    # What the chain does between retrieval and the LLM's first token (packing, evidence selection).
    between = [
        a["first_answer_token_ms"] - a["retrieve_ms"] - a["llm_ttft_ms"]
        for a in answered
        if a["llm_ttft_ms"] is not None
    ]
    return {
        "ingested_chunks": report.chunks_written,
        "questions": len(asked),
        "abstained": len(asked) - len(answered),
        "first_answer_token_ms": summary([a["first_answer_token_ms"] for a in answered], 1) if answered else None,
        "total_ms": summary([a["total_ms"] for a in answered], 1) if answered else None,
        "retrieve_ms": summary([a["retrieve_ms"] for a in answered], 1) if answered else None,
        "llm_ttft_ms": summary([a["llm_ttft_ms"] for a in answered if a["llm_ttft_ms"]], 1) if answered else None,
        "decode_tokens_per_s": summary(rates, 1) if rates else None,
        "other_before_first_token_ms": summary(between, 1) if between else None,
        "per_question": asked,
        "concurrency": concurrency,
        "prompt_lookup": lookup,
        "max_new_tokens": limit or custom.llm.max_new_tokens,
        "peak_rss_mb": peak_rss_mb(),
    }


def run(settings: Settings, plan: Plan, say: Any) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="kura-bench-e2e-"))
    levels = ", ".join(str(n) for n in plan.concurrency)
    say(f"bench e2e: ingest data/sample, {plan.e2e_questions} questions, then {levels} at once")
    try:
        return in_child(_e2e, settings, plan, str(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
