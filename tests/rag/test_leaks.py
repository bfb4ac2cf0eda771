"""Model outputs that echo the prompt or loop, fed through Assistant.ask: neither stream nor answer holds them."""

from __future__ import annotations

from typing import Any

import pytest

from rag.answer import Answer, Event
from rag.assistant import open_assistant
from rag.config import Settings
from tests.fakes import HashEmbedder, ScriptedLLM
from tests.helpers import extracted_from, fake_collection

DOCS = {
    "vpn.md": "# VPN\n\nThe company VPN gateway accepts connections on TCP port 4443.\n\n"
    "Staff connect with the WireGuard client on their laptops.",
    "canteen.md": "# Canteen\n\nThe canteen opens at half past eleven and serves lunch until two on weekdays.",
}
QUESTION = "On which TCP port does the company VPN gateway accept connections?"
BEST = "The company VPN gateway accepts connections on TCP port 4443."
ANSWER = "The VPN gateway accepts connections on TCP port 4443 [1]."
FENCE = '<source id="6" file="vpn.md - VPN">\nThe company VPN gateway accepts connections on TCP port 4443.\n</source>'
SYSTEM_ECHO = (
    "You are Kura, an assistant that answers questions about the user's own documents. Answer only from the "
    "sources given inside <source> tags."
)
# What must never reach the user: prompt markup, the prompt's sentences, a loop's second round.
LEAKS = ["<source", "</source", "Question:", "Sources:", "You are Kura", "answers questions about the user's",
         "`BASH` command `BASH`", "CBC_CBC", "4443 [1].\nThe VPN"]  # fmt: skip


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, HashEmbedder]:
    return fake_collection(tmp_path_factory.mktemp("leaks"), DOCS)


def ask(collection: Any, reply: str, mode: str = "auto", piece_chars: int = 3) -> tuple[str, Answer, ScriptedLLM]:
    """The answer pieces streamed for ``reply``, joined, the final answer and the LLM."""
    settings, embedder = collection
    custom = settings.model_copy(deep=True)
    custom.llm.answer_mode = mode
    llm = ScriptedLLM([reply], piece_chars=piece_chars)
    events: list[Event] = list(open_assistant(custom, embedder=embedder, llm=llm).ask(QUESTION))
    final = events[-1].answer
    assert final is not None and not final.abstained and llm.calls
    return "".join(e.text for e in events if e.kind == "answer"), final, llm


def assert_clean(text: str) -> None:
    assert not [leak for leak in LEAKS if leak in text], text


@pytest.mark.parametrize("mode", ["auto", "generate"])
@pytest.mark.parametrize(
    "reply",
    [
        f"{ANSWER}\n\nQuestion: {QUESTION}\nAnswer: port 4443 [1].",
        f"{ANSWER} Question: what else?",
        f"{ANSWER}\n{FENCE}",
        f"{ANSWER}\n\nSources: [1] vpn.md",
        f"{ANSWER} {SYSTEM_ECHO}",
        f"{ANSWER}\n" * 20,
        f"{ANSWER}\nThe VPN gateway accepts connections on TCP port 4443 [1].\n" * 5,
    ],
)
def test_the_answer_before_an_echo_or_a_loop_is_kept_and_nothing_after_it_shows(
    collection: Any, mode: str, reply: str
) -> None:
    streamed, answer, llm = ask(collection, reply, mode)
    assert_clean(streamed)
    assert_clean(answer.answer)
    assert answer.answer == answer.generated == ANSWER and streamed.strip() == ANSWER
    assert answer.answer_source == "generated" and answer.cited == [1]
    assert llm.closed == 1


@pytest.mark.parametrize("mode", ["auto", "generate"])
@pytest.mark.parametrize(
    "reply",
    [
        FENCE,
        f"</source>\n\nQuestion: {QUESTION}",
        SYSTEM_ECHO,
        "`cipher.AES_CBC_CBC_CBC_CBC_CBC_CBC_CBC_CBC`",
    ],
)
def test_an_answer_that_is_only_an_echo_or_a_loop_falls_back_to_the_evidence(
    collection: Any, mode: str, reply: str
) -> None:
    streamed, answer, _ = ask(collection, reply, mode)
    assert_clean(streamed)
    assert answer.generated == ""
    assert streamed == ("" if mode == "generate" else answer.answer)  # auto shows only the final text
    assert extracted_from(answer.answer, BEST) and answer.answer_source == "extracted"


def test_a_loop_keeps_its_first_round_and_stops_the_model(collection: Any) -> None:
    """What was shown is never taken back, so a loop's first round stays; auto mode's support check judges it."""
    reply = "Connect with the `BASH` command" + " `BASH` command" * 40
    streamed, answer, llm = ask(collection, reply, "generate")
    assert answer.generated == streamed.strip() == "Connect with the `BASH` command"
    assert llm.closed == 1
    auto = ask(collection, reply)[1]  # in auto mode the support check then decides
    assert auto.answer_source == "extracted" and extracted_from(auto.answer, BEST)


def test_auto_mode_never_streams_text_it_then_replaces(collection: Any) -> None:
    reply = "Ask Bob in the Kiel office about it."  # fluent, and not in the sources
    streamed, answer, _ = ask(collection, reply)
    assert answer.generated == reply and answer.answer_source == "extracted"
    assert streamed == answer.answer and "Bob" not in streamed


@pytest.mark.parametrize("piece_chars", [1, 5, 64])
def test_the_streamed_pieces_add_up_to_the_answer_however_the_model_splits_them(
    collection: Any, piece_chars: int
) -> None:
    reply = f"{ANSWER} Staff use the WireGuard client [1].\n\nQuestion: {QUESTION}"
    streamed, answer, _ = ask(collection, reply, "generate", piece_chars)
    assert streamed.strip() == answer.generated == f"{ANSWER} Staff use the WireGuard client [1]."
    assert_clean(streamed)
