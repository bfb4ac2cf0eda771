from __future__ import annotations

import random
import re

import pytest

from rag.reasoning import Piece, ThinkSplitter, strip_reasoning

TAGS = r"<think>|</think>"


def run(pieces: list[str], **kwargs: bool) -> tuple[ThinkSplitter, list[Piece]]:
    """Feed a scripted stream; return the splitter and every piece it emitted."""
    splitter = ThinkSplitter(**kwargs)
    emitted: list[Piece] = []
    for piece in pieces:
        emitted.extend(splitter.feed(piece))
    emitted.extend(splitter.finish())
    return splitter, emitted


def joined(emitted: list[Piece], kind: str) -> str:
    return "".join(p.text for p in emitted if p.kind == kind)


def test_reasoning_then_answer() -> None:
    splitter, emitted = run(["<think>", "Let me see.", "</think>", "\n\nParis [1]."])
    assert splitter.reasoning == "Let me see."
    assert splitter.answer == "Paris [1]."
    assert emitted == [Piece("reasoning", "Let me see."), Piece("answer", "Paris [1].")]
    assert not splitter.unclosed
    assert not splitter.reclassified


@pytest.mark.parametrize("tag", ["<think>", "</think>"])
def test_tag_split_at_every_position(tag: str) -> None:
    text = "\n<think>\nstep one < two\n</think>\n\nThe answer is 42."
    start = text.index(tag)
    for cut in range(start, start + len(tag) + 1):
        splitter, emitted = run([text[:cut], text[cut:]])
        assert splitter.reasoning == "\nstep one < two\n", cut
        assert splitter.answer == "The answer is 42.", cut
        assert joined(emitted, "reasoning") == splitter.reasoning
        assert joined(emitted, "answer") == splitter.answer


def test_every_two_cut_points_give_the_same_split() -> None:
    text = "<think>a<b</th</think>x </think>y<thinking> z"
    expected = run([text])[0]
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            splitter, emitted = run([text[:i], text[i:j], text[j:]])
            assert (splitter.reasoning, splitter.answer) == (expected.reasoning, expected.answer), (i, j)
            assert joined(emitted, "answer") == splitter.answer


def test_one_character_at_a_time() -> None:
    text = "<think>plan</think>\n\nAnswer."
    splitter, emitted = run(list(text))
    assert splitter.reasoning == "plan"
    assert splitter.answer == "Answer."
    assert joined(emitted, "reasoning") == "plan"


def test_holds_back_only_a_possible_tag() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("Hello </th") == [Piece("answer", "Hello ")]
    assert splitter.feed("ere") == [Piece("answer", "</there")]
    assert splitter.feed("a <") == [Piece("answer", "a ")]
    assert splitter.feed(" b") == [Piece("answer", "< b")]


def test_less_than_sign_is_not_a_tag() -> None:
    splitter, emitted = run(["If a < b", " and b <", "= c then a <", "<t> c"])
    assert splitter.answer == "If a < b and b <= c then a <<t> c"
    assert splitter.reasoning == ""
    assert all(p.kind == "answer" for p in emitted)


def test_trailing_partial_tag_is_flushed_at_finish() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("x <thi") == [Piece("answer", "x ")]
    assert splitter.finish() == [Piece("answer", "<thi")]
    assert splitter.answer == "x <thi"
    assert splitter.finish() == []


def test_unclosed_block_when_budget_runs_out() -> None:
    splitter, emitted = run(["<think>", "Hmm, first I need", " to consider"])
    assert splitter.unclosed
    assert splitter.answer == ""
    assert splitter.reasoning == "Hmm, first I need to consider"
    assert all(p.kind == "reasoning" for p in emitted)


def test_unclosed_only_after_finish() -> None:
    splitter = ThinkSplitter()
    splitter.feed("<think>still going")
    assert splitter.in_think
    assert not splitter.unclosed
    splitter.finish()
    assert splitter.unclosed


def test_starts_inside_think() -> None:
    splitter, emitted = run(["Okay, the user", " asks.\n</think>\n\n", "It is blue [2]."], starts_in_think=True)
    assert splitter.reasoning == "Okay, the user asks.\n"
    assert splitter.answer == "It is blue [2]."
    assert [p.kind for p in emitted] == ["reasoning", "reasoning", "answer"]
    assert not splitter.unclosed


def test_starts_inside_think_without_close_is_unclosed() -> None:
    splitter, _ = run(["thinking and thinking"], starts_in_think=True)
    assert splitter.unclosed
    assert splitter.answer == ""


def test_multiple_blocks_concatenate_reasoning() -> None:
    splitter, emitted = run(["<think>one</think>\n", "<think>two</think>\n\nDone."])
    assert splitter.reasoning == "onetwo"
    assert splitter.answer == "Done."
    assert emitted == [Piece("reasoning", "one"), Piece("reasoning", "two"), Piece("answer", "Done.")]


def test_answer_between_blocks_keeps_its_text() -> None:
    splitter, _ = run(["A.<think>r1</think> B. <think>r2</think>  C."])
    assert splitter.answer == "A.B. C."
    assert splitter.reasoning == "r1r2"


def test_no_tags_at_all() -> None:
    splitter, emitted = run(["Just ", "an answer", " [1]."])
    assert splitter.answer == "Just an answer [1]."
    assert splitter.reasoning == ""
    assert not splitter.unclosed
    assert emitted == [Piece("answer", "Just "), Piece("answer", "an answer"), Piece("answer", " [1].")]


def test_whitespace_before_open_tag_is_dropped() -> None:
    splitter, emitted = run(["\n\n", "<think>r</think>", "A"])
    assert splitter.answer == "A"
    assert emitted == [Piece("reasoning", "r"), Piece("answer", "A")]


def test_bare_close_tag_in_one_piece_relabels_before_returning() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("I think\n</think>\nAnswer") == [Piece("reasoning", "I think\n"), Piece("answer", "Answer")]
    assert not splitter.reclassified


def test_bare_close_tag_after_streamed_answer_is_reclassified() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("Reasoning without") == [Piece("answer", "Reasoning without")]
    assert splitter.feed(" an open tag</think>\n\nFinal.") == [
        Piece("reasoning", " an open tag"),
        Piece("answer", "Final."),
    ]
    assert splitter.reclassified
    assert splitter.reasoning == "Reasoning without an open tag"
    assert splitter.answer == "Final."


def test_stray_tags_are_dropped_not_reclassifying() -> None:
    splitter, _ = run(["<think>a<think>b</think>Answer</think> more"])
    assert splitter.reasoning == "ab"
    assert splitter.answer == "Answer more"
    assert not splitter.reclassified


def test_feed_after_finish_fails() -> None:
    splitter = ThinkSplitter()
    splitter.finish()
    with pytest.raises(RuntimeError):
        splitter.feed("late")


def test_custom_tags() -> None:
    splitter, _ = run(["[[r", "eason]]x[[/reason]] y"], open_tag="[[reason]]", close_tag="[[/reason]]")
    assert (splitter.reasoning, splitter.answer) == ("x", "y")


@pytest.mark.parametrize(("open_tag", "close_tag"), [("", "</t>"), ("<t>", ""), ("<t>", "<t>")])
def test_bad_tags_are_rejected(open_tag: str, close_tag: str) -> None:
    with pytest.raises(ValueError):
        ThinkSplitter(open_tag=open_tag, close_tag=close_tag)


def test_random_streams_never_lose_or_duplicate_characters() -> None:
    rng = random.Random(1234)
    alphabet = ["<think>", "</think>", "<", "</", "<th", "think", ">", "a", "b", " ", "\n"]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        starts_in_think = rng.random() < 0.3
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 6))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        splitter, emitted = run(pieces, starts_in_think=starts_in_think)
        whole, whole_emitted = run([text], starts_in_think=starts_in_think)
        out = "".join(p.text for p in emitted)
        # However the stream is cut, the result is the same as for the whole text at once...
        assert (splitter.reasoning, splitter.answer) == (whole.reasoning, whole.answer), pieces
        assert out == "".join(p.text for p in whole_emitted), pieces
        # ...no tag survives, and only whitespace is ever left out.
        assert "".join(out.split()) == "".join(re.sub(TAGS, "", text).split()), pieces
        assert sorted(splitter.reasoning + splitter.answer) == sorted(out)


def test_strip_reasoning() -> None:
    assert strip_reasoning("<think>\nplan\n</think>\n\nAnswer [1].") == "Answer [1]."
    assert strip_reasoning("<think>never closed") == ""
    assert strip_reasoning("leaked reasoning</think>Answer") == "Answer"
    assert strip_reasoning("plain answer") == "plain answer"
    assert strip_reasoning("<think>a</think>X<think>b</think> Y") == "XY"
    assert strip_reasoning("reasoning cut off by the budget", starts_in_think=True) == ""
