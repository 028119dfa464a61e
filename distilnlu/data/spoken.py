"""Written-to-spoken-form conversion (DESIGN.md §3 "Spoken form").

Public text is written ("On 3 May 1982 it cost $5.50, 50% more."); assistant utterances look like
ASR output ("on three may nineteen eighty two it cost five dollars fifty cents fifty percent
more"). :func:`to_spoken` turns the former into the latter so that pretraining text matches the
domain. All number words come from `num2words` (``lang`` = ``en``, ``de``, ``es``, ``fr``).

Rules, applied in this order for a supported language (only the last three for any other):

1. **Lower case** (``str.lower``).
2. **Numbers** (only when the text contains a digit). Each rule below is one regex pass; a rule
   that matches replaces the digits with words, so later rules never see them. Whatever digits are
   left at the end are read as plain numbers, so a supported language never keeps a digit
   (``\\d``: superscripts such as ``²`` are not digits and are kept).

   - *Currency*: ``$``, ``€``, ``£`` before or after the amount, or the codes ``USD``, ``EUR``,
     ``GBP``. Read with ``num2words(to="currency")``: the major unit, then the minor unit joined the
     way num2words joins them (en nothing, de "und", es "con", fr "et"); a zero part is dropped
     ("$5" -> "five dollars", "$0.50" -> "fifty cents", "$5.50" -> "five dollars fifty cents",
     "3,50 €" -> "drei euro und fünfzig cent"). ``$`` is always dollars. More than two decimals are
     read as a decimal number plus the plural unit. en "pounds sterling" is shortened to "pounds";
     es/fr put "de"/"d'" after millón/million ("un millón de dólares"). A prefixed symbol followed
     by a scale word reads the unit after it ("$1.5 million" -> "one point five million dollars").
   - *Percentages*: "50%", "50 %", "3,5 %" -> number + "percent" / "prozent" / "por ciento" /
     "pour cent".
   - *Times*: en "7:30" -> "seven thirty", "7:05" -> "seven oh five", "7:00" -> "seven o'clock"
     (hours 13-23 and 0: "fourteen hundred"), with am/pm ("7pm", "7:00 p.m.") -> "seven pm",
     "seven thirty am". de "7:30", "7:30 Uhr", "7.30 Uhr" -> "sieben uhr dreißig", "1 Uhr" ->
     "ein uhr". es "7:30" -> "siete y treinta", "1:00" -> "una", an "h"/"horas" suffix -> "horas".
     fr "7h30", "7 h", "7:30" -> "sept heures trente", "1h" -> "une heure".
   - *de dates and ordinals*: "D.M." / "D.M.YYYY" ("3.10.1990") and "N." before a month or a few
     counted nouns (Jahrhundert, Mal, Platz, Klasse, ...) are ordinals, inflected from the word
     before them: der/die/das -> "-e", am/vom/zum/dem/den/... -> "-en", otherwise "-er" ("am 3.
     Oktober" -> "am dritten oktober", "3.10.1990" -> "dritter zehnter neunzehnhundertneunzig"). Any
     other "N." stays a cardinal: a trailing period is usually the end of a sentence. Written
     suffixes 1te/2ten/3ter/4tes/5tem/20ste keep their ending ("2ten" -> "zweiten").
   - *Ordinals*: en 1st/2nd/3rd/4th; es 1º, 1.º, 1ª, 1.ª, 1er/3er (apocopated "primer"/"tercer"),
     1ro/2do/3ra/4to/7mo/8vo/9no (feminine by the written ending, made by turning the final "o" of
     each word into "a"); fr 1er/1re/1ère, 2e/2ème/2è, 2nd/2nde ("second"/"seconde"), plural
     endings (1ers, 2es) and the superscript forms ᵉ, ᵉʳ, ʳᵉ.
   - *Decades*: en "1990s", "'90s", "80's" -> "nineteen nineties", "eighties"; de "90er(n)" ->
     "neunziger(n)".
   - *Numbers*: thousands separators (en ",", de/es ".", fr "." or a space; NBSP, narrow NBSP and
     thin space everywhere) only in well-formed groups of three ("1,000", "1.000.000",
     "1 000"); decimals read the separator as written and the fraction digit by digit (en "3.5" ->
     "three point five"; de "3,5" -> "drei komma fünf", "3.5" -> "drei punkt fünf"; es "coma" /
     "punto"; fr "virgule" / "point"); "-5" and "−5" -> "minus five" / "menos cinco" / "moins cinq"
     when the sign does not follow a letter or digit ("10-20" is a range); a lone four-digit integer
     1100-2099 is a year (``num2words(to="year")``: en "nineteen eighty two", de
     "neunzehnhundertzweiundachtzig"); integers with a leading zero ("007") and integers of more
     than 24 digits are read digit by digit; digit runs inside dotted chains ("1.2.3",
     "192.168.0.1") are read one by one. Numbers glued to letters are split off ("mp3" -> "mp
     three").
   - ``&`` -> "and" / "und" / "y" / "et".
3. **Punctuation**: every character that is not a letter, digit, combining mark or whitespace
   becomes a space (so hyphens between words, and num2words' "eighty-two", become spaces);
   format characters (soft hyphen, bidi marks, BOM) are deleted, ZWSP becomes a space. An
   apostrophe (' ’ ‘ ` ´) between two letters or digits is kept as ``'`` ("don't", "l'homme",
   "o'clock"); any other apostrophe is removed ("'quoted'" -> "quoted"). ZWJ/ZWNJ are kept only
   inside words.
4. **Whitespace** collapsed to single spaces and stripped.

Languages outside :data:`SUPPORTED_LANGUAGES` get rules 1, 3 and 4 (digits stay digits) and one
``UserWarning`` per language per process. Language codes may be locales: "en-US", "de_DE".

The output is a fixed point: ``to_spoken(to_spoken(x), lang) == to_spoken(x, lang)``.

Layout: :mod:`distilnlu.data.spoken_numbers` says numbers and amounts in words,
:mod:`distilnlu.data.spoken_rules` holds the number passes of rule 2 per language; this module
applies the rules in order and holds the punctuation and whitespace normaliser (rules 3 and 4).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
import warnings

from distilnlu.data.source_config import normalize_language
from distilnlu.data.spoken_rules import language_rules

__all__ = ["SUPPORTED_LANGUAGES", "to_spoken"]

SUPPORTED_LANGUAGES: frozenset[str] = frozenset({"en", "de", "es", "fr"})

# --------------------------------------------------------------------------------------------
# Punctuation and whitespace (all languages)
# --------------------------------------------------------------------------------------------

_APOSTROPHES = "'’‘`´"
_JOINERS = "\u200c\u200d"
_PUNCT_RE = re.compile(rf"[{_APOSTROPHES}{_JOINERS}]|[^\w\s{_APOSTROPHES}{_JOINERS}]+|_+")
_DIGIT_RE = re.compile(r"\d")


def _is_word_char(c: str) -> bool:
    return c.isalnum() or unicodedata.category(c)[0] == "M"


def _map_char(c: str) -> str:
    cat = unicodedata.category(c)
    if cat[0] == "M":
        return c
    if c == "\u200b":
        return " "
    if cat == "Cf":
        return ""
    return " "


@functools.lru_cache(maxsize=4096)
def _map_run(run: str) -> str:
    return "".join(_map_char(c) for c in run)


def _punct_repl(m: re.Match[str]) -> str:
    s = m[0]
    if s[0] in _APOSTROPHES or s[0] in _JOINERS:
        text, start, end = m.string, m.start(), m.end()
        if start > 0 and end < len(text) and _is_word_char(text[start - 1]):
            nxt = text[end]
            if s[0] in _JOINERS:
                return s if _is_word_char(nxt) else ""
            if nxt.isalnum():
                return "'"
        return "" if s[0] in _JOINERS else " "
    if s[0] == "_":
        return " "
    return _map_run(s)


def _build_punct_table() -> dict[int, str]:
    """``str.translate`` table for the Basic Multilingual Plane: every character the regex pass
    would replace on its own (no apostrophes or joiners, whose fate depends on their neighbours)."""
    table = {ord("_"): " "}
    keep = _APOSTROPHES + _JOINERS
    for cp in range(0x10000):
        c = chr(cp)
        if c in keep or c.isalnum() or c.isspace() or 0xD800 <= cp < 0xE000:
            continue
        if unicodedata.category(c)[0] != "M":
            table[cp] = _map_char(c)
    return table


_PUNCT_TABLE = _build_punct_table()


def _punctuation_and_spaces(text: str) -> str:
    # The translate table does the bulk at C speed; the regex handles apostrophes, joiners, marks
    # and characters outside the BMP.
    text = text.translate(_PUNCT_TABLE)
    if not text.isascii() or "'" in text or "`" in text:
        text = _PUNCT_RE.sub(_punct_repl, text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

_WARNED_LANGUAGES: set[str] = set()
_WARN_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _warn_unsupported(lang: str) -> None:
    with _WARN_LOCK:
        if lang in _WARNED_LANGUAGES:
            return
        _WARNED_LANGUAGES.add(lang)
    warnings.warn(
        f"spoken form: language {lang!r} is not supported "
        f"(supported: {', '.join(sorted(SUPPORTED_LANGUAGES))}); only lower-casing, punctuation "
        "and whitespace rules are applied and digits are kept",
        UserWarning,
        stacklevel=3,
    )


def to_spoken(text: str, language: str) -> str:
    """Convert written ``text`` in ``language`` to spoken (ASR-like) form.

    ``language`` is a code such as "en" or a locale such as "en-US" / "de_DE". See the module
    docstring for the rules. Unsupported languages get case, punctuation and whitespace rules
    only, with one warning per language per process.
    """
    lang = normalize_language(language)
    text = text.lower()
    if lang in SUPPORTED_LANGUAGES:
        rules = language_rules(lang)
        if _DIGIT_RE.search(text):
            text = rules.numbers(text)
        if "&" in text:
            text = text.replace("&", rules.and_word)
    else:
        _warn_unsupported(lang)
    return _punctuation_and_spaces(text)
