"""Copy decoding with the real bundled model: the answer is a quote of the evidence, cited."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from rag.answer import Assistant
from rag.citations import check_citations
from rag.config import Settings
from rag.store import open_store
from tests.conftest import RecordingLLM

pytestmark = pytest.mark.slow


def test_copy_mode_answers_with_a_verbatim_span_of_the_cited_sentence(
    sample_settings: Settings, embedder: Any, llm: Any
) -> None:
    settings = sample_settings.model_copy(deep=True)
    settings.llm.answer_mode = "copy"
    assistant = Assistant(settings, embedder, RecordingLLM(llm), open_store(settings, embedder))
    answer = assistant.answer("For how many days are laptop backups kept?")
    assert answer.answer_source == "copied"
    span, n = re.fullmatch(r"(.+) \[(\d+)\]", answer.answer).groups()  # type: ignore[union-attr]
    assert span == answer.generated
    assert any(e.n == int(n) and span in " ".join(e.text.split()) for e in answer.evidence)
    assert span in " ".join(answer.sources[int(n) - 1].text.split())
    assert check_citations(answer.answer, len(answer.sources)).warnings == []
    assert answer.cited == [int(n)]
    assert "35 days" in span


class UnconstrainedLLM(RecordingLLM):
    """A backend that cannot enforce a grammar, as the OpenAI-compatible one."""

    constrains = False


def test_without_grammar_support_copy_mode_answers_as_auto(
    sample_settings: Settings, embedder: Any, llm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sample_settings.model_copy(deep=True)
    settings.llm.answer_mode = "copy"
    with caplog.at_level(logging.WARNING, logger="kura.answer"):
        assistant = Assistant(settings, embedder, UnconstrainedLLM(llm), open_store(settings, embedder))
    assert "answers in auto mode" in caplog.text
    answer = assistant.answer("For how many days are laptop backups kept?", max_new_tokens=48)
    assert answer.answer_source in ("generated", "extracted")
