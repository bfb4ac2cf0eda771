"""The Assistant's own logic with the fakes: a scripted LLM and the hashed embedder over an embedded Chroma
filled through the real ingest. What the real models answer is tested in test_answer.py (slow)."""

from __future__ import annotations

from typing import Any

import pytest

from rag.answer import Assistant
from rag.config import Settings
from rag.errors import KuraError
from rag.store import ChromaStore, open_store
from tests.fakes import HashEmbedder, ScriptedLLM
from tests.helpers import extracted_from, fake_collection

DOCS = {
    "vault.md": "# Vault\n\nThe vault code is 4711 and only Alice may know it.\n",
    "canteen.md": "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n",
}
QUESTION = "What is the vault code?"
BEST = "The vault code is 4711 and only Alice may know it."


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, HashEmbedder, ChromaStore]:
    settings, embedder = fake_collection(tmp_path_factory.mktemp("assistant"), DOCS)
    return settings, embedder, open_store(settings, embedder)


def assistant(filled: Any, llm: ScriptedLLM, answer_mode: str = "auto") -> Assistant:
    settings, embedder, store = filled
    custom = settings.model_copy(deep=True)
    custom.llm.answer_mode = answer_mode
    return Assistant(custom, embedder, llm, store)


def test_extract_answers_with_the_best_evidence_sentence_without_the_llm(filled: Any) -> None:
    llm = ScriptedLLM()
    answer = assistant(filled, llm, "extract").answer(QUESTION)
    assert extracted_from(answer.answer, BEST)
    assert (answer.answer_source, answer.cited, answer.abstained) == ("extracted", [1], False)
    assert answer.sources[0].path == "vault.md"
    assert answer.model == "scripted-llm" and answer.device == "CPU"
    assert llm.calls == []


def test_the_prompt_fences_the_sources_and_citations_are_checked(filled: Any) -> None:
    llm = ScriptedLLM(["The code is 4711 [1]. See also [7]."])
    answer = assistant(filled, llm, "generate").answer(QUESTION)
    assert answer.answer_source == "generated"
    assert answer.answer == "The code is 4711 [1]. See also."
    assert answer.citation_warnings == ["removed [7]: only sources 1-2 were given"]
    assert answer.cited == [1]
    [(messages, options)] = llm.calls
    assert [m["role"] for m in messages] == ["system", "user"]
    assert '<source id="1" file="vault.md - Vault">\n' + BEST + "\n</source>" in messages[1]["content"]
    assert messages[1]["content"].endswith(f"Question: {QUESTION}")
    assert options.max_new_tokens == 256 and options.grammar is None
    assert llm.closed == 1


def test_auto_keeps_an_answer_the_sources_support(filled: Any) -> None:
    llm = ScriptedLLM(["Alice may know the vault code 4711."])
    answer = assistant(filled, llm, "auto").answer(QUESTION)
    assert (answer.answer, answer.answer_source) == ("Alice may know the vault code 4711.", "generated")


def test_auto_replaces_an_unsupported_answer_with_the_evidence(filled: Any) -> None:
    llm = ScriptedLLM(["The code is 1234, ask Bob."])
    answer = assistant(filled, llm, "auto").answer(QUESTION)
    assert extracted_from(answer.answer, BEST) and answer.answer_source == "extracted"
    assert answer.generated == "The code is 1234, ask Bob."


def test_a_question_the_documents_do_not_cover_is_abstained_without_the_llm(filled: Any) -> None:
    llm = ScriptedLLM()
    answer = assistant(filled, llm).answer("Which dental insurance plan covers implants?")
    assert answer.abstained and answer.answer_source == "abstained"
    assert answer.answer == "I couldn't find this in your documents."
    assert answer.sources == [] and llm.calls == []
    assert answer.abstain_reason == "retrieval"


def test_an_abstention_after_packing_keeps_the_sources_its_evidence_names(filled: Any) -> None:
    """ "Which version" asks for a version and the vault note holds none: the evidence gate abstains, and each
    evidence [n] can still open its source (issue 18)."""
    llm = ScriptedLLM()
    answer = assistant(filled, llm).answer("Which version of the vault code may Alice know?")
    assert answer.abstained and answer.abstain_reason == "value" and llm.calls == []
    assert answer.evidence and answer.sources == []
    assert {e.n for e in answer.evidence} <= {s.n for s in answer.evidence_sources}


def test_a_question_naming_what_no_source_names_abstains_before_the_model(filled: Any) -> None:
    """The vault note answers "the vault code", not the Berlin vault's: another product or version (issue 14)."""
    llm = ScriptedLLM()
    answer = assistant(filled, llm).answer("What is the vault code of the Berlin office?")
    assert answer.abstained and answer.abstain_reason == "name" and llm.calls == []
    custom = assistant(filled, llm, "extract")
    custom.settings.retrieval.name_check = False
    assert custom.answer("What is the vault code of the Berlin office?").abstain_reason != "name"


def test_a_follow_up_is_held_to_its_own_names_not_the_earlier_questions(filled: Any) -> None:
    """ "Port 80 and 8000" were checked when the first question was answered; the follow-up's passage need not
    repeat them."""
    custom = assistant(filled, ScriptedLLM(), "extract")
    custom.settings.llm.condense_with_model = False
    history = [("What is the vault code of the Berlin office?", "The vault code is 4711 [1].")]
    answer = custom.answer("Who may know the vault code?", history)
    assert answer.abstain_reason != "name"
    assert custom.answer("Who may know the vault code in Hamburg?", history).abstain_reason == "name"


def test_the_model_replying_the_abstain_message_is_told_apart(filled: Any) -> None:
    llm = ScriptedLLM(["I couldn't find this in your documents [1]."])
    answer = assistant(filled, llm, "generate").answer(QUESTION)
    assert (answer.abstained, answer.abstain_reason, answer.answer_source) == (False, "model", "generated")


class StoppedAfter(ScriptedLLM):
    """A user who clicks Stop once ``pieces`` pieces were decoded (the stop is set from the stream's side)."""

    def __init__(self, reply: str, pieces: int) -> None:
        super().__init__([reply], piece_chars=4)
        self.pieces = pieces

    def stream(self, messages: Any, options: Any) -> Any:
        for number, piece in enumerate(super().stream(messages, options), 1):
            yield piece
            if number == self.pieces:
                options.stop.set()


@pytest.mark.parametrize("mode", ["auto", "generate"])
def test_stop_ends_the_answer_at_the_next_token_with_what_was_written(filled: Any, mode: str) -> None:
    from rag.models.llm import Stop

    stop = Stop()
    llm = StoppedAfter("The vault code is 4711 and only Alice may know it, says the note.", pieces=3)
    events = list(assistant(filled, llm, mode).ask(QUESTION, stop=stop))
    answer = events[-1].answer
    assert answer is not None and answer.answer_source == "stopped"
    assert answer.answer == "The vault co"  # three pieces of four characters, stripped; nothing replaced it
    assert stop.decoded_tokens == 1  # the piece being decoded when Stop was clicked, then none
    assert llm.closed == 1 and not answer.abstained


def test_a_thinking_model_gets_the_thinking_budget_and_its_reasoning_is_split_off(filled: Any) -> None:
    llm = ScriptedLLM(["Let me look.</think>The vault code is 4711."], thinks=True, opens_think=True)
    events = list(assistant(filled, llm).ask(QUESTION))
    answer = events[-1].answer
    assert answer is not None
    assert (answer.reasoning, answer.answer) == ("Let me look.", "The vault code is 4711.")
    assert "".join(e.text for e in events if e.kind == "reasoning") == "Let me look."
    assert llm.calls[0][1].max_new_tokens == 256 + 512


def test_a_follow_up_is_condensed_by_the_llm_first(filled: Any) -> None:
    llm = ScriptedLLM(["Who may know the vault code?", "Only Alice may know the vault code 4711 [1]."])
    history = [("What is the vault code?", "The vault code is 4711 [1].")]
    helper = assistant(filled, llm)
    helper.settings.llm.condense_with_model = True  # a larger preset's choice; the bundled model's is the rule
    answer = helper.answer("Who may know it?", history)
    assert answer.standalone_question == "Who may know the vault code? Who may know it?"
    assert len(llm.calls) == 2
    assert llm.calls[0][1].max_new_tokens == 48
    assert [m["role"] for m in llm.calls[1][0]] == ["system", "user", "assistant", "user"]


def test_a_looping_answer_is_cut_short(filled: Any) -> None:
    llm = ScriptedLLM(["The vault code is 4711 [1].\n" * 20], piece_chars=28)
    answer = assistant(filled, llm).answer(QUESTION)
    # Stopped as soon as the line came again (it was three lines before the answer guard); one copy is kept.
    assert answer.generated == answer.answer == "The vault code is 4711 [1]."
    assert llm.closed == 1


def test_an_empty_question_is_refused(filled: Any) -> None:
    with pytest.raises(KuraError, match="the question is empty"):
        assistant(filled, ScriptedLLM()).answer("   ")


def test_a_passage_goes_on_into_the_next_chunk_and_its_source_grows_by_it(tmp_path: Any) -> None:
    filler = " ".join(f"Mail relay note {i} says the queue is flushed hourly." for i in range(10))
    lead_in = "Verbose logging is set per peer. For the loopback interface, write:"
    docs = {"relay.md": f"# Relay\n\n{filler}\n\n{lead_in}\n\n    debug_peer_list = 127.0.0.1\n\nThen reload it.\n"}
    settings, embedder = fake_collection(tmp_path, docs)
    store = open_store(settings, embedder)
    first, second = [text for _, text, _ in sorted(store.all_chunks(), key=lambda row: row[2]["chunk"])]
    assert first.endswith("write:") and second.startswith(lead_in)  # the splitter's overlap repeats the lead-in
    settings.llm.answer_mode, settings.llm.passage_words = "extract", 200
    question = "What does mail relay note 7 say?"
    answer = Assistant(settings, embedder, ScriptedLLM(), store).answer(question)
    assert "write: debug_peer_list = 127.0.0.1 Then reload it. [1]" in answer.answer
    assert answer.answer.count(lead_in) == 1
    assert answer.sources[0].text == f"{first}\n\ndebug_peer_list = 127.0.0.1\n\nThen reload it."
    assert answer.support and all(support.n == 1 for support in answer.support)
    settings.llm.passage_next_chunk = False
    alone = Assistant(settings, embedder, ScriptedLLM(), store).answer(question)
    assert "127.0.0.1" not in alone.answer and alone.sources[0].text == first
