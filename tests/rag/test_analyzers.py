"""Keyword analyzers on small texts: the language guess, the factory's choice and install hint, Janome's
Japanese words, German stems, and the cache of Japanese terms. The ``language`` analyzer's tests need
janome, the German stems' snowballstemmer (project dependencies): without them they fail, never skipped."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import pytest

from rag.analyzers import (
    BigramAnalyzer,
    LanguageAnalyzer,
    guess_language,
    keyword_analyzer,
    keyword_tokens,
)
from rag.errors import KuraError
from rag.retrieval import KeywordIndex
from tests.rag.test_retrieval import ListStore


@pytest.fixture(scope="module")
def language() -> LanguageAnalyzer:
    return LanguageAnalyzer(german_stems=True)


def terms(analyzer: Any, text: str) -> list[str]:
    return list(analyzer.terms(text, keyword_tokens(text)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grep で大文字と小文字を区別しないオプションは?", "ja"),
        ("Welche Option von journalctl zeigt Einträge ab einem bestimmten Datum an?", "de"),
        ("Which option of journalctl shows entries since a date?", "en"),
        ("東京", "en"),  # kanji without kana may be Chinese: not analysed as Japanese
        ("journalctl --since", "en"),
    ],
)
def test_guess_language(text: str, expected: str) -> None:
    assert guess_language(text) == expected


def test_bigram_analyzer_is_the_keyword_tokens() -> None:
    assert terms(BigramAnalyzer(), "東京都 port 4443/tcp") == keyword_tokens("東京都 port 4443/tcp")


def test_factory_names_each_analyzer() -> None:
    assert isinstance(keyword_analyzer("bigram"), BigramAnalyzer)
    assert isinstance(keyword_analyzer("language"), LanguageAnalyzer)
    assert isinstance(keyword_analyzer("auto"), LanguageAnalyzer)


@pytest.fixture
def without_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def missing(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] in {"janome", "snowballstemmer"}:
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", missing)


@pytest.mark.usefixtures("without_packages")
def test_language_without_its_packages_says_what_to_install() -> None:
    with pytest.raises(KuraError, match="'language' needs janome: pip install janome"):
        keyword_analyzer("language")


@pytest.mark.usefixtures("without_packages")
def test_auto_without_the_packages_falls_back_to_bigrams_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rag.analyzers"):
        assert isinstance(keyword_analyzer("auto"), BigramAnalyzer)
    assert "pip install janome" in caplog.text


def test_japanese_becomes_content_words_in_base_form(language: LanguageAnalyzer) -> None:
    found = terms(language, "grep で大文字と小文字を区別しないオプション")
    assert found[0] == "grep"  # words outside the Japanese runs as keyword_tokens finds them
    assert {"大文字", "小文字", "区別", "する", "オプション"} <= set(found)  # し -> する
    assert not {"と", "を", "ない"} & set(found)  # particles and auxiliaries are not searched by


def test_german_stems_without_their_package_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name: real("no_such") if "snowball" in name else real(name))
    assert isinstance(keyword_analyzer("language"), LanguageAnalyzer)  # stems off: not needed
    with pytest.raises(KuraError, match="german_stems needs snowballstemmer: pip install snowballstemmer"):
        keyword_analyzer("language", german_stems=True)


def test_german_is_left_as_keyword_tokens_unless_stems_are_asked_for() -> None:
    text = "Zeigt die Einträge ab dem angegebenen Datum"
    assert terms(keyword_analyzer("language"), text) == keyword_tokens(text)


def test_german_words_are_stemmed_and_codes_kept(language: LanguageAnalyzer) -> None:
    found = terms(language, "Zeigt die Einträge mit dem Fehler ERR-42 ab Version 10.4.2")
    assert {"eintrag", "err-42", "10.4.2"} <= set(found)
    assert terms(language, "Der Eintrag im Journal") == ["der", "eintrag", "im", "journal"]


def test_english_is_left_as_keyword_tokens(language: LanguageAnalyzer) -> None:
    text = "The entries since version 10.4.2"
    assert terms(language, text) == keyword_tokens(text)


def test_bm25_with_the_language_analyzer_matches_inflected_words(language: LanguageAnalyzer) -> None:
    store = ListStore([
        ("de", "Fängt die Anzeige mit neueren Einträgen ab dem angegebenen Datum an.", {}),
        ("ja", "パターンと入力ファイルの両方で大文字と小文字の区別を無視する。", {}),
        ("en", "Entries are shown from the given date on.", {}),
        ("other", "Der Eintrag wird gelöscht. ファイルを削除します。", {}),
    ])  # fmt: skip
    index = KeywordIndex(language)
    assert index.search(store, "Welche Option zeigt Einträge ab einem Datum?", 1) == ["de"]  # type: ignore[arg-type]
    assert index.search(store, "大文字と小文字を区別しないオプション", 1) == ["ja"]  # type: ignore[arg-type]


def test_japanese_terms_are_cached_across_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "大文字と小文字を区別しない"
    first = keyword_analyzer("language", tmp_path)
    analysed = terms(first, text)
    first.save()
    (cache,) = tmp_path.glob("keywords-janome-*.json")

    def never(self: LanguageAnalyzer, lowered: str) -> list[str]:
        raise AssertionError("analysed again")

    monkeypatch.setattr(LanguageAnalyzer, "_analyse", never)
    assert terms(keyword_analyzer("language", tmp_path), text) == analysed
    cache.write_text("{not json", encoding="utf-8")
    monkeypatch.undo()
    assert terms(keyword_analyzer("language", tmp_path), text) == analysed  # an unreadable cache is rebuilt
