"""The kind of value a question asks for (a date, a version, a quantity) and whether a text holds one.

Unanswerable questions that still retrieve a close passage are the hard case for abstention: "On
which date was Debian 12 released?" finds a sentence about Debian 12 that holds no date, and its
similarity alone cannot tell. A question that asks for a date, a version or a count is answered only
by evidence holding such a value, which is cheap to check in English, German and Japanese.

"When ...?" asks for a point in time, which a clock time, a weekday or a delay answers as well as a date:
"When does the parking garage open?" over a note saying it "opens at 06:30" abstained while it counted
only dates.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["date", "time", "version", "quantity"]

# Checked in this order: "When finding the MTU, how many bytes ..." asks for a quantity, not a date.
_QUESTION_CUES: dict[AnswerType, re.Pattern[str]] = {
    "quantity": re.compile(
        r"\bhow (many|much|long|large|big|old|often)\b|\bwie (viele?|groß|lange|oft|alt)\b|いくつ|いくら|何個|何回|"
        r"何日間|何時間|何人|何バイト|どのくらい|どれくらい",
        re.IGNORECASE,
    ),
    "version": re.compile(
        r"\b(which|what) version\b|\bwelche[rsnm]? version\b|バージョンは何|何バージョン|バージョンは[?？]",
        re.IGNORECASE,
    ),
    "date": re.compile(
        r"\b(what date|which date|which day|what year|which year|welchem datum|welchem jahr|welchem tag)\b|"
        r"何年|何月|何日に|日付",
        re.IGNORECASE,
    ),
    "time": re.compile(r"^\W*(when|wann)\b|\bwhat time\b|\bum wie viel uhr\b|いつ|何時", re.IGNORECASE),
}

# "may" and "march" are everyday words too: they count only next to a day number (see below).
_MONTHS = (
    "january|february|april|june|july|august|september|october|november|december|"
    "januar|februar|märz|mai|juni|juli|oktober|dezember|jan|feb|apr|jun|jul|aug|sept|oct|okt|nov|dez"
)
# German "ein(e)" is mostly the article, so it is not taken for a number.
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|"
    "eins|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zwanzig|hundert|tausend|"
    "once|twice|dozen"
)
_DATE = (
    rf"\b(1[6-9]\d\d|20\d\d)\b|\b\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}\b|\b({_MONTHS})\b|\d+\s*[年月日]|"
    rf"\b\d{{1,2}}\.?\s+(may|march)\b|\b(may|march)\s+\d{{1,2}}\b"
)
_WEEKDAYS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekdays?|weekends?|"
    "montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|werktag|wochenende"
)
_UNITS = "seconds?|minutes?|hours?|days?|weeks?|months?|years?|sekunden|minuten|stunden|tagen?|wochen|monaten|jahren"
# 06:30, 6 am, 14 Uhr, half past eleven, noon, on Sundays, within 24 hours, 6時
_MOMENT = (
    rf"\b\d{{1,2}}:\d{{2}}\b|\b\d{{1,2}}(:\d{{2}})?\s*(am|pm|a\.m\.|p\.m\.|uhr|o'clock)(?!\w)|"
    rf"\b(half past|quarter past|quarter to|noon|midnight|mittags?|mitternacht)\b|\b({_WEEKDAYS})\b|"
    rf"\b(within|after|before|every|innerhalb|nach|alle)\s+(\d+|{_NUMBER_WORDS})\s+({_UNITS})\b|\d+\s*時|曜日"
)
_VALUE_PATTERNS: dict[AnswerType, re.Pattern[str]] = {
    "date": re.compile(_DATE, re.IGNORECASE),
    "time": re.compile(rf"{_DATE}|{_MOMENT}", re.IGNORECASE),
    "version": re.compile(r"\d+\.\d+|\b(version|v)\s*\d+|バージョン\s*\d+|\d+\s*版", re.IGNORECASE),
    "quantity": re.compile(rf"\d|\b({_NUMBER_WORDS})\b|[一二三四五六七八九十百千万]", re.IGNORECASE),
}


def expected_type(question: str) -> AnswerType | None:
    """The kind of value the question asks for, or None when it asks for something else (a name, a file).

    ``time`` is any point in time (a date, a clock time, a weekday, a delay); ``date`` only a calendar date.
    """
    for kind, cue in _QUESTION_CUES.items():
        if cue.search(question):
            return kind
    return None


def holds_value(text: str, kind: AnswerType) -> bool:
    return bool(_VALUE_PATTERNS[kind].search(text))


def answerable_by(question: str, texts: list[str]) -> bool:
    """False only when the question asks for a typed value and none of ``texts`` holds one."""
    kind = expected_type(question)
    return kind is None or any(holds_value(text, kind) for text in texts)


# The form an answer takes when the question asks for an option or a command (a how-to), for evidence
# ranking only (never for abstention): among the sentences of a man page the one giving "-r, --reverse"
# should outrank the one that says "this option is useful" (large eval, Japanese and German options). Up to two
# words may stand before the noun ("Which Postfix parameter ..."): large eval dev concise 0.616 -> 0.630.
AnswerForm = Literal["option", "command"]
_FORM_CUES: dict[AnswerForm, re.Pattern[str]] = {
    "option": re.compile(r"\boptions?\b|オプション|schalter", re.IGNORECASE),
    "command": re.compile(
        r"^\W*how (do|can|should|would) (i|you|we|one)\b|"
        r"\b(which|what) ([\w-]+ ){0,2}(command|directive|parameter|setting|line)s?\b|"
        r"\bbefehl|\bdirektive|\bwie (kann|macht|bringt|startet|aktiviert|richtet|konfiguriert)|"
        r"コマンド|ディレクティブ|するには|どうしますか|どうすれば",
        re.IGNORECASE,
    ),
}
# An option (-r, --reverse); code: a dot command (.import), an assignment, a path, an identifier joined by
# _ or ., a call, a prompt.
_OPTION = r"(?<![\w-])--?[A-Za-z0-9][\w-]*"
_FORM_PATTERNS: dict[AnswerForm, re.Pattern[str]] = {
    "option": re.compile(_OPTION),
    "command": re.compile(
        rf"{_OPTION}|(?<![\w.])\.[a-z]{{2,}}\b|\w\s?=\s?\S|(?<!\w)/[\w.-]+/|\b\w+_\w+\b|\b[a-z]{{2,}}\.[a-z]{{2,}}\b|\w\(|^\s*[$#>]\s|`[^`]+`|\"[^\"]+\""
    ),
}


def expected_form(question: str) -> AnswerForm | None:
    """Whether the question asks for an option or a command (the first cue that matches), else None."""
    for form, cue in _FORM_CUES.items():
        if cue.search(question):
            return form
    return None


def holds_form(text: str, form: AnswerForm) -> bool:
    return bool(_FORM_PATTERNS[form].search(text))
