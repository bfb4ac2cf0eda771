"""The names a question is about and whether a source names them (rag.entities): how Kura tells a question
about another product or version from one its documents answer."""

from __future__ import annotations

import pytest

from rag.entities import Name, described, names, naming, rare_word


def texts(question: str) -> list[str]:
    return [name.text for name in names(question)]


def test_identifiers_versions_and_capitalised_words_are_names() -> None:
    question = "What is the default max_connections in PostgreSQL 16?"
    assert names(question) == [Name("max_connections"), Name("PostgreSQL"), Name("16", after="PostgreSQL")]
    assert texts("How do I enable HTTP/3 in Apache httpd 2.4?") == ["HTTP/3", "Apache", "2.4"]
    assert texts("Which built-in FTS5 function ranks matches?") == ["FTS5"]  # "built-in" is no name
    assert texts("What is the SSID of the Wi-Fi network?") == ["Wi", "Fi"]  # an acronym alone is no name
    assert texts("Which command compares diff.gz files, e.g. of 64-bit packages?") == ["diff.gz", "64-bit"]
    assert names("What is the keep-alive timeout in IIS 10?") == [Name("10", after="IIS")]


def test_german_nouns_are_not_names_but_numbers_are() -> None:
    """German capitalises every noun: only identifiers and numbers count there."""
    assert texts("Wie bringt man Apache dazu, an Port 80 und an Port 8000 Verbindungen anzunehmen?") == ["80", "8000"]


def test_every_latin_word_of_a_japanese_question_is_a_name() -> None:
    assert texts("nginx の worker_connections のデフォルト値は何ですか?") == ["nginx", "worker_connections"]


@pytest.mark.parametrize(
    ("question", "source", "held"),
    [
        ("What is the default SQLITE_MAX_COLUMN in SQLite 4?", "SQLITE_MAX_COLUMN defaults to 2000. 4 bytes.", False),
        ("What is the default SQLITE_MAX_COLUMN in SQLite 3?", "SQLITE_MAX_COLUMN defaults to 2000.", True),
        ("What is the maximum number of upvalues in Lua 5.4?", "Lua 5.1 allows 60 upvalues.", False),
        ("How do I enable HTTP/3 in Apache httpd 2.4?", "Apache 2.4.57 speaks HTTP/2.", False),
        ("Which Apache 2.4 directive sets HTTP/2?", "The H2Direct directive; HTTP/2 in httpd 2.4.57.", True),
        ("What is Exim's default message_size_limit?", "message_size_limit Default: 50M", True),
    ],
)
def test_a_source_must_name_every_name_in_its_file_heading_or_text(question: str, source: str, held: bool) -> None:
    """A version is found as a version ("SQLite 3" in "sqlite-3.40-..."), never inside another number."""
    path = "sqlite-3.40-limits.html" if "SQLite" in question else "apache-2.4-mod-core.html"
    path = "exim-4.96-main.html" if "Exim" in question else path
    assert naming(question, [described(path, "Limits", source)]) == [held]


def test_a_plain_name_may_be_in_the_whole_document_a_version_only_in_the_source() -> None:
    """A release note names its product in its title, not in the section that answers."""
    question = "When was Brindlepost 4.1.3 released?"
    document = {"brindlepost", "release", "notes"}
    assert naming(question, ["4.1.3 released 3 March 2025"], documents=[document]) == [True]
    assert naming(question, ["4.1.2 released 3 March 2025"], documents=[document]) == [False]
    assert naming(question, ["4.1.3 released 3 March 2025"], documents=[{"other"}]) == [False]


def test_a_question_without_names_is_answered_by_any_source() -> None:
    assert naming("wie lange dauert es?", ["a", "b"]) == [True, True]


def test_a_hyphen_may_be_a_space_and_a_dotted_name_may_be_anywhere_in_its_document() -> None:
    assert naming("Which 64-bit port?", ["the 64 bit port"]) == [True]
    question = "What is the default maximum size of HTTP headers in Node.js 18?"
    assert naming(question, [described("nodejs-18-cli.md", None, "16 KiB")], [{"node.js"}]) == [True]
    assert naming(question, [described("nodejs-16-cli.md", None, "16 KiB")], [{"node.js"}]) == [False]


# Pieces as the bundled LLM's BPE cuts these words, and the share of documents using each.
PIECES = {"nginx": 3, "robocopy": 3, "syslog": 2, "ng": 1, "identifier": 1, "unterbrechungsfrei": 5, "spiegelt": 3}
SHARE = {"syslog": 0.2, "nginx": 0.002}
# German words by their first five letters: inflected forms ("anzunehmen") are rare, their stems are not.
STEMS = {"unter": 0.3, "namen": 0.2, "brauc": 0.005, "roboc": 0.0}
RARE = rare_word(
    lambda word: SHARE.get(word, 0.0), lambda stem: STEMS.get(stem, 0.5), lambda word: PIECES.get(word, 1), 0.01
)


@pytest.mark.parametrize(
    ("question", "found"),
    [
        ("What is the default KeepAliveTimeout in nginx?", ["KeepAliveTimeout", "nginx"]),  # in 2 of 881 files
        ("How do I configure syslog-ng to forward logs?", ["syslog-ng"]),  # whole, though "syslog" is common
        ("Welche Option von robocopy spiegelt ein Verzeichnis?", ["robocopy"]),  # lower-case in German
        ("What is the identifier of the fixed vulnerability?", []),  # one piece: a dictionary word
        ("Mit welchem Befehl startet man Apache unterbrechungsfrei neu?", []),  # "unter…" in 30% of them
        ("Was braucht ein Block bei namensbasierten Hosts?", []),  # a German stem in few documents is no name
    ],
)
def test_a_rare_lower_case_word_the_tokenizer_cuts_is_a_name_in_german_a_rare_stem(
    question: str, found: list[str]
) -> None:
    assert [name.text for name in names(question, RARE)] == found


def test_a_rare_name_must_be_in_the_source() -> None:
    """The Apache manual's KeepAliveTimeout does not answer a question about nginx's."""
    question = "What is the default KeepAliveTimeout in nginx?"
    source = described("apache-2.4-mod-core.html", "KeepAliveTimeout", "Default: KeepAliveTimeout 5")
    assert naming(question, [source]) == [True]
    assert naming(question, [source], unknown=RARE) == [False]
    assert naming(question, [f"{source} nginx uses 75s"], unknown=RARE) == [True]
