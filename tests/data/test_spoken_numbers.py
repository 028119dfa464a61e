"""Tests for distilnlu.data.spoken_numbers: numbers and amounts in words (num2words 0.5.14)."""

from __future__ import annotations

import re

import pytest
from num2words import num2words

from distilnlu.data.spoken import to_spoken
from distilnlu.data.spoken_numbers import (
    cardinal_words,
    currency_words,
    digit_by_digit,
    is_year,
    number_words,
    ordinal_words,
    strict_number,
    strip_groups,
    unit_plural,
    year_words,
)


@pytest.mark.parametrize(
    ("language", "value", "to"),
    [
        (lang, value, to)
        for lang in ("en", "de", "es", "fr")
        for value, to in [
            (1982, "year"),
            (2005, "year"),
            (1100, "year"),
            (7, "cardinal"),
            (21, "cardinal"),
            (1000, "cardinal"),
            (123456, "cardinal"),
        ]
    ],
)
def test_matches_num2words(language: str, value: int, to: str) -> None:
    """Plain numbers and lone years read exactly as num2words says (hyphens/commas aside)."""
    reference = num2words(value, lang=language, to=to).lower().replace("-", " ").replace(",", "")
    assert to_spoken(f"x {value} y", language) == f"x {' '.join(reference.split())} y"


def test_ordinals_match_num2words() -> None:
    assert to_spoken("21st", "en") == num2words(21, lang="en", to="ordinal").replace("-", " ")
    assert to_spoken("21e", "fr") == num2words(21, lang="fr", to="ordinal")
    assert to_spoken("21te", "de") == num2words(21, lang="de", to="ordinal")
    assert to_spoken("21.º", "es") == num2words(21, lang="es", to="ordinal")


def test_cardinals_years_and_ordinals() -> None:
    assert cardinal_words("en", "42") == "forty two"
    assert cardinal_words("en", "007") == "zero zero seven"  # a leading zero: digit by digit
    assert cardinal_words("de", "1" * 25) == " ".join(["eins"] * 25)  # over 24 digits
    assert digit_by_digit("es", "105") == "uno cero cinco"
    assert year_words("en", 1982) == "nineteen eighty two"
    assert year_words("de", 1982) == "neunzehnhundertzweiundachtzig"
    assert ordinal_words("en", 21) == "twenty first"
    assert ordinal_words("fr", 1) == "premier"
    assert (is_year("1100"), is_year("2100"), is_year("999")) == (True, False, False)


def test_number_words() -> None:
    assert number_words("de", None, "1.000", ",", "5") == "eintausend komma fünf"
    assert number_words("en", None, "1982", None, None) == "nineteen eighty two"
    assert number_words("en", None, "1982", None, None, year=False) == (
        "one thousand nine hundred and eighty two"
    )
    assert number_words("en", "-", "1982", None, None) == (
        "minus one thousand nine hundred and eighty two"
    )
    assert strip_groups("1 000") == "1000"


def test_strict_number_refuses_dotted_chains() -> None:
    match = re.fullmatch(strict_number("en"), "1,234.56")
    assert match is not None
    assert (match["ip"], match["sep"], match["frac"]) == ("1,234", ".", "56")
    assert re.fullmatch(strict_number("en"), "1.2.3") is None


def test_currency_words() -> None:
    assert currency_words("en", "USD", "5", "50", ".") == "five dollars fifty cents"
    assert currency_words("en", "USD", "0", "5", ".") == "fifty cents"
    assert currency_words("de", "EUR", "3", "50", ",") == "drei euro und fünfzig cent"
    # More than two decimals: a decimal number and the plural unit.
    assert currency_words("en", "USD", "1", "505", ".") == "one point five zero five dollars"
    assert unit_plural("en", "GBP") == "pounds"
    assert unit_plural("es", "USD") == "dólares"
