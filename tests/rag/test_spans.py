"""The matcher behind every highlight: one text's sentence found in another reader's words."""

from __future__ import annotations

from rag.spans import locate, text_words


def test_a_sentence_is_found_whatever_the_readers_made_of_hyphens_spaces_and_case() -> None:
    words = text_words("Intro. The in- house TEAM reports incidents within 24 hours. Bye now.")
    assert locate("The in-house team reports incidents within 24 hours.", words) == (1, 9)
    assert [w.text for w in words[1:10]][-1] == "hours."


def test_a_sentence_read_a_little_differently_is_found_by_its_runs_and_an_absent_one_is_not() -> None:
    words = text_words("Intro. The in-house team reports incidents within 24 hours. Bye now.")
    assert locate("The inhouse team report incidents within 24 hrs.", words) == (1, 8)
    assert locate("Payroll questions go to Jana Vogel in room A-104.", words) is None
    assert locate("...", words) is None


def test_text_without_spaces_matches_by_characters() -> None:
    words = text_words("受付は9時から。 会議室は3階にあります。")
    assert locate("会議室は3階にあります", words) == (1, 1)
