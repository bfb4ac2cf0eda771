"""The answer guard alone: where an answer ends, what it holds back while streaming, and what it leaves alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import load_file
from rag.config import OcrSettings
from rag.guard import AnswerGuard, clean, find_cut

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def streamed(text: str, piece_chars: int) -> tuple[list[str], AnswerGuard]:
    """What the guard lets through as ``text`` arrives ``piece_chars`` at a time (it stops the model when cut)."""
    guard, pieces, end = AnswerGuard(), [], 0
    while end < len(text) and not guard.stopped:
        end += piece_chars
        pieces.append(guard.update(text[:end]))
    pieces.append(guard.finish(text[:end]))
    return pieces, guard


@pytest.mark.parametrize(
    ("text", "kept", "reason"),
    [
        ("Port 4443 [1].\n\nQuestion: Which port?", "Port 4443 [1].", "echo"),
        ('Port 4443 [1] <source id="6" file="vpn.md">', "Port 4443 [1]", "echo"),
        ("Port 4443 [1].\n</SOURCE>", "Port 4443 [1].", "echo"),
        ("Port 4443 [1].\nSources: [1]", "Port 4443 [1].", "echo"),
        ("Port 4443.\nUser: and the other one?", "Port 4443.", "echo"),
        ("Port 4443. copy exact facts (numbers, names, times, addresses) from them", "Port 4443.", "echo"),
        ("Port 4443. Rewrite the last user question as one standalone question", "Port 4443.", "echo"),
        ("Run `ls` command `ls` command `ls` command `ls` command", "Run `ls` command", "loop"),
        ("Port 4443 [1].\n" * 3, "Port 4443 [1].", "loop"),
        ("the the the the the the the the the", "the", "loop"),
        ("Use `AES_CBC_CBC_CBC_CBC` here", "Use", "loop"),
        ("会議室は三階です。会議室会議室会議室会議室", "会議室は三階です。会議室", "loop"),
    ],
)
def test_an_answer_ends_where_an_echo_or_a_loop_begins(text: str, kept: str, reason: str) -> None:
    cut = find_cut(text)
    assert cut is not None and cut.reason == reason
    assert clean(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "I couldn't find this in your documents.",
        "The the canteen opens at half past eleven [1]. Very very good.",
        "| a | b | c | d | e |\n| --- | --- | --- | --- | --- |\n| 1 | 2 | 3 | 4 | 5 |",
        "Most of the time, yes. Most of the time the gateway answers [1].",
        "HEAD abcd1234abcd1234abcd1234abcd1234abcd1234",
        "Die Kantine öffnet um 11:30 Uhr [1]. 会議室は三階です [2]。",
        "Answer only what was asked: the question: which port? Port 4443.",
        "```\nping -c 4 host\nping -c 4 host\n```",
    ],
)
def test_an_ordinary_answer_is_left_whole(text: str) -> None:
    assert find_cut(text) is None and clean(text) == text
    pieces, guard = streamed(text, 3)
    assert "".join(pieces) == guard.text == text


@pytest.mark.parametrize("piece_chars", [1, 2, 7, 40])
@pytest.mark.parametrize(
    "text",
    [
        "Port 4443 [1].\n\nQuestion: Which port?\nAnswer: 4443",
        "Port 4443 [1]. You are Kura, an assistant that answers questions",
        "Port 4443 [1].\nPort 4443 [1].\nPort 4443 [1].\nPort 4443 [1].\n",
        "Run the `BASH` command `BASH` command `BASH` command `BASH` command `BASH` command",
        "The key is `AES_CBC_CBC_CBC_CBC_CBC_CBC_CBC_CBC_CBC` [1].",
        'Port 4443 [1]<source id="2" file="a.md">\nmore</source>',
    ],
)
def test_what_streams_is_never_taken_back(text: str, piece_chars: int) -> None:
    pieces, guard = streamed(text, piece_chars)
    assert "".join(pieces) == guard.text and guard.text.strip() == clean(text)
    assert guard.stopped


def test_the_opening_of_an_instruction_waits_for_the_next_word() -> None:
    guard = AnswerGuard()
    assert guard.update("Port 4443. You are ") == "Port 4443. "
    assert guard.update("Port 4443. You are welcome ") == "You are welcome "
    assert guard.update("Port 4443. You are welcome to Kura, an assistant that answers ") == "to "
    assert guard.finish("Port 4443. You are welcome to Kura, an assistant that answers ") == (
        "Kura, an assistant that answers "
    )


def test_a_word_being_written_waits_for_its_end() -> None:
    guard = AnswerGuard()
    assert guard.update("Port 4443 [1].\nQuest") == "Port 4443 [1].\n"
    assert guard.update("Port 4443 [1].\nQuestion: which") == "" and guard.stopped


def test_japanese_streams_a_character_at_a_time() -> None:
    guard = AnswerGuard()
    assert guard.update("会議室は三階") == "会議室は三"
    assert guard.update("会議室は三階です。") == "階です"


def test_an_answer_that_turned_out_to_be_reasoning_is_guarded_afresh() -> None:
    guard = AnswerGuard()
    guard.update("Let me think about it ")
    assert guard.finish("Port 4443 [1].") == "Port 4443 [1]." and guard.text == "Port 4443 [1]."


@pytest.mark.parametrize("path", sorted(p for p in SAMPLE.iterdir() if p.suffix != ".jsonl"), ids=lambda p: p.name)
def test_no_sample_document_looks_like_an_echo_or_a_loop(path: Path) -> None:
    """An answer that copies a document must not be cut: the thresholds leave every sample section whole."""
    for section in load_file(path, ocr=OcrSettings()):  # the scans and the photo as OCR reads them
        assert find_cut(section.text) is None, section.text[:200]
