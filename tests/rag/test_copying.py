"""The copy-decoding grammar: a quote opens an evidence sentence, terminals are escaped, quotes map back."""

from __future__ import annotations

import pytest

from rag.copying import prefix_grammar, source_of
from rag.evidence import Evidence

EVIDENCE = [
    Evidence(2, "The VPN gateway accepts connections on TCP 4443.", 1.2),
    Evidence(1, "Backups are kept for 35 days.", 1.0),
    Evidence(3, "The VPN gateway accepts connections on TCP 4443.", 0.9),
]


def test_one_rule_per_word_and_quotes_start_at_a_sentence_start() -> None:
    lines = prefix_grammar(EVIDENCE[:2]).splitlines()
    assert lines[0] == "root ::= s0_0 | s1_0"
    assert len(lines) == 1 + 8 + 6
    assert 's0_0 ::= "The" (" " s0_1)?' in lines  # every word may end the quote
    assert 's0_7 ::= "4443."' in lines  # the sentence's last word ends it
    assert 's1_4 ::= "35" (" " s1_5)?' in lines


def test_a_repeated_sentence_gets_one_chain() -> None:
    assert prefix_grammar(EVIDENCE) == prefix_grammar(EVIDENCE[:2])


def test_quotes_backslashes_and_control_characters_are_escaped() -> None:
    grammar = prefix_grammar([Evidence(1, 'Run "C:\\kura\\bin" now\x07a1', 1.0)])
    assert 's0_1 ::= "\\"C:\\\\kura\\\\bin\\"" (" " s0_2)?' in grammar.splitlines()
    assert '"now\\u0007a1"' in grammar  # \x07a1 would read as one code point


def test_no_words_no_grammar() -> None:
    with pytest.raises(ValueError):
        prefix_grammar([Evidence(1, "  ", 1.0)])


def test_a_quote_maps_to_the_best_sentence_it_opens() -> None:
    assert source_of("The VPN gateway", EVIDENCE) == 2
    assert source_of("Backups are kept for 35 days.", EVIDENCE) == 1
    assert source_of("  The   VPN ", EVIDENCE) == 2  # whitespace as the grammar joins it


def test_text_that_opens_no_sentence_maps_to_nothing() -> None:
    assert source_of("", EVIDENCE) is None
    assert source_of("kept for 35 days.", EVIDENCE) is None  # not from the start
    assert source_of("The VPN gate", EVIDENCE) is None  # part of a word
    assert source_of("Backups are kept for 35 days. The", EVIDENCE) is None  # quotes do not cross sentences
    assert source_of("Backups are kept für", EVIDENCE) is None  # garbled by the decoder
