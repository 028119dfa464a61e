"""The number passes of the spoken form, per supported language (see :mod:`distilnlu.data.spoken`).

Each pass is one regex with a callback that replaces what it matches by words: currency,
percentages, times, German dates and "N." ordinals, ordinals, decades. :func:`language_rules`
assembles the passes of one language, in the order the rules list them, into a
:class:`LanguageRules`, whose :meth:`LanguageRules.numbers` also reads any digits left as plain
numbers. The words themselves come from :mod:`distilnlu.data.spoken_numbers`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from distilnlu.data.spoken_numbers import (
    MINUS,
    cardinal_words,
    currency_words,
    is_year,
    number_words,
    ordinal_words,
    strict_number,
    strip_groups,
    unit_plural,
    year_words,
)

__all__ = ["LanguageRules", "language_rules"]

# Language tables of the passes below.
_PERCENT = {"en": "percent", "de": "prozent", "es": "por ciento", "fr": "pour cent"}
_AND = {"en": "and", "de": "und", "es": "y", "fr": "et"}
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "usd": "USD", "eur": "EUR", "gbp": "GBP"}
_SCALES = {
    "en": ("thousand", "million", "billion", "trillion"),
    "de": ("tausend", "million", "millionen", "milliarde", "milliarden"),
    "es": ("mil", "millón", "millon", "millones", "billón", "billones"),
    "fr": ("mille", "million", "millions", "milliard", "milliards"),
}

# A pass is a compiled regex, a callback (lang, match) -> replacement text, and substrings of
# which at least one must occur in the text for the pass to run (None: always run). Every pattern
# starts with a lookahead on its possible first characters, which lets `re` skip ahead quickly.
_Callback = Callable[[str, re.Match[str]], str]
_Pass = tuple[re.Pattern[str], _Callback, tuple[str, ...] | None]
_AT_NUMBER = r"(?=[-−\d])"

_SIGN = r"(?P<sign>(?<![\w.,])[-−])?"

# --------------------------------------------------------------------------------------------
# Language-specific passes. Each is (compiled regex, callback(lang, match) -> replacement).
# --------------------------------------------------------------------------------------------


def _pad(words: str) -> str:
    return f" {words} "


def _one_before_noun(lang: str, words: str, noun: str) -> str:
    """Cardinal "one" as it reads before a noun: es "uno millón" -> "un millón", de "eins
    million" -> "eine million"."""
    if lang == "es":
        if words.endswith("veintiuno"):
            return words[:-3] + "ún"
        if words == "uno" or words.endswith(" uno"):
            return words[:-1]
    elif lang == "de" and words == "eins":
        return "eine" if noun != "tausend" else "ein"
    return words


def _make_currency_passes(lang: str) -> list[_Pass]:
    num = strict_number(lang)
    scales = "|".join(_SCALES[lang])
    prefix = re.compile(
        rf"(?=[-−$€£ueg])(?P<sign0>(?<![\w.,])[-−])?(?P<sym>[$€£]|(?<!\w)(?:usd|eur|gbp)(?=[\s\d]))\s?"
        rf"{_SIGN}{num}(?:\s(?P<scale>{scales})(?!\w))?"
    )
    suffix = re.compile(rf"{_AT_NUMBER}{_SIGN}{num}\s?(?P<sym>[$€£]|(?:usd|eur|gbp)(?!\w))")

    def repl(_lang: str, m: re.Match[str]) -> str:
        gd = m.groupdict()
        code = _CURRENCY_SYMBOLS[m["sym"]]
        negative = bool(gd.get("sign0") or m["sign"])
        if gd.get("scale"):
            amount = number_words(lang, None, m["ip"], m["sep"], m["frac"], year=False)
            scale = m["scale"]
            if not m["frac"]:
                amount = _one_before_noun(lang, amount, scale)
            de = " de" if lang in ("es", "fr") and scale not in ("mil", "mille") else ""
            words = f"{amount} {scale}{de} {unit_plural(lang, code)}"
            if lang == "fr":
                words = re.sub(r"\bde (?=[aeiouyéè])", "d'", words)
        else:
            words = currency_words(lang, code, strip_groups(m["ip"]), m["frac"] or "", m["sep"])
        if negative:
            words = f"{MINUS[lang]} {words}"
        return _pad(words)

    needles = ("$", "€", "£", "usd", "eur", "gbp")
    return [(prefix, repl, needles), (suffix, repl, needles)]


def _make_percent_pass(lang: str) -> _Pass:
    pattern = re.compile(rf"{_AT_NUMBER}{_SIGN}{strict_number(lang)}\s?%")

    def repl(_lang: str, m: re.Match[str]) -> str:
        words = number_words(lang, m["sign"], m["ip"], m["sep"], m["frac"], year=False)
        return _pad(f"{words} {_PERCENT[lang]}")

    return pattern, repl, ("%",)


# ---- times -----------------------------------------------------------------------------------

_TIME_START = r"(?=\d)(?<![\d:.,])"
_EN_AMPM = r"(?P<ap>[ap])\.?\s?m(?!\w)\.?"


def _en_time(lang: str, m: re.Match[str]) -> str:
    hour = int(m["h"])
    minute = int(m["m"]) if m["m"] else 0
    ap = m["ap"]
    if hour > 24 or minute > 59:
        return m[0]
    words = cardinal_words(lang, str(hour))
    if minute == 0:
        if m["m"] and not ap:
            words += " o'clock" if 1 <= hour <= 12 else " hundred"
    elif minute < 10:
        words += f" oh {cardinal_words(lang, str(minute))}"
    else:
        words += f" {cardinal_words(lang, str(minute))}"
    if ap:
        words += f" {ap}m"
    return _pad(words)


def _de_time(lang: str, m: re.Match[str]) -> str:
    hour = int(m["h"] or m["h2"])
    minute_s = m["m"] or m["m2"]
    minute = int(minute_s) if minute_s else 0
    if hour > 24 or minute > 59:
        return m[0]
    words = "ein" if hour == 1 else cardinal_words(lang, str(hour))
    words += " uhr"
    if minute:
        words += f" {cardinal_words(lang, str(minute))}"
    return _pad(words)


def _es_hour(lang: str, hour: int) -> str:
    words = cardinal_words(lang, str(hour))
    return words[:-3] + "una" if words.endswith("uno") else words


def _es_time(lang: str, m: re.Match[str]) -> str:
    hour, minute = int(m["h"]), int(m["m"])
    if hour > 24 or minute > 59:
        return m[0]
    words = _es_hour(lang, hour)
    if minute:
        words += f" y {cardinal_words(lang, str(minute))}"
    if m["suf"]:
        words += " hora" if hour == 1 else " horas"
    return _pad(words)


def _fr_time(lang: str, m: re.Match[str]) -> str:
    hour = int(m["h"])
    minute_s = m["m"] or m["m2"]
    minute = int(minute_s) if minute_s else 0
    if hour > 24 or minute > 59:
        return m[0]
    words = cardinal_words(lang, str(hour))
    if words == "un" or words.endswith(" un"):
        words += "e"
    words += " heure" if hour <= 1 else " heures"
    if minute:
        words += f" {cardinal_words(lang, str(minute))}"
    return _pad(words)


_TIME_PASSES: dict[str, list[_Pass]] = {
    "en": [
        (
            re.compile(rf"{_TIME_START}(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?![\d:])(?:\s?{_EN_AMPM})?"),
            _en_time,
            (":",),
        ),
        (re.compile(rf"{_TIME_START}(?P<h>\d{{1,2}})(?P<m>)\s?{_EN_AMPM}"), _en_time, ("m",)),
    ],
    "de": [
        (
            re.compile(
                rf"{_TIME_START}(?P<h>\d{{1,2}})(?:[:.](?P<m>\d{{2}}))?\s?uhr(?!\w)"
                rf"|{_TIME_START}(?P<h2>\d{{1,2}}):(?P<m2>\d{{2}})(?![\d:])"
            ),
            _de_time,
            (":", "uhr"),
        )
    ],
    "es": [
        (
            re.compile(
                rf"{_TIME_START}(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?![\d:])"
                r"(?:\s?(?P<suf>h|hs|hrs|horas)(?!\w)\.?)?"
            ),
            _es_time,
            (":",),
        )
    ],
    "fr": [
        (
            re.compile(
                rf"{_TIME_START}(?P<h>\d{{1,2}})"
                r"(?:\s?h\s?(?P<m>\d{2})?(?!\w)|:(?P<m2>\d{2})(?![\d:]))"
            ),
            _fr_time,
            (":", "h"),
        )
    ],
}

# ---- German dates and "N." ordinals -------------------------------------------------------------

_DE_WEAK = frozenset({"der", "die", "das"})
# fmt: off
_DE_STRONG_EN = frozenset({
    "am", "vom", "zum", "zur", "im", "beim", "dem", "den", "des", "bis", "seit", "ab", "vor",
    "nach", "an", "ans", "zu", "für", "über", "um", "einem", "einen", "eines", "einer",
})
# fmt: on
_DE_MONTHS = (
    "januar|jänner|februar|märz|maerz|april|mai|juni|juli|august|september|oktober|november|"
    "dezember|jan|feb|mär|apr|jun|jul|aug|sep|sept|okt|nov|dez"
)
_DE_COUNTED = (
    "jahrhundert|jahrhunderts|jahrtausend|jahrtausends|mal|male|platz|klasse|stock|etage|stelle|"
    "runde|liga|auflage|ausgabe|geburtstag|jahrestag|advent|spieltag"
)
_PREV_WORD_RE = re.compile(r"(?<!\w)([^\W\d_]+)\s+$")


def _previous_word(m: re.Match[str]) -> str | None:
    start = m.start()
    prev = _PREV_WORD_RE.search(m.string, max(0, start - 30), start)
    return prev[1] if prev else None


def _de_ordinal(lang: str, value: int, pre: str | None) -> str:
    base = ordinal_words(lang, value)  # always ends in "e": "erste", "dritte", "zwanzigste"
    if pre in _DE_WEAK:
        return base
    return base + ("n" if pre in _DE_STRONG_EN else "r")


def _de_date(lang: str, m: re.Match[str]) -> str:
    day, month = int(m["d"]), int(m["mo"])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m[0]
    pre = _previous_word(m)
    words = f"{_de_ordinal(lang, day, pre)} {_de_ordinal(lang, month, pre)}"
    if m["y"]:
        words += " " + (
            year_words(lang, int(m["y"])) if is_year(m["y"]) else cardinal_words(lang, m["y"])
        )
    return _pad(words)


def _de_dotted_ordinal(lang: str, m: re.Match[str]) -> str:
    pre = _previous_word(m)
    return _pad(f"{_de_ordinal(lang, int(m['n']), pre)} {m['w']}")


def _de_suffix_ordinal(lang: str, m: re.Match[str]) -> str:
    suf = m["suf"]
    ending = suf[-1] if suf[-1] in "nrsm" else ""
    return _pad(ordinal_words(lang, int(m["n"])) + ending)


# ---- ordinals -----------------------------------------------------------------------------------

_ORD_START = r"(?=\d)(?<![\d.,])"


def _en_ordinal(lang: str, m: re.Match[str]) -> str:
    return _pad(ordinal_words(lang, int(m["n"])))


_ES_FEMININE = frozenset({"ª", "ᵃ", "ra", "da", "ta", "ma", "va", "na"})


def _es_ordinal(lang: str, m: re.Match[str]) -> str:
    words = ordinal_words(lang, int(m["n"]))
    suf = m["suf"]
    if suf in _ES_FEMININE:
        words = " ".join(w[:-1] + "a" if w.endswith("o") else w for w in words.split(" "))
    elif suf == "er" and (words.endswith("primero") or words.endswith("tercero")):
        words = words[:-1]
    return _pad(words)


_FR_FEMININE_ONE = frozenset({"re", "res", "ère", "ères", "ʳᵉ", "ʳᵉˢ"})


def _fr_ordinal(lang: str, m: re.Match[str]) -> str:
    value, suf = int(m["n"]), m["suf"]
    if value == 1 and suf in _FR_FEMININE_ONE:
        words = "première"
    elif value == 2 and suf.startswith("nd"):
        words = "seconde" if suf.startswith("nde") else "second"
    else:
        words = ordinal_words(lang, value)
    if suf.endswith("s") or suf.endswith("ˢ"):
        words += "s"
    return _pad(words)


def _en_decade(lang: str, m: re.Match[str]) -> str:
    digits = m["n"]
    words = year_words(lang, int(digits)) if is_year(digits) else cardinal_words(lang, digits)
    if words.endswith("y"):
        words = words[:-1] + "ies"
    elif words.endswith(("x", "s")):
        words += "es"
    else:
        words += "s"
    return _pad(words)


def _de_decade(lang: str, m: re.Match[str]) -> str:
    digits = m["n"]
    words = year_words(lang, int(digits)) if is_year(digits) else cardinal_words(lang, digits)
    return _pad(words + m["suf"])


_ORDINAL_PASSES: dict[str, list[_Pass]] = {
    "en": [
        (re.compile(rf"{_ORD_START}(?P<n>\d+)(?:st|nd|rd|th)(?!\w)"), _en_ordinal, None),
        (
            re.compile(r"(?=['’\d])(?<![\d.,])['’]?(?P<n>\d{1,3}0)['’]?s(?!\w)"),
            _en_decade,
            None,
        ),
    ],
    "de": [
        (
            re.compile(
                rf"{_ORD_START}(?P<d>\d{{1,2}})\.(?P<mo>\d{{1,2}})\.(?:(?P<y>\d{{4}}|\d{{2}})(?!\d))?"
            ),
            _de_date,
            (".",),
        ),
        (
            re.compile(
                rf"{_ORD_START}(?P<n>\d{{1,3}})\.\s?"
                rf"(?P<w>(?:{_DE_MONTHS}|{_DE_COUNTED})(?!\w)\.?)"
            ),
            _de_dotted_ordinal,
            (".",),
        ),
        (
            re.compile(rf"{_ORD_START}(?P<n>\d+)(?P<suf>s?te[nrsm]?)(?!\w)"),
            _de_suffix_ordinal,
            ("te",),
        ),
        (re.compile(rf"{_ORD_START}(?P<n>\d{{1,3}}0)(?P<suf>ern?)(?!\w)"), _de_decade, ("0er",)),
    ],
    "es": [
        (
            re.compile(
                rf"{_ORD_START}(?P<n>\d+)\.?"
                r"(?P<suf>º|ª|ᵒ|ᵃ|er|ra|ro|do|da|to|ta|mo|ma|vo|va|no|na)(?!\w)"
            ),
            _es_ordinal,
            None,
        )
    ],
    "fr": [
        (
            re.compile(
                rf"{_ORD_START}(?P<n>\d+)(?P<suf>ers|er|res|re|ères|ère|èmes|ème|emes|eme|es|e|è|"
                r"ndes|nde|nds|nd|ᵉʳˢ|ᵉʳ|ʳᵉˢ|ʳᵉ|ᵉˢ|ᵉ)(?!\w)"
            ),
            _fr_ordinal,
            None,
        )
    ],
}


# ---- assembled pipeline per language ----------------------------------------------------------


class LanguageRules:
    """All number passes of one supported language, compiled once."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.passes: list[_Pass] = [
            *_make_currency_passes(lang),
            _make_percent_pass(lang),
            *_TIME_PASSES[lang],
            *_ORDINAL_PASSES[lang],
        ]
        self.number = re.compile(rf"{_AT_NUMBER}{_SIGN}(?:{strict_number(lang)}|(?P<raw>\d+))")
        self.and_word = f" {_AND[lang]} "

    def _number(self, m: re.Match[str]) -> str:
        ip = m["raw"] if m["raw"] is not None else m["ip"]
        return _pad(number_words(self.lang, m["sign"], ip, m["sep"], m["frac"]))

    def numbers(self, text: str) -> str:
        """``text`` (lower case) with every number rule applied; the words come space-padded."""
        lang = self.lang
        for pattern, fn, needles in self.passes:
            if needles is None or any(needle in text for needle in needles):
                text = pattern.sub(functools.partial(fn, lang), text)
        return self.number.sub(self._number, text)


@functools.cache
def language_rules(lang: str) -> LanguageRules:
    """The rules of a supported language, built on first use and cached."""
    return LanguageRules(lang)
