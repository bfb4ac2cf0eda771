from __future__ import annotations

import pytest

from rag.citations import CitationCheck, check_citations


def test_valid_citations_are_kept_and_listed_in_order() -> None:
    check = check_citations("Paris [2] is the capital [1]. It is large [2].", 3)
    assert check == CitationCheck("Paris [2] is the capital [1]. It is large [2].", [2, 1], [])


def test_out_of_range_citation_is_removed_with_warning() -> None:
    check = check_citations("It is blue [7].", 3)
    assert check.text == "It is blue."
    assert check.cited == []
    assert check.warnings == ["removed [7]: only sources 1-3 were given"]


def test_zero_is_invalid() -> None:
    check = check_citations("Claim [0] and [1].", 2)
    assert check.text == "Claim and [1]."
    assert check.cited == [1]
    assert check.warnings == ["removed [0]: only sources 1-2 were given"]


def test_multi_number_bracket_keeps_valid_numbers() -> None:
    check = check_citations("Both [2, 9].", 3)
    assert check.text == "Both [2]."
    assert check.cited == [2]
    assert check.warnings == ["removed 9 from [2, 9]: only sources 1-3 were given"]


def test_list_is_normalized_and_deduplicated() -> None:
    check = check_citations("See [3,1;3].", 3)
    assert check.text == "See [3, 1]."
    assert check.cited == [3, 1]


def test_adjacent_brackets() -> None:
    check = check_citations("A [1][2][5] B", 2)
    assert check.text == "A [1][2] B"
    assert check.cited == [1, 2]
    assert check.warnings == ["removed [5]: only sources 1-2 were given"]


def test_range_is_expanded_and_clipped() -> None:
    assert check_citations("x [1-3]", 4).text == "x [1, 2, 3]"
    check = check_citations("x [2–5]", 3)
    assert check.text == "x [2, 3]"
    assert check.cited == [2, 3]
    assert check.warnings == ["removed 4-5 from [2–5]: only sources 1-3 were given"]


def test_huge_range_is_not_materialized() -> None:
    check = check_citations("x [1-1000000000]", 2)
    assert check.text == "x [1, 2]"
    assert check.warnings == ["removed 3-1000000000 from [1-1000000000]: only sources 1-2 were given"]


def test_reversed_range() -> None:
    assert check_citations("x [3-1]", 3).cited == [1, 2, 3]


@pytest.mark.parametrize("written", ["[Source 2]", "[source 2]", "[SOURCES 2]", "[Source #2]", "[ 2 ]"])
def test_source_word_is_normalized(written: str) -> None:
    check = check_citations(f"It rains {written}.", 2)
    assert check.text == "It rains [2]."
    assert check.cited == [2]


def test_source_list_with_words() -> None:
    assert check_citations("x [Source 1, Source 3]", 3).text == "x [1, 3]"


def test_invalid_source_word_citation_removed_with_original_in_warning() -> None:
    check = check_citations("x [Source 4] y", 3)
    assert check.text == "x y"
    assert check.warnings == ["removed [Source 4]: only sources 1-3 were given"]


@pytest.mark.parametrize(
    "text",
    [
        "a list [x] here",
        "see [the docs](http://example.com/9) now",
        "see [9](http://example.com) now",
        "index a[0] and b_2[9] and arr[10][20] and x_[9]",
        "a reference link [docs][9]",
        "footnote [^9]",
        "decimal [3.5]",
        "inline `x = [9]` code",
        "```python\nvalues = [9, 10]\nprint(values[0])\n```",
        "an unclosed fence\n```\n[9]",
        "empty []",
        "nested [[x]]",
    ],
)
def test_non_citations_are_left_alone(text: str) -> None:
    assert check_citations(text, 3) == CitationCheck(text, [], [])


def test_code_does_not_hide_citations_outside_it() -> None:
    check = check_citations("Use `a[9]` as shown [1] but not [9].", 2)
    assert check.text == "Use `a[9]` as shown [1] but not."
    assert check.cited == [1]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a [7] b", "a b"),
        ("a [7], b", "a, b"),
        ("a [7]\nb", "a\nb"),
        ("a [7]", "a"),
        ("a [7] [8] b", "a b"),
        ("a [7][8].", "a."),
        ("[7] Starts a line", "Starts a line"),
        ("x\n  [7] indented", "x\n  indented"),
        ("(see [7])", "(see)"),
        ("a [7]b", "a b"),
    ],
)
def test_removal_tidies_spaces(before: str, after: str) -> None:
    assert check_citations(before, 3).text == after


def test_warning_wording_for_one_and_no_sources() -> None:
    assert check_citations("x [2]", 1).warnings == ["removed [2]: only source 1 was given"]
    check = check_citations("x [1]", 0)
    assert check.text == "x"
    assert check.warnings == ["removed [1]: no sources were given"]


def test_negative_source_count_is_rejected() -> None:
    with pytest.raises(ValueError):
        check_citations("x", -1)


def test_long_bracket_text_is_fast_and_untouched() -> None:
    text = "[" + "1 " * 5000 + "x]"
    assert check_citations(text, 3).text == text
