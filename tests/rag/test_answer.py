"""The answer chain on the real sample collection with the real bundled models."""

from __future__ import annotations

from typing import Any

import pytest

from rag.answer import Assistant
from rag.citations import check_citations
from rag.config import Settings
from rag.devices import device_chain
from rag.store import open_store
from tests.conftest import RecordingLLM
from tests.helpers import assert_follows_chain, first_usable

pytestmark = pytest.mark.slow


@pytest.fixture()
def assistant(sample_settings: Settings, embedder: Any, llm: Any) -> Assistant:
    """The real chain with the model asked (``auto``; extract, the default, never asks it)."""
    settings = sample_settings.model_copy(deep=True)
    settings.llm.answer_mode = "auto"
    return Assistant(settings, embedder, RecordingLLM(llm), open_store(settings, embedder))


def test_factoid_cites_the_right_file(assistant: Assistant) -> None:
    answer = assistant.answer("Within how many hours must a suspected security incident be reported?")
    assert not answer.abstained
    assert "security-policy.pdf" in [s.path for s in answer.sources[:3]]
    pdf = next(s for s in answer.sources if s.path == "security-policy.pdf")
    assert pdf.page in (1, 2, 3) and pdf.score > 0.3 and pdf.text
    assert answer.answer.strip()
    assert check_citations(answer.answer, len(answer.sources)).warnings == []
    assert set(answer.cited) <= set(range(1, len(answer.sources) + 1))
    assert answer.timings.ttft_ms is not None and answer.timings.decode_tokens_per_s
    chain = device_chain(assistant.settings.llm.device, assistant.settings.llm.fallback)
    assert answer.device == first_usable(chain)
    assert_follows_chain(assistant.llm.device_choice, chain)


def test_streams_answer_pieces_then_done(assistant: Assistant) -> None:
    """In generate mode the model's text streams as it comes (auto and copy show it once it is checked)."""
    assistant.settings = assistant.settings.model_copy(deep=True)
    assistant.settings.llm.answer_mode = "generate"
    events = list(assistant.ask("Which password manager does the company use?", max_new_tokens=24))
    assert [e.kind for e in events][-1] == "done"
    streamed = "".join(e.text for e in events if e.kind == "answer")
    assert len([e for e in events if e.kind == "answer"]) > 1
    assert streamed.strip()


def test_off_topic_question_abstains_without_the_llm(assistant: Assistant) -> None:
    answer = assistant.answer("What are the opening hours of the parking garage at the Leipzig office?")
    assert answer.abstained
    assert answer.answer == "I couldn't find this in your documents."
    assert answer.sources == []
    assert assistant.llm.calls == []  # type: ignore[attr-defined]


def test_a_field_the_question_names_answers_below_the_evidence_threshold(assistant: Assistant) -> None:
    """ "- Port: TCP 4443" under the VPN heading scores below ``min_evidence``; its label is what was asked."""
    answer = assistant.answer("On which TCP port does the company VPN gateway accept connections?")
    assert not answer.abstained and "4443" in answer.answer
    assert answer.evidence[0].score < assistant.settings.retrieval.min_evidence
    assistant.settings.retrieval.min_evidence_field = None
    assert assistant.answer("On which TCP port does the company VPN gateway accept connections?").abstained


def test_typed_question_without_a_typed_value_abstains(assistant: Assistant) -> None:
    """The handbook names Bitwarden but no version: the close passage must not become an answer."""
    answer = assistant.answer("Which version of Bitwarden does the company use?")
    assert answer.abstained and assistant.llm.calls == []  # type: ignore[attr-defined]
    assert "it-handbook.md" in answer.retrieved[:3]
    assert any("Bitwarden" in e.text for e in answer.evidence)


def test_follow_up_is_condensed_with_history(assistant: Assistant) -> None:
    history = [("When was Brindlepost 4.1.3 released?", "Brindlepost 4.1.3 was released in 2025 [1].")]
    standalone = assistant.condense("Which security fix did it include?", history)
    assert "security fix" in standalone.lower()
    assert "4.1.3" in standalone or "brindlepost" in standalone.lower()
    answer = assistant.answer("Which security fix did it include?", history)
    assert "release-notes.html" in [s.path for s in answer.sources[:3]]
    sent = assistant.llm.calls[-1]  # type: ignore[attr-defined]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]


def test_sources_are_packed_into_a_small_window(sample_settings: Settings, embedder: Any, llm: Any) -> None:
    small = sample_settings.model_copy(deep=True)
    small.llm.context_window = 1024
    small.llm.answer_mode = "auto"
    recording = RecordingLLM(llm)
    assistant = Assistant(small, embedder, recording, open_store(small, embedder))
    answer = assistant.answer(
        "What is the SSID of the Wi-Fi network for managed staff laptops?", k=20, max_new_tokens=64
    )
    assert answer.sources_dropped > 0 and answer.sources
    prompt_tokens = len(llm.tokenizer.encode(llm.render(recording.calls[-1])))
    assert prompt_tokens + 64 <= 1024


def test_reasoning_never_reaches_history(assistant: Assistant) -> None:
    history = [("When was Brindlepost 4.1.3 released?", "<think>the notes say 2025</think>It was released in 2025.")]
    assistant.answer("Which security fix did it include?", history)
    for messages in assistant.llm.calls:  # type: ignore[attr-defined]
        assert all("<think>" not in m["content"] and "the notes say" not in m["content"] for m in messages)
