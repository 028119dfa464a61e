"""Tests for the written-to-spoken-form converter (DESIGN.md §3 "Spoken form").

Expected strings were produced by running num2words 0.5.14 (the pinned version); the
`test_matches_num2words` cases in test_spoken_numbers.py re-derive the plain number words from
num2words at test time.
"""

from __future__ import annotations

import re
import time
import warnings

import pytest

from distilnlu.data import spoken
from distilnlu.data.spoken import SUPPORTED_LANGUAGES, to_spoken

# (language, written, spoken)
CASES: list[tuple[str, str, str]] = [
    # ---- en ----------------------------------------------------------------------------------
    ("en", "Meet me at 7:30.", "meet me at seven thirty"),
    ("en", "at 7:05", "at seven oh five"),
    ("en", "7:00 pm", "seven pm"),
    ("en", "7pm", "seven pm"),
    ("en", "at 7:30 a.m.", "at seven thirty am"),
    ("en", "7:00", "seven o'clock"),
    ("en", "14:00", "fourteen hundred"),
    ("en", "the 1st, 2nd, 3rd and 21st", "the first second third and twenty first"),
    ("en", "11th hour", "eleventh hour"),
    ("en", "3.5", "three point five"),
    ("en", "0.05", "zero point zero five"),
    ("en", "-7 degrees", "minus seven degrees"),
    ("en", "−3.25", "minus three point two five"),
    ("en", "$5", "five dollars"),
    ("en", "$5.50", "five dollars fifty cents"),
    ("en", "$0.99", "ninety nine cents"),
    ("en", "$1", "one dollar"),
    ("en", "£2", "two pounds"),
    ("en", "€3", "three euro"),
    ("en", "5 USD", "five dollars"),
    ("en", "$1.5 million", "one point five million dollars"),
    ("en", "born in 1982", "born in nineteen eighty two"),
    ("en", "in 2005", "in two thousand and five"),
    ("en", "year 2100", "year two thousand one hundred"),
    ("en", "1,982 people", "one thousand nine hundred and eighty two people"),
    ("en", "50%", "fifty percent"),
    ("en", "50 %", "fifty percent"),
    ("en", "12.5% off", "twelve point five percent off"),
    ("en", "1,000", "one thousand"),
    (
        "en",
        "1,234,567",
        "one million two hundred and thirty four thousand five hundred and sixty seven",
    ),
    ("en", "1,234.56", "one thousand two hundred and thirty four point five six"),
    ("en", "Don't stop", "don't stop"),
    ("en", "'quoted'", "quoted"),
    ("en", "rock ’n’ roll", "rock n roll"),
    ("en", "the students' books", "the students books"),
    ("en", "I don’t know", "i don't know"),
    ("en", "42", "forty two"),
    ("en", "0", "zero"),
    ("en", "007", "zero zero seven"),
    ("en", "mp3 and A4", "mp three and a four"),
    ("en", "Hello,   world!!  How are you?", "hello world how are you"),
    ("en", "state-of-the-art", "state of the art"),
    ("en", "the 1990s and '80s", "the nineteen nineties and eighties"),
    ("en", "version 3.5.1", "version three five one"),
    ("en", "10-20 pages", "ten twenty pages"),
    ("en", "AT&T", "at and t"),
    # ---- de ----------------------------------------------------------------------------------
    ("de", "Um 7:30 Uhr", "um sieben uhr dreißig"),
    ("de", "7.30 Uhr", "sieben uhr dreißig"),
    ("de", "um 1 Uhr", "um ein uhr"),
    ("de", "um 18:05", "um achtzehn uhr fünf"),
    ("de", "der 2te Platz", "der zweite platz"),
    ("de", "die 3ten Spiele", "die dritten spiele"),
    ("de", "am 3. Oktober", "am dritten oktober"),
    ("de", "Der 3. Oktober", "der dritte oktober"),
    ("de", "Montag, 3. Oktober", "montag dritter oktober"),
    ("de", "am 12.03.2020", "am zwölften dritten zweitausendzwanzig"),
    ("de", "zum 3. Mal", "zum dritten mal"),
    ("de", "3,5", "drei komma fünf"),
    ("de", "3.5", "drei punkt fünf"),
    ("de", "-3,5", "minus drei komma fünf"),
    ("de", "3,50 €", "drei euro und fünfzig cent"),
    ("de", "3 €", "drei euro"),
    ("de", "€3", "drei euro"),
    ("de", "1 €", "ein euro"),
    ("de", "$5.50", "fünf dollar und fünfzig cent"),
    ("de", "1.000.000 €", "eine million euro"),
    ("de", "im Jahr 1982", "im jahr neunzehnhundertzweiundachtzig"),
    ("de", "50 %", "fünfzig prozent"),
    ("de", "50%", "fünfzig prozent"),
    ("de", "1.000", "eintausend"),
    ("de", "1.000,50", "eintausend komma fünf null"),
    (
        "de",
        "1.234.567",
        "eine million zweihundertvierunddreißigtausendfünfhundertsiebenundsechzig",
    ),
    ("de", "21", "einundzwanzig"),
    ("de", "die 90er", "die neunziger"),
    ("de", "Straße, Größe!", "straße größe"),
    # ---- es ----------------------------------------------------------------------------------
    ("es", "a las 7:30", "a las siete y treinta"),
    ("es", "a la 1:00", "a la una"),
    ("es", "7:05", "siete y cinco"),
    ("es", "las 21:00 h", "las veintiuna horas"),
    ("es", "1º", "primero"),
    ("es", "1.º", "primero"),
    ("es", "1ª", "primera"),
    ("es", "1.ª", "primera"),
    ("es", "el 1er piso", "el primer piso"),
    ("es", "3er", "tercer"),
    ("es", "2do", "segundo"),
    ("es", "3ra", "tercera"),
    ("es", "21º", "vigésimo primero"),
    ("es", "3,5", "tres coma cinco"),
    ("es", "3.5", "tres punto cinco"),
    ("es", "50 %", "cincuenta por ciento"),
    ("es", "50%", "cincuenta por ciento"),
    ("es", "3,50 €", "tres euros con cincuenta céntimos"),
    ("es", "$5", "cinco dólares"),
    ("es", "1 €", "un euro"),
    ("es", "1.000.000 €", "un millón de euros"),
    ("es", "en 1982", "en mil novecientos ochenta y dos"),
    ("es", "1.000", "mil"),
    ("es", "Niño, ¿qué tal?", "niño qué tal"),
    ("es", "-5", "menos cinco"),
    # ---- fr ----------------------------------------------------------------------------------
    ("fr", "à 7h30", "à sept heures trente"),
    ("fr", "7 h", "sept heures"),
    ("fr", "1h", "une heure"),
    ("fr", "21h15", "vingt et une heures quinze"),
    ("fr", "7:05", "sept heures cinq"),
    ("fr", "le 1er", "le premier"),
    ("fr", "la 1re", "la première"),
    ("fr", "la 1ère", "la première"),
    ("fr", "le 2e", "le deuxième"),
    ("fr", "le 2ème", "le deuxième"),
    ("fr", "2nd", "second"),
    ("fr", "2nde", "seconde"),
    ("fr", "les 1ers", "les premiers"),
    ("fr", "le 3ᵉ", "le troisième"),
    ("fr", "3,5", "trois virgule cinq"),
    ("fr", "50 %", "cinquante pour cent"),
    ("fr", "50%", "cinquante pour cent"),
    ("fr", "3,50 €", "trois euros et cinquante centimes"),
    ("fr", "3 €", "trois euros"),
    ("fr", "£1", "une livre"),
    ("fr", "1 000 000 €", "un million d'euros"),
    ("fr", "en 1982", "en mille neuf cent quatre vingt deux"),
    ("fr", "1 000", "mille"),
    ("fr", "1\u00a0000", "mille"),
    ("fr", "1.000", "mille"),
    ("fr", "aujourd’hui, l'été", "aujourd'hui l'été"),
    ("fr", "« Bonjour » !", "bonjour"),
    ("fr", "-5", "moins cinq"),
]

# Mixed written sentences: every supported language must turn all their digits into words.
MIXED: dict[str, list[str]] = {
    "en": [
        "On 3 May 1982 it cost $5.50 — about 50% more than the 2nd one (1,234 sold).",
        "Wake me up at 7:30 am, not 6:05; the 10-20 pages of v2.0.1 are at 192.168.0.1.",
        "Temperatures of -5 to 3.25 degrees in the 1990s; call 0049 30 1234567!",
        "$1.5 million, £2, €3 and 12.5% of 99999999999999999999999999999 mp3s.",
        "The 21st century's 3rd decade began on 1/1/2021 at 00:00.",
    ],
    "de": [
        "Am 3. Oktober 1990 kostete es 3,50 € und 50 % mehr als 1.000 andere.",
        "Weck mich um 7:30 Uhr, spätestens 8.15 Uhr; Termin am 12.03.2020.",
        "Der 2te Platz ging an Team 4 mit -3,5 Punkten in den 90ern (v1.2.3).",
        "1.234.567 Einwohner, 3.5 Prozent, 25 $ und €1.000,50.",
    ],
    "es": [
        "El 1º de mayo de 1982 costaba 3,50 € y un 50 % más que la 2.ª vez.",
        "A las 7:30 horas llegaron 1.000 personas al 3er piso, y 21:05 h se fueron.",
        "Entre 10 y 20 grados, -5 por la noche; 3.5 puntos y $1 millón.",
    ],
    "fr": [
        "Le 1er mai 1982, ça coûtait 3,50 € et 50 % de plus que la 2e fois.",
        "À 7h30 ou 21 h, 1 000 personnes au 3ᵉ étage ; 1\u00a0000 000 € au total.",
        "Entre -5 et 3,25 degrés dans les années 1990, version 2.0.1, tél. 01 23 45 67 89.",
    ],
}


def _ids(case: tuple[str, str, str]) -> str:
    return f"{case[0]}:{case[1]}"


@pytest.mark.parametrize(("language", "written", "expected"), CASES, ids=[_ids(c) for c in CASES])
def test_to_spoken(language: str, written: str, expected: str) -> None:
    assert to_spoken(written, language) == expected


def test_case_table_covers_each_language() -> None:
    per_language = {
        lang: sum(1 for c in CASES if c[0] == lang) for lang in ("en", "de", "es", "fr")
    }
    assert per_language == {"en": 46, "de": 29, "es": 25, "fr": 28}
    assert len(CASES) == 128


def test_supported_languages() -> None:
    assert {"en", "de", "es", "fr"} == SUPPORTED_LANGUAGES
    assert isinstance(SUPPORTED_LANGUAGES, frozenset)


@pytest.mark.parametrize(
    ("language", "base"), [("en-US", "en"), ("en_GB", "en"), ("EN", "en"), ("de_DE", "de")]
)
def test_locale_codes(language: str, base: str) -> None:
    text = "On 3 May 1982, 7:30 pm, 50% and $5.50 — Größe!"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a supported locale must not warn
        assert to_spoken(text, language) == to_spoken(text, base)
    assert not re.search(r"\d", to_spoken(text, language))


def test_unsupported_language_warns_once_and_keeps_digits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spoken, "_WARNED_LANGUAGES", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = to_spoken("안녕하세요, 세계! 123 ABC’s “Test” 3.5%", "ko")
        second = to_spoken("오늘은 7:30에 만나요!!", "ko-KR")
    assert first == "안녕하세요 세계 123 abc's test 3 5"
    assert second == "오늘은 7 30에 만나요"
    ko_warnings = [w for w in caught if "'ko'" in str(w.message)]
    assert len(ko_warnings) == 1
    assert issubclass(ko_warnings[0].category, UserWarning)


def test_each_unsupported_language_warns_separately(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoken, "_WARNED_LANGUAGES", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert to_spoken("Ciao, 2 amici!", "it") == "ciao 2 amici"
            assert to_spoken("Olá, 2 amigos!", "pt_BR") == "olá 2 amigos"
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["it", "pt"]


@pytest.mark.parametrize("language", sorted(MIXED))
def test_no_digits_left(language: str) -> None:
    for sentence in MIXED[language]:
        out = to_spoken(sentence, language)
        assert not re.search(r"\d", out), (sentence, out)
        assert out == out.lower()
        assert out == " ".join(out.split())
        assert not re.search(r"[^\w\s']", out), (sentence, out)


@pytest.mark.parametrize("language", ["en", "de", "es", "fr", "ko"])
def test_idempotent(language: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoken, "_WARNED_LANGUAGES", {"ko"})  # no warning noise
    samples = [c[1] for c in CASES] + [s for sentences in MIXED.values() for s in sentences]
    for text in samples:
        once = to_spoken(text, language)
        assert to_spoken(once, language) == once, (text, once)


@pytest.mark.parametrize(
    ("language", "written", "expected"),
    [
        ("de", "Größe ẞ", "größe ß"),
        ("es", "¡Mañana, Señor!", "mañana señor"),
        ("fr", "Où est l’hôtel ?", "où est l'hôtel"),
        ("en", "Cafe\u0301 déjà-vu", "cafe\u0301 déjà vu"),  # combining accent survives
        ("en", "हिन्दी, भाषा!", "हिन्दी भाषा"),  # Devanagari vowel signs/virama are marks
        ("en", "한국어 텍스트", "한국어 텍스트"),
        ("en", "soft\u00adhyphen zero\u200bwidth", "softhyphen zero width"),
        ("en", "tabs\tand\nnew  lines ", "tabs and new lines"),
        ("en", "emoji 👍 and ™ symbols", "emoji and symbols"),
        ("en", "snake_case", "snake case"),
        ("en", "", ""),
        ("en", "?!... --", ""),
    ],
)
def test_unicode_and_whitespace(language: str, written: str, expected: str) -> None:
    assert to_spoken(written, language) == expected


def test_fast_enough() -> None:
    docs = [s + f" #{i}" for i in range(500) for s in MIXED["en"] + MIXED["de"]][:4000]
    start = time.perf_counter()
    for i, doc in enumerate(docs):
        to_spoken(doc, "en" if i % 2 else "de")
    # ~30 µs a document on a laptop core; the bound only catches pathological slowdowns.
    assert time.perf_counter() - start < 10.0
