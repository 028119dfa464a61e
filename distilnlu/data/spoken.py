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
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable
from decimal import Decimal

from num2words import num2words

__all__ = ["SUPPORTED_LANGUAGES", "to_spoken"]

SUPPORTED_LANGUAGES: frozenset[str] = frozenset({"en", "de", "es", "fr"})

_CACHE = 65536
_MAX_CARDINAL_DIGITS = 24  # longer integers are read digit by digit

# --------------------------------------------------------------------------------------------
# Language tables
# --------------------------------------------------------------------------------------------

_MINUS = {"en": "minus", "de": "minus", "es": "menos", "fr": "moins"}
_PERCENT = {"en": "percent", "de": "prozent", "es": "por ciento", "fr": "pour cent"}
_AND = {"en": "and", "de": "und", "es": "y", "fr": "et"}
# Word for the decimal separator, by the separator actually written.
_POINT = {
    "en": {".": "point"},
    "de": {",": "komma", ".": "punkt"},
    "es": {",": "coma", ".": "punto"},
    "fr": {",": "virgule", ".": "point"},
}
# Word between the major and minor currency units (num2words' own, minus en's comma).
_CURRENCY_CONJ = {"en": "", "de": "und", "es": "con", "fr": "et"}
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "usd": "USD", "eur": "EUR", "gbp": "GBP"}
_SCALES = {
    "en": ("thousand", "million", "billion", "trillion"),
    "de": ("tausend", "million", "millionen", "milliarde", "milliarden"),
    "es": ("mil", "millón", "millon", "millones", "billón", "billones"),
    "fr": ("mille", "million", "millions", "milliard", "milliards"),
}

_SPACES = "\u00a0\u202f\u2009\u2007"  # NBSP, narrow NBSP, thin space, figure space
_GROUP_SEPS = {"en": "," + _SPACES, "de": "." + _SPACES, "es": "." + _SPACES, "fr": ". " + _SPACES}
_DECIMAL_SEPS = {"en": ".", "de": ",.", "es": ",.", "fr": ",."}


def _strict_number(lang: str) -> str:
    """Regex for one number: grouped or plain integer part, optional decimals.

    Named groups ``ip`` (integer part, separators included), ``sep`` and ``frac``. It refuses to
    start inside a dotted chain ("1.2.3") or to stop before one, so such chains fall back to the
    plain digit-run rule.
    """
    group = re.escape(_GROUP_SEPS[lang])
    dec = re.escape(_DECIMAL_SEPS[lang])
    grouped = rf"[1-9]\d{{0,2}}(?:[{group}]\d{{3}})+(?!\d)"
    return rf"(?<!\d[.,])(?P<ip>{grouped}|\d+)(?:(?P<sep>[{dec}])(?P<frac>\d+))?(?![.,]?\d)"


# A pass is a compiled regex, a callback (lang, match) -> replacement text, and substrings of
# which at least one must occur in the text for the pass to run (None: always run). Every pattern
# starts with a lookahead on its possible first characters, which lets `re` skip ahead quickly.
_Callback = Callable[[str, re.Match[str]], str]
_Pass = tuple[re.Pattern[str], _Callback, tuple[str, ...] | None]
_AT_NUMBER = r"(?=[-−\d])"
_AT_DIGIT = r"(?=\d)"

_SIGN = r"(?P<sign>(?<![\w.,])[-−])?"

# --------------------------------------------------------------------------------------------
# Cached num2words wrappers (all return clean lower-case words: no hyphens, no commas)
# --------------------------------------------------------------------------------------------

_CLEAN_RE = re.compile(r"[-,\s]+")


def _clean(words: str) -> str:
    return _CLEAN_RE.sub(" ", words.lower()).strip()


@functools.lru_cache(maxsize=_CACHE)
def _cardinal(lang: str, digits: str) -> str:
    """Words for a run of digits (no sign, no separators)."""
    if len(digits) > 1 and (digits[0] == "0" or len(digits) > _MAX_CARDINAL_DIGITS):
        return _digit_by_digit(lang, digits)
    try:
        return _clean(num2words(int(digits), lang=lang))
    except (OverflowError, NotImplementedError, ValueError, ArithmeticError):
        return _digit_by_digit(lang, digits)


def _digit_by_digit(lang: str, digits: str) -> str:
    return " ".join(_cardinal(lang, d) for d in digits)


@functools.lru_cache(maxsize=_CACHE)
def _year(lang: str, value: int) -> str:
    try:
        return _clean(num2words(value, lang=lang, to="year"))
    except NotImplementedError:  # pragma: no cover - all supported languages have years
        return _cardinal(lang, str(value))


@functools.lru_cache(maxsize=_CACHE)
def _ordinal(lang: str, value: int) -> str:
    try:
        return _clean(num2words(value, lang=lang, to="ordinal"))
    except (OverflowError, NotImplementedError, ValueError, ArithmeticError):
        return _cardinal(lang, str(value))


def _is_year(digits: str) -> bool:
    return len(digits) == 4 and 1100 <= int(digits) <= 2099


def _strip_groups(ip: str) -> str:
    return ip if ip.isdigit() else "".join(c for c in ip if c.isdigit())


def _number_words(
    lang: str, sign: str | None, ip: str, sep: str | None, frac: str | None, year: bool = True
) -> str:
    """Words for a matched number; ``ip`` may contain thousands separators."""
    digits = _strip_groups(ip)
    if frac is not None and sep is not None:
        point = _POINT[lang][sep]
        words = f"{_cardinal(lang, str(int(digits)))} {point} {_digit_by_digit(lang, frac)}"
    elif year and not sign and ip.isdigit() and _is_year(ip):
        words = _year(lang, int(ip))
    else:
        words = _cardinal(lang, digits)
    if sign:
        words = f"{_MINUS[lang]} {words}"
    return words


# --------------------------------------------------------------------------------------------
# Currency
# --------------------------------------------------------------------------------------------

_MILLION_BEFORE_UNIT_RE = re.compile(r"(\w*(?:llón|llones|llion|llions|lliard|lliards)) (?=\S+$)")


def _currency_fix(lang: str, code: str, words: str) -> str:
    if lang == "en" and code == "GBP":
        words = words.replace(" sterling", "")
    elif lang == "fr" and code == "GBP":
        words = re.sub(r"\bun (livres?)\b", r"une \1", words)
    if lang in ("es", "fr"):
        words = _MILLION_BEFORE_UNIT_RE.sub(r"\1 de ", words)
        if lang == "fr":
            words = re.sub(r"\bde (?=[aeiouyéè])", "d'", words)
    return words


@functools.lru_cache(maxsize=256)
def _unit_plural(lang: str, code: str) -> str:
    left = num2words(Decimal(2), lang=lang, to="currency", currency=code, separator=" |")
    left = _currency_fix(lang, code, _clean(left.split("|")[0]))
    return left.split(" ", 1)[1]


@functools.lru_cache(maxsize=_CACHE)
def _currency(lang: str, code: str, digits: str, frac: str, sep: str | None) -> str:
    """Words for an unsigned amount ``digits[.frac]`` of currency ``code``."""
    major, minor = int(digits), int(frac.ljust(2, "0")) if frac else 0
    try:
        if len(frac) > 2 or len(digits) > _MAX_CARDINAL_DIGITS:
            raise ValueError("not a plain currency amount")
        text = num2words(
            Decimal(f"{major}.{minor:02d}"), lang=lang, to="currency", currency=code, separator=" |"
        )
    except (ValueError, OverflowError, ArithmeticError, NotImplementedError):
        amount = _number_words(lang, None, digits, sep, frac or None, year=False)
        return f"{amount} {_unit_plural(lang, code)}"
    left, right = (_clean(part) for part in text.split("|"))
    left = _currency_fix(lang, code, left)
    if minor == 0:
        return left
    if major == 0:
        return right
    conj = _CURRENCY_CONJ[lang]
    return f"{left} {conj} {right}" if conj else f"{left} {right}"


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
    num = _strict_number(lang)
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
            amount = _number_words(lang, None, m["ip"], m["sep"], m["frac"], year=False)
            scale = m["scale"]
            if not m["frac"]:
                amount = _one_before_noun(lang, amount, scale)
            de = " de" if lang in ("es", "fr") and scale not in ("mil", "mille") else ""
            words = f"{amount} {scale}{de} {_unit_plural(lang, code)}"
            if lang == "fr":
                words = re.sub(r"\bde (?=[aeiouyéè])", "d'", words)
        else:
            words = _currency(lang, code, _strip_groups(m["ip"]), m["frac"] or "", m["sep"])
        if negative:
            words = f"{_MINUS[lang]} {words}"
        return _pad(words)

    needles = ("$", "€", "£", "usd", "eur", "gbp")
    return [(prefix, repl, needles), (suffix, repl, needles)]


def _make_percent_pass(lang: str) -> _Pass:
    pattern = re.compile(rf"{_AT_NUMBER}{_SIGN}{_strict_number(lang)}\s?%")

    def repl(_lang: str, m: re.Match[str]) -> str:
        words = _number_words(lang, m["sign"], m["ip"], m["sep"], m["frac"], year=False)
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
    words = _cardinal(lang, str(hour))
    if minute == 0:
        if m["m"] and not ap:
            words += " o'clock" if 1 <= hour <= 12 else " hundred"
    elif minute < 10:
        words += f" oh {_cardinal(lang, str(minute))}"
    else:
        words += f" {_cardinal(lang, str(minute))}"
    if ap:
        words += f" {ap}m"
    return _pad(words)


def _de_time(lang: str, m: re.Match[str]) -> str:
    hour = int(m["h"] or m["h2"])
    minute_s = m["m"] or m["m2"]
    minute = int(minute_s) if minute_s else 0
    if hour > 24 or minute > 59:
        return m[0]
    words = "ein" if hour == 1 else _cardinal(lang, str(hour))
    words += " uhr"
    if minute:
        words += f" {_cardinal(lang, str(minute))}"
    return _pad(words)


def _es_hour(lang: str, hour: int) -> str:
    words = _cardinal(lang, str(hour))
    return words[:-3] + "una" if words.endswith("uno") else words


def _es_time(lang: str, m: re.Match[str]) -> str:
    hour, minute = int(m["h"]), int(m["m"])
    if hour > 24 or minute > 59:
        return m[0]
    words = _es_hour(lang, hour)
    if minute:
        words += f" y {_cardinal(lang, str(minute))}"
    if m["suf"]:
        words += " hora" if hour == 1 else " horas"
    return _pad(words)


def _fr_time(lang: str, m: re.Match[str]) -> str:
    hour = int(m["h"])
    minute_s = m["m"] or m["m2"]
    minute = int(minute_s) if minute_s else 0
    if hour > 24 or minute > 59:
        return m[0]
    words = _cardinal(lang, str(hour))
    if words == "un" or words.endswith(" un"):
        words += "e"
    words += " heure" if hour <= 1 else " heures"
    if minute:
        words += f" {_cardinal(lang, str(minute))}"
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
    base = _ordinal(lang, value)  # always ends in "e": "erste", "dritte", "zwanzigste"
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
        words += " " + (_year(lang, int(m["y"])) if _is_year(m["y"]) else _cardinal(lang, m["y"]))
    return _pad(words)


def _de_dotted_ordinal(lang: str, m: re.Match[str]) -> str:
    pre = _previous_word(m)
    return _pad(f"{_de_ordinal(lang, int(m['n']), pre)} {m['w']}")


def _de_suffix_ordinal(lang: str, m: re.Match[str]) -> str:
    suf = m["suf"]
    ending = suf[-1] if suf[-1] in "nrsm" else ""
    return _pad(_ordinal(lang, int(m["n"])) + ending)


# ---- ordinals -----------------------------------------------------------------------------------

_ORD_START = r"(?=\d)(?<![\d.,])"


def _en_ordinal(lang: str, m: re.Match[str]) -> str:
    return _pad(_ordinal(lang, int(m["n"])))


_ES_FEMININE = frozenset({"ª", "ᵃ", "ra", "da", "ta", "ma", "va", "na"})


def _es_ordinal(lang: str, m: re.Match[str]) -> str:
    words = _ordinal(lang, int(m["n"]))
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
        words = _ordinal(lang, value)
    if suf.endswith("s") or suf.endswith("ˢ"):
        words += "s"
    return _pad(words)


def _en_decade(lang: str, m: re.Match[str]) -> str:
    digits = m["n"]
    words = _year(lang, int(digits)) if _is_year(digits) else _cardinal(lang, digits)
    if words.endswith("y"):
        words = words[:-1] + "ies"
    elif words.endswith(("x", "s")):
        words += "es"
    else:
        words += "s"
    return _pad(words)


def _de_decade(lang: str, m: re.Match[str]) -> str:
    digits = m["n"]
    words = _year(lang, int(digits)) if _is_year(digits) else _cardinal(lang, digits)
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


class _LanguageRules:
    """All number passes of one supported language, compiled once."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.passes: list[_Pass] = [
            *_make_currency_passes(lang),
            _make_percent_pass(lang),
            *_TIME_PASSES[lang],
            *_ORDINAL_PASSES[lang],
        ]
        self.number = re.compile(rf"{_AT_NUMBER}{_SIGN}(?:{_strict_number(lang)}|(?P<raw>\d+))")
        self.and_word = f" {_AND[lang]} "

    def _number(self, m: re.Match[str]) -> str:
        ip = m["raw"] if m["raw"] is not None else m["ip"]
        return _pad(_number_words(self.lang, m["sign"], ip, m["sep"], m["frac"]))

    def numbers(self, text: str) -> str:
        lang = self.lang
        for pattern, fn, needles in self.passes:
            if needles is None or any(needle in text for needle in needles):
                text = pattern.sub(functools.partial(fn, lang), text)
        return self.number.sub(self._number, text)


@functools.cache
def _rules(lang: str) -> _LanguageRules:
    return _LanguageRules(lang)


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
def _base_language(language: str) -> str:
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()


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
    lang = _base_language(language)
    text = text.lower()
    if lang in SUPPORTED_LANGUAGES:
        rules = _rules(lang)
        if _DIGIT_RE.search(text):
            text = rules.numbers(text)
        if "&" in text:
            text = text.replace("&", rules.and_word)
    else:
        _warn_unsupported(lang)
    return _punctuation_and_spaces(text)
