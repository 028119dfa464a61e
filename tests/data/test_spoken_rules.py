"""Tests for distilnlu.data.spoken_rules: the number passes of each supported language."""

from __future__ import annotations

import pytest

from distilnlu.data.spoken_rules import LanguageRules, language_rules


def test_rules_are_built_once_per_language() -> None:
    rules = language_rules("en")
    assert isinstance(rules, LanguageRules) and language_rules("en") is rules
    assert rules.and_word == " and "
    assert {lang: len(language_rules(lang).passes) for lang in ("en", "de", "es", "fr")} == {
        "en": 7,
        "de": 8,
        "es": 5,
        "fr": 5,
    }


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        # Passes pad their words with spaces; the normaliser in spoken.py collapses them.
        ("en", "at 7:30 pm, 3rd & 50%", "at  seven thirty pm ,  third  &  fifty percent "),
        ("de", "am 3. oktober 1990", "am  dritten oktober   neunzehnhundertneunzig "),
        ("fr", "1er et 7h30", " premier  et  sept heures trente "),
        ("es", "1ª a las 1:00 h", " primera  a las  una hora "),
        ("en", "no digits here", "no digits here"),
    ],
)
def test_numbers(language: str, text: str, expected: str) -> None:
    assert language_rules(language).numbers(text) == expected
