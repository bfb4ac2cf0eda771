"""The names a question is about (products, versions, identifiers) and which sources name them.

Among 40,000 chunks a question about another product or version ("the default KeepAliveTimeout in nginx",
"SQLITE_MAX_COLUMN in SQLite 4") always finds a close passage about this one, and no similarity threshold
tells them apart (issue 14: abstention 0.30 on the large eval's dev split at the evidence gate's default).
What tells them apart is that the passage never names what was asked about. So a source may answer only if
its text, heading or file name holds every name of the question; when none does, Kura abstains.

A name is a word written like one: an identifier (``max_connections``, ``HTTP/3``), CamelCase
(``PostgreSQL``), a number (a version, a port), a capitalised word inside an English question (``Microsoft``;
German capitalises every noun, so not there) and any Latin word inside a Japanese question. A lower-case
product name ("nginx", "syslog-ng", "robocopy") is told from an everyday word by two signs together (see
:func:`names`' ``unknown`` and :func:`rare_word`): few of the collection's documents use it (the large eval
names nginx in 2 of 881 files, in passing), and the LLM's tokenizer, whose 49,152 BPE pieces hold common
words whole, cuts it into pieces. Either alone is not enough: "identifier" is absent from data/sample but
one piece, "syslog" is two pieces but in every rsyslog page. The embedder's 30,522 WordPiece pieces were
too few: they cut "identifier" (id ##ent ##ifier) and "endpoint" too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass

from rag.grounding import PREFIX, STOPWORDS
from rag.retrieval import keyword_tokens

_TOKEN = re.compile(r"[A-Za-zÀ-ÿß0-9][\wÀ-ÿß./+-]*[\wÀ-ÿß+]|[A-Za-zÀ-ÿß0-9]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_GERMAN = re.compile(
    r"[äöüß]|\b(der|die|das|den|dem|des|ein|eine|und|oder|nicht|ist|sind|wird|werden|welche[rsnm]?|wie|wann|"
    r"warum|man|mit|bei|für|auf)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_GLUED = re.compile(r"([a-z]+)(\d+)")
_CAMEL = re.compile(r"[a-z][A-Z]")
_JOINED = re.compile(r"[A-Za-z][_./][A-Za-z0-9]|[_/]")
_HYPHEN = r"[\s_-]?"
# "version 16", "PostgreSQL-16", "sqlite4": how a document writes a product's version after its name.
_VERSION_GAP = r"[\s_-]{0,2}(?:version\s*|v)?"


@dataclass(frozen=True)
class Name:
    text: str
    after: str | None = None  # the name a whole number follows: "SQLite 4" must be found so, not any "4"


def _abbreviation(token: str) -> bool:
    return bool(re.fullmatch(r"([A-Za-z]\.)+[A-Za-z]?", token))  # e.g, i.e, z.B


def _identifier(token: str) -> bool:
    """A number, CamelCase or a word joined by _ . or /. An acronym alone (SSID, REST, MPM) is not one: a
    document says "network" where a question says "SSID" (data/sample)."""
    return bool(_NUMBER.search(token) or _CAMEL.search(token) or _JOINED.search(token))


def _acronym(token: str) -> bool:
    return token.isalpha() and token.isupper()


def _parts(question: str) -> Iterator[tuple[int, str]]:
    """Each word with its position; "command-line" and "Worker-MPM" part by part (neither part is a name)."""
    for index, match in enumerate(_TOKEN.finditer(question)):
        token = match.group().rstrip(".")
        if "-" in token and not _NUMBER.search(token):
            yield from ((index, part) for part in token.split("-") if part)
        else:
            yield index, token


def _unknown_words(question: str, unknown: Callable[[str, bool], bool], german: bool) -> Iterator[Name]:
    """Lower-case words (hyphenated ones whole: "syslog-ng") that ``unknown`` says are names."""
    for match in _TOKEN.finditer(question):
        token = match.group().rstrip(".")
        lowered = token.lower()
        if (
            token[0].islower()
            and re.fullmatch(r"[a-zà-ÿß]+(?:-[a-zà-ÿß]+)*", token)
            and len(token) > 2
            and lowered not in STOPWORDS
            and keyword_tokens(token) == [lowered]
            and unknown(lowered, german)
        ):
            yield Name(token)


def names(question: str, unknown: Callable[[str, bool], bool] | None = None) -> list[Name]:
    """The names in ``question`` a source must hold to answer it (see the module's docstring).

    ``unknown`` (``retrieval.rare_name_share``) says whether a lower-case word is a name the collection
    rarely uses: such a word is one too, so that only a source naming it may answer.
    """
    japanese = bool(_CJK.search(question))
    german = not japanese and bool(_GERMAN.search(question))
    found: list[Name] = []
    previous: str | None = None
    for index, token in _parts(question):
        is_name = (
            token.lower() not in STOPWORDS
            and (len(token) > 1 or token.isdigit())
            and not _abbreviation(token)
            and (
                japanese
                or _identifier(token)
                or (not german and index > 0 and token[0].isupper() and not _acronym(token))
            )
        )
        if is_name:
            found.append(Name(token, previous if token.isdigit() else None))
        previous = token if token.isalpha() and (is_name or _acronym(token)) else None  # "IIS 10"
    if unknown is not None:
        found += _unknown_words(question, unknown, german)
    return list(dict.fromkeys(found))


def _pattern(name: Name) -> re.Pattern[str]:
    text = re.escape(name.text.lower())
    if glued := _GLUED.fullmatch(name.text.lower()):  # "sqlite3" is also "sqlite 3" or sqlite-3.40's file
        return re.compile(rf"(?<![a-z0-9]){glued[1]}[\s_-]?{glued[2]}(?!\d)")
    if _NUMBER.fullmatch(name.text):
        # "2.4" also in "2.4.57", but "4" not in "3.40" nor "14"; a whole number after a name (a product's
        # version: "PostgreSQL 16") only after that name
        number = rf"(?<![\d.]){text}(?!\d|\.\d+\.)"
        return re.compile(rf"{re.escape(name.after.lower())}{_VERSION_GAP}{number}" if name.after else number)
    return re.compile(r"(?<![a-z0-9])" + text.replace(re.escape("-"), _HYPHEN))  # "64-bit" is also "64 bit"


def holds(name: Name, haystack: str) -> bool:
    """Whether ``haystack`` (lower-cased) names ``name``; a version may follow any form of its word."""
    return bool(_pattern(name).search(haystack))


def _in_document(name: Name, words: Container[str]) -> bool:
    """A word-like name ("Brindlepost", "Node.js": one keyword) anywhere in the document; never a number."""
    return (
        not _NUMBER.search(name.text)
        and keyword_tokens(name.text) == [name.text.lower()]
        and name.text.lower() in words
    )


def naming(
    question: str,
    haystacks: list[str],
    documents: list[Container[str]] | None = None,
    unknown: Callable[[str, bool], bool] | None = None,
) -> list[bool]:
    """For each haystack (a source's file, heading and text), whether it holds every name of the question.

    A word-like name may also be in the source's whole document (``documents``, its keywords): a release
    note names its product in its title, not in every section. Numbers must be in the source itself: the
    SQLite 3 manual mentions a "4" somewhere.
    """
    wanted = names(question, unknown)
    whole = documents or [()] * len(haystacks)
    return [
        all(holds(name, haystack.lower()) or _in_document(name, words) for name in wanted)
        for haystack, words in zip(haystacks, whole, strict=True)
    ]


def rare_word(
    share: Callable[[str], float], stem_share: Callable[[str], float], pieces: Callable[[str], int], at_most: float
) -> Callable[[str, bool], bool]:
    """A word is a name when at most ``at_most`` of the collection's documents use it (``share``) and the
    LLM's tokenizer cuts it (or a part of a hyphenated word) into ``pieces`` > 1.

    In a German question (``german``) the mostly English vocabulary cuts most words and inflection makes
    any verb form rare ("anzunehmen", "namensbasierten": four dev questions abstained), so there a word is a
    name when no document uses a word opening with its first five letters (``stem_share``): "robocopy". Not
    "few": in the large eval, whose German is 111 of 881 files, "brauc…" is in 4 and "anzun…" in 2.
    """

    def rare(word: str, german: bool) -> bool:
        if german:
            return stem_share(word[:PREFIX]) == 0
        return share(word) <= at_most and any(pieces(part) > 1 for part in word.split("-"))

    return rare


def described(path: str, heading: str | None, text: str) -> str:
    """A source as the name check reads it: its file name's words, its heading and its text."""
    return f"{re.sub(r'[-_]', ' ', path)} {path} {heading or ''} {text}"
