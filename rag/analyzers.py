"""Keyword analyzers: the terms BM25 indexes a text by, the same for documents and questions.

The bundled embedder reads only English, so for German and Japanese keyword search carries retrieval
(issue 14). ``bigram`` is language-blind: lower-cased words plus CJK character bigrams. ``language``
guesses each text's language: Japanese is cut into words by Janome's morphological analysis (its
dictionary ships in the wheel) and, with ``retrieval.german_stems``, German words are Snowball-stemmed
("Einträge" finds "Eintrag"; off by default: no gain on the large eval, 2 of 9 German answers lost on
data/eval). Both packages are optional and imported only when chosen (:func:`keyword_analyzer`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal, Protocol

from rag.errors import KuraError

log = logging.getLogger(__name__)

WORD = re.compile(r"[0-9a-zà-ÿß]+(?:[.:-][0-9a-z]+)*", re.IGNORECASE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
KANA = re.compile(r"[\u3040-\u30ff]")
LETTERS = re.compile(r"[a-zäöüß]+")
# Function words telling German from English in a question or a chunk: a text is German when it holds
# more of the first than of the second (every German question of the large eval, none of the English).
_GERMAN_TEXT = """der die das und ist nicht mit ein eine einen einem werden wird für auf sich zu den dem des von wie
welche welcher welchen welchem welches man oder auch wenn bei im zum zur nur kann sind diese dieser alle über als aus
nach wer was wo"""
GERMAN_WORDS = frozenset(_GERMAN_TEXT.split())
_ENGLISH_TEXT = "the and is of to in for with that this be are by on an it as or which what how"
ENGLISH_WORDS = frozenset(_ENGLISH_TEXT.split())
# Janome parts of speech that carry no meaning to search by: particles, auxiliary verbs, symbols.
JAPANESE_FUNCTION = frozenset({"助詞", "助動詞", "記号"})
Language = Literal["en", "de", "ja"]


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased words (keeping 10.4.2 or 4443/tcp-like tokens whole) plus CJK character bigrams."""
    lowered = text.lower()
    tokens = WORD.findall(lowered)
    for run in CJK.findall(lowered):
        tokens += [run[i : i + 2] for i in range(max(1, len(run) - 1))]
    return tokens


def guess_language(text: str, words: list[str] | None = None) -> Language:
    """Japanese when the text has kana (Chinese shares the kanji, not the kana), German when it has more
    German than English function words, else English. ``words``: its :func:`keyword_tokens`, if known."""
    if KANA.search(text):
        return "ja"
    words = keyword_tokens(text) if words is None else words
    german = sum(word in GERMAN_WORDS for word in words)
    return "de" if german > sum(word in ENGLISH_WORDS for word in words) else "en"


class KeywordAnalyzer(Protocol):
    name: str

    def terms(self, text: str, words: list[str]) -> list[str]:
        """The BM25 terms of a text, given its :func:`keyword_tokens` (what English is indexed by)."""
        ...

    def save(self) -> None:
        """Keep what was expensive to compute for the next process (after an index build)."""
        ...


class BigramAnalyzer:
    name = "bigram"

    def terms(self, text: str, words: list[str]) -> list[str]:
        return words

    def save(self) -> None:
        """Nothing to keep: bigrams are cheap."""


def _require(module: str, setting: str) -> Any:
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise KuraError(f"{setting} needs {package}: pip install {package}") from None


class LanguageAnalyzer:
    """Japanese words by Janome, German Snowball stems (when asked), else :func:`keyword_tokens`.

    Janome analyses about 10,000 characters a second here: the large eval's 1.9 M characters of Japanese
    took 110-180 s, so each Japanese text's terms are kept in ``cache_file`` (by a hash of the text) and
    an index is rebuilt, or the next process starts, without analysing them again.
    """

    name = "language"

    def __init__(self, cache_file: Path | None = None, german_stems: bool = False) -> None:
        self._janome = _require("janome.tokenizer", "retrieval.keyword_analyzer 'language'")
        self._stem: Any = None
        if german_stems:
            stemmer = _require("snowballstemmer", "retrieval.german_stems").stemmer("german")
            self._stem = functools.lru_cache(maxsize=1 << 18)(stemmer.stemWord)
        self._tokenizer: Any = None
        self._cache_file = cache_file
        self._cache: dict[str, list[str]] = _load(cache_file)
        self._added = 0

    def terms(self, text: str, words: list[str]) -> list[str]:
        language = guess_language(text, words)
        if language == "ja":
            return self._japanese(text)
        if language == "de" and self._stem is not None:
            return [self._stem(word) if LETTERS.fullmatch(word) else word for word in words]
        return words

    def _japanese(self, text: str) -> list[str]:
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
        terms = self._cache.get(key)
        if terms is None:
            terms = self._cache[key] = self._analyse(text.lower())
            self._added += 1
        return list(terms)

    def _analyse(self, lowered: str) -> list[str]:
        """Words as :func:`keyword_tokens` finds them, and Janome's base forms of the CJK runs' content words."""
        if self._tokenizer is None:
            self._tokenizer = self._janome.Tokenizer()  # loads the dictionary (~1 s): only once Japanese is seen
        terms = WORD.findall(lowered)
        for run in CJK.findall(lowered):
            for token in self._tokenizer.tokenize(run):
                if token.part_of_speech.split(",", 1)[0] not in JAPANESE_FUNCTION:
                    terms.append(token.base_form if token.base_form != "*" else token.surface)
        return terms

    def save(self) -> None:
        if self._cache_file is None or not self._added:
            return
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self._cache_file.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(self._cache, out, ensure_ascii=False, separators=(",", ":"))
        os.replace(temporary, self._cache_file)  # a reader never sees half a file
        self._added = 0


def _load(cache_file: Path | None) -> dict[str, list[str]]:
    """The cached terms, or none when there is no cache yet or it cannot be read (it is only a cache)."""
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("keyword cache %s is unreadable; Japanese text is analysed again", cache_file)
        return {}
    return cached if isinstance(cached, dict) else {}


def _version(package: str) -> str:
    """The installed version (another version may cut words otherwise, so it names the cache file)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def keyword_analyzer(kind: str, cache_dir: Path | None = None, german_stems: bool = False) -> KeywordAnalyzer:
    """The analyzer ``retrieval.keyword_analyzer`` names; ``auto``: ``language`` when Janome is installed,
    else ``bigram`` (with a warning saying what to install). ``german_stems``: ``retrieval.german_stems``."""
    if kind == "bigram":
        return BigramAnalyzer()
    cache_file = cache_dir / f"keywords-janome-{_version('janome')}.json" if cache_dir is not None else None
    if kind == "language":
        return LanguageAnalyzer(cache_file, german_stems)
    try:
        return LanguageAnalyzer(cache_file, german_stems)
    except KuraError as missing:
        log.warning("Japanese keyword search falls back to character bigrams: %s", missing)
        return BigramAnalyzer()
