"""An extracted answer as a short passage: the key sentence marked, the value after it kept."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rag.evidence import Evidence
from rag.passage import after_overlap, clipped, lead_in, passage, words

DEFINITION = (
    "checkpoint_timeout (integer)\n\nMaximum time between automatic WAL checkpoints. The default is five minutes.\n\n"
    "max_wal_size (integer)\n\nMaximum size to let the WAL grow during automatic checkpoints."
)


@dataclass
class Src:
    n: int
    text: str
    heading: str | None = None


def test_the_value_in_the_sentence_after_the_term_is_in_the_passage() -> None:
    evidence = [Evidence(2, "checkpoint_timeout (integer)", 0.9)]
    answer = passage(evidence, [Src(1, "Unrelated text here."), Src(2, DEFINITION)])
    assert answer.startswith("**checkpoint_timeout (integer)** Maximum time between")
    assert "The default is five minutes." in answer and answer.endswith("[2]")


def test_the_passage_stops_before_the_word_limit() -> None:
    evidence = [Evidence(1, "checkpoint_timeout (integer)", 0.9)]
    answer = passage(evidence, [Src(1, DEFINITION)], limit=14)
    assert "five minutes" in answer and "max_wal_size" not in answer
    assert words(answer) <= 14


def test_a_key_sentence_longer_than_the_limit_is_kept_whole() -> None:
    long = " ".join(f"word{n}" for n in range(30)) + "."
    answer = passage([Evidence(1, long, 0.9)], [Src(1, long + " Next sentence follows here.")], limit=10)
    assert answer == f"**{long}** [1]"


def test_a_sentence_not_found_again_in_its_source_stands_alone() -> None:
    assert passage([Evidence(3, "Gone sentence.", 0.5)], [Src(1, DEFINITION)]) == "**Gone sentence.** [3]"


def test_a_key_sentence_with_bold_of_its_own_is_not_wrapped_again() -> None:
    key = "The password manager is **Bitwarden**."
    assert passage([Evidence(1, key, 0.9)], [Src(1, key)]) == f"{key} [1]"


def test_an_over_long_key_sentence_is_cut_to_the_words_nearest_the_question() -> None:
    """A definition table read as one sentence: its answer sits by the question's words, not at its end."""
    filler = " ".join(f"word{i}" for i in range(80))
    sentence = f"{filler} Default: SSLSessionCacheTimeout 300 Context: server config {filler}"
    cut = clipped(sentence, "What is the default SSLSessionCacheTimeout?", 60)
    assert words(cut) == 60 and "SSLSessionCacheTimeout 300" in cut and cut.startswith("… ")
    assert clipped("Short and whole.", "anything?", 60) == "Short and whole."
    evidence = [Evidence(1, sentence, 1.0)]
    assert words(passage(evidence, [], 60, "What is the default SSLSessionCacheTimeout?")) == 60
    assert words(passage(evidence, [], 60)) > 60  # without the question it is kept whole


LUA = "Returns a string that is the concatenation of n copies of the string s. Negative n gives the empty string."


def test_a_passage_opening_its_section_starts_with_the_heading() -> None:
    """A reference entry names itself only in its heading: the answer to "which function ..." is there."""
    source = Src(1, LUA, heading="Manual > 5.4 String Manipulation > string.rep (s, n) ¶")
    answer = passage([Evidence(1, LUA.split(". ")[0] + ".", 0.9)], [source], heading=True)
    assert answer.startswith("*string.rep (s, n)*: **Returns a string")
    assert passage([Evidence(1, LUA.split(". ")[0] + ".", 0.9)], [source]).startswith("**Returns")  # off
    note = Src(1, LUA, heading="注:")
    assert passage([Evidence(1, LUA.split(". ")[0] + ".", 0.9)], [note], heading=True).startswith("*注*: **Returns")


@pytest.mark.parametrize(
    ("best", "heading"),
    [
        ("Negative n gives the empty string.", "string.rep (s, n)"),  # not the section's first sentence
        ("Returns a string that is the concatenation of n copies of the string s.", None),  # no heading
        ("Returns a string that is the concatenation of n copies of the string s.", " ".join(["word"] * 11)),
        ("Returns a string that is the concatenation of n copies of the string s.", "Returns a string"),  # repeated
        ("Returns a string that is the concatenation of n copies of the string s.", "The ** pattern"),  # markup
    ],
)
def test_no_heading_where_it_would_not_label_the_key_sentence(best: str, heading: str | None) -> None:
    assert lead_in(best, Src(1, LUA, heading=heading)) == ""


def test_the_heading_never_pushes_a_full_key_sentence_over_the_limit() -> None:
    key = " ".join(["word"] * 59) + "."
    answer = passage([Evidence(1, key, 0.9)], [Src(1, key, heading="Two words")], limit=60, heading=True)
    assert answer.startswith("**word") and words(answer) == 59


def test_a_joined_lead_in_continues_with_what_follows_it_in_its_source() -> None:
    source = Src(1, "Intro text here.\n\nRun it as follows:\n\n$ kura ingest docs\n\nThen ask a question.")
    key = "Run it as follows: $ kura ingest docs"
    answer = passage([Evidence(1, key, 0.9)], [source], lead_ins=True)
    assert answer == f"**{key}** Then ask a question. [1]"
    assert passage([Evidence(1, key, 0.9)], [source]) == f"**{key}** [1]"  # cut otherwise: not found again


TABLE = (
    'PollingInterval\n\n"integer", "10", "no", "none"\n\n'
    "This setting specifies how often files are polled for new data. It applies in polling mode only."
)


def test_a_key_sentence_without_the_value_asked_for_follows_the_row_before_it_holding_one() -> None:
    key = "This setting specifies how often files are polled for new data."
    answer = passage([Evidence(1, key, 0.9)], [Src(1, TABLE)], asked="quantity")
    assert answer == f'"integer", "10", "no", "none" **{key}** It applies in polling mode only. [1]'
    assert passage([Evidence(1, key, 0.9)], [Src(1, TABLE)]).startswith(f"**{key}**")  # nothing asked: as before


def test_the_sentence_before_stays_out_when_the_key_holds_the_value_or_the_one_before_holds_none() -> None:
    text = "Intro without numbers here.\n\nThe default interval is 10 seconds. More text follows."
    holding = passage([Evidence(1, "The default interval is 10 seconds.", 0.9)], [Src(1, text)], asked="quantity")
    assert holding.startswith("**The default interval is 10 seconds.**")
    key = "More text follows."
    lacking = passage(
        [Evidence(1, key, 0.9)], [Src(1, "Intro without numbers here. More text follows.")], asked="quantity"
    )
    assert lacking == f"**{key}** [1]"


def test_a_lead_in_ending_its_chunk_goes_on_into_the_next_chunk() -> None:
    ending = "List the address in the debug_peer_list parameter. For example, for the loopback interface:"
    evidence = [Evidence(1, "List the address in the debug_peer_list parameter.", 0.9)]
    asked: list[int] = []

    def more() -> str:
        asked.append(1)
        return "loopback interface:\n\n/etc/postfix/main.cf: debug_peer_list = 127.0.0.1\n\nYou can list several."

    answer = passage(evidence, [Src(1, ending)], limit=30, lead_ins=True, more=more)
    assert "loopback interface: /etc/postfix/main.cf: debug_peer_list = 127.0.0.1" in answer
    assert answer.count("loopback interface") == 1 and answer.endswith("[1]")  # the overlap is not repeated
    assert passage(evidence, [Src(1, ending + " " + "word " * 40)], limit=30, more=more) and len(asked) == 1


def test_the_chunk_overlap_is_cut_off_the_next_chunk_and_a_short_match_is_no_overlap() -> None:
    assert after_overlap("The first part. The overlapping tail", "The overlapping tail and more.") == "and more."
    assert after_overlap("Ends with a colon:", ": starts with one") == ": starts with one"


def test_a_passage_opening_on_a_list_item_is_a_paragraph_not_a_list() -> None:
    source = "Remote access uses OpenVPN.\n\n- Port: **TCP 4443** (UDP is blocked).\n- Profile: import the file."
    answer = passage([Evidence(1, "- Port: **TCP 4443** (UDP is blocked).", 0.7)], [Src(1, source)])
    assert answer == "Port: **TCP 4443** (UDP is blocked). - Profile: import the file. [1]"
