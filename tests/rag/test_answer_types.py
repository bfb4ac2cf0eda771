"""The expected-answer-type rule: which questions ask for a date, a version or a quantity, and which texts hold one."""

from __future__ import annotations

import pytest

from rag.answer_types import answerable_by, expected_form, expected_type, holds_form, holds_value


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("On which date was Debian 12 bookworm released?", "date"),
        ("When was Brindlepost 4.1.3 released?", "time"),
        ("Wann wurde die Kantine eröffnet?", "time"),
        ("When does the parking garage open?", "time"),
        ("What time does the canteen close?", "time"),
        ("食堂はいつ開きますか？", "time"),
        ("Debian 12 に含まれる GNOME のバージョンは何ですか？", "version"),
        ("Which version of Bitwarden is used?", "version"),
        ("When finding the MTU with ping, how many bytes are added?", "quantity"),
        ("Wie groß ist die Swap-Partition?", "quantity"),
        ("会議室はいくつありますか？", "quantity"),
        ("Which password manager does the company use?", None),
        ("Mit welchem Befehl listet man Pakete auf, für die eine neuere Version verfügbar ist?", None),
        ("Which 64-bit Debian port is for IBM System z machines?", None),
    ],
)
def test_expected_type(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


@pytest.mark.parametrize(
    ("text", "kind", "holds"),
    [
        ("Released 3 March 2025", "date", True),
        ("Am 01.10.2024 eröffnet.", "date", True),
        ("2023年6月10日にリリースされました。", "date", True),
        ("bookworm (Debian12) was a green toy worm", "date", False),
        ("You may use the March release notes", "date", False),
        ("Standards-Version: 3.9.4", "date", False),
        ("Standards-Version: 3.9.4", "version", True),
        ("6行目は、パッケージが準拠するDebian Policy Manual のバージョンです。", "version", False),
        ("Reports are due within four hours.", "quantity", True),
        ("Es gibt eine Datei dafür.", "quantity", False),
        ("28 bytes are added", "quantity", True),
        ("The parking garage opens at 06:30.", "time", True),
        ("The parking garage opens at 06:30.", "date", False),
        ("Die Kantine öffnet um 11 Uhr.", "time", True),
        ("The canteen opens at half past eleven.", "time", True),
        ("Backups run at 2 a.m. on Sundays", "time", True),
        ("Incidents must be reported within 24 hours.", "time", True),
        ("Released 3 March 2025", "time", True),
        ("bookworm (Debian12) was a green toy worm", "time", False),
        ("Brindlepost 4.1.3 was released by the team.", "time", False),
    ],
)
def test_holds_value(text: str, kind: str, holds: bool) -> None:
    assert holds_value(text, kind) is holds  # type: ignore[arg-type]


def test_only_a_typed_question_without_a_typed_value_is_unanswerable() -> None:
    assert answerable_by("Which password manager?", ["No values here."])
    assert not answerable_by("When was it released?", ["It was released by the team."])
    assert answerable_by("When was it released?", ["It was released by the team.", "Released 3 March 2025."])


def test_a_clock_time_answers_a_when_question_but_not_a_date_question() -> None:
    note = ["The parking garage opens at 06:30 on weekdays."]
    assert answerable_by("When does the parking garage open?", note)
    assert not answerable_by("On which date does the parking garage open?", note)


@pytest.mark.parametrize(
    ("question", "form"),
    [
        ("ls でソート順を反転させるオプションは何ですか?", "option"),
        ("Welche Option von journalctl zeigt Einträge ab einem Datum?", "option"),
        ("How do I import a CSV file into a table in the sqlite3 shell?", "command"),
        ("Mit welchem Befehl startet man Apache neu?", "command"),
        ("Which Postfix parameter lists the SMTP-only Milter applications?", "command"),  # a name before the noun
        ("Which of the two lines is shorter?", None),  # three words in between: not a command asked for
        ("What is the default of MaxKeepAliveRequests?", None),
    ],
)
def test_a_question_asking_for_an_option_or_a_command_is_told(question: str, form: str | None) -> None:
    assert expected_form(question) == form


def test_a_sentence_shows_an_option_or_a_command() -> None:
    assert holds_form("-r, --reverse ソート順を反転する", "option")
    assert not holds_form("このオプションは便利です。", "option")
    assert holds_form('module(load="imudp")', "command") and holds_form(".import FILE TABLE", "command")
    assert not holds_form("The default is five, e.g. the end.", "command")
