"""Numbers in words for the spoken form (see :mod:`distilnlu.data.spoken` for the rules).

Cached wrappers around `num2words` (``lang`` = ``en``, ``de``, ``es``, ``fr``) that all return
clean lower-case words (no hyphens, no commas): :func:`cardinal_words`, :func:`year_words`,
:func:`ordinal_words`, :func:`number_words` for a matched number with separators and sign, and
:func:`currency_words` for an amount of money. :func:`strict_number` is the regex of one written
number that the passes of :mod:`distilnlu.data.spoken_rules` build on.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal

from num2words import num2words

__all__ = [
    "MINUS",
    "cardinal_words",
    "currency_words",
    "digit_by_digit",
    "is_year",
    "number_words",
    "ordinal_words",
    "strict_number",
    "strip_groups",
    "unit_plural",
    "year_words",
]

_CACHE = 65536
_MAX_CARDINAL_DIGITS = 24  # longer integers are read digit by digit

# --------------------------------------------------------------------------------------------
# Language tables
# --------------------------------------------------------------------------------------------

MINUS = {"en": "minus", "de": "minus", "es": "menos", "fr": "moins"}
"""The word for a minus sign, by language."""
# Word for the decimal separator, by the separator actually written.
_POINT = {
    "en": {".": "point"},
    "de": {",": "komma", ".": "punkt"},
    "es": {",": "coma", ".": "punto"},
    "fr": {",": "virgule", ".": "point"},
}
# Word between the major and minor currency units (num2words' own, minus en's comma).
_CURRENCY_CONJ = {"en": "", "de": "und", "es": "con", "fr": "et"}

_SPACES = "\u00a0\u202f\u2009\u2007"  # NBSP, narrow NBSP, thin space, figure space
_GROUP_SEPS = {"en": "," + _SPACES, "de": "." + _SPACES, "es": "." + _SPACES, "fr": ". " + _SPACES}
_DECIMAL_SEPS = {"en": ".", "de": ",.", "es": ",.", "fr": ",."}


def strict_number(lang: str) -> str:
    """Regex for one number: grouped or plain integer part, optional decimals.

    Named groups ``ip`` (integer part, separators included), ``sep`` and ``frac``. It refuses to
    start inside a dotted chain ("1.2.3") or to stop before one, so such chains fall back to the
    plain digit-run rule.
    """
    group = re.escape(_GROUP_SEPS[lang])
    dec = re.escape(_DECIMAL_SEPS[lang])
    grouped = rf"[1-9]\d{{0,2}}(?:[{group}]\d{{3}})+(?!\d)"
    return rf"(?<!\d[.,])(?P<ip>{grouped}|\d+)(?:(?P<sep>[{dec}])(?P<frac>\d+))?(?![.,]?\d)"


# --------------------------------------------------------------------------------------------
# Cached num2words wrappers (all return clean lower-case words: no hyphens, no commas)
# --------------------------------------------------------------------------------------------

_CLEAN_RE = re.compile(r"[-,\s]+")


def _clean(words: str) -> str:
    return _CLEAN_RE.sub(" ", words.lower()).strip()


@functools.lru_cache(maxsize=_CACHE)
def cardinal_words(lang: str, digits: str) -> str:
    """Words for a run of digits (no sign, no separators)."""
    if len(digits) > 1 and (digits[0] == "0" or len(digits) > _MAX_CARDINAL_DIGITS):
        return digit_by_digit(lang, digits)
    try:
        return _clean(num2words(int(digits), lang=lang))
    except (OverflowError, NotImplementedError, ValueError, ArithmeticError):
        return digit_by_digit(lang, digits)


def digit_by_digit(lang: str, digits: str) -> str:
    """Each digit as a word: "007" -> "zero zero seven"."""
    return " ".join(cardinal_words(lang, d) for d in digits)


@functools.lru_cache(maxsize=_CACHE)
def year_words(lang: str, value: int) -> str:
    """A year as num2words reads years: 1982 -> "nineteen eighty two"."""
    try:
        return _clean(num2words(value, lang=lang, to="year"))
    except NotImplementedError:  # pragma: no cover - all supported languages have years
        return cardinal_words(lang, str(value))


@functools.lru_cache(maxsize=_CACHE)
def ordinal_words(lang: str, value: int) -> str:
    """An ordinal: 21 -> "twenty first"; the cardinal when num2words has none."""
    try:
        return _clean(num2words(value, lang=lang, to="ordinal"))
    except (OverflowError, NotImplementedError, ValueError, ArithmeticError):
        return cardinal_words(lang, str(value))


def is_year(digits: str) -> bool:
    """Whether a digit run is read as a year: four digits, 1100-2099."""
    return len(digits) == 4 and 1100 <= int(digits) <= 2099


def strip_groups(ip: str) -> str:
    """An integer part without its thousands separators: "1 000" -> "1000"."""
    return ip if ip.isdigit() else "".join(c for c in ip if c.isdigit())


def number_words(
    lang: str, sign: str | None, ip: str, sep: str | None, frac: str | None, year: bool = True
) -> str:
    """Words for a matched number; ``ip`` may contain thousands separators."""
    digits = strip_groups(ip)
    if frac is not None and sep is not None:
        point = _POINT[lang][sep]
        words = f"{cardinal_words(lang, str(int(digits)))} {point} {digit_by_digit(lang, frac)}"
    elif year and not sign and ip.isdigit() and is_year(ip):
        words = year_words(lang, int(ip))
    else:
        words = cardinal_words(lang, digits)
    if sign:
        words = f"{MINUS[lang]} {words}"
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
def unit_plural(lang: str, code: str) -> str:
    """The plural name of currency ``code``: ("en", "USD") -> "dollars"."""
    left = num2words(Decimal(2), lang=lang, to="currency", currency=code, separator=" |")
    left = _currency_fix(lang, code, _clean(left.split("|")[0]))
    return left.split(" ", 1)[1]


@functools.lru_cache(maxsize=_CACHE)
def currency_words(lang: str, code: str, digits: str, frac: str, sep: str | None) -> str:
    """Words for an unsigned amount ``digits[.frac]`` of currency ``code``."""
    major, minor = int(digits), int(frac.ljust(2, "0")) if frac else 0
    try:
        if len(frac) > 2 or len(digits) > _MAX_CARDINAL_DIGITS:
            raise ValueError("not a plain currency amount")
        text = num2words(
            Decimal(f"{major}.{minor:02d}"), lang=lang, to="currency", currency=code, separator=" |"
        )
    except (ValueError, OverflowError, ArithmeticError, NotImplementedError):
        amount = number_words(lang, None, digits, sep, frac or None, year=False)
        return f"{amount} {unit_plural(lang, code)}"
    left, right = (_clean(part) for part in text.split("|"))
    left = _currency_fix(lang, code, left)
    if minor == 0:
        return left
    if major == 0:
        return right
    conj = _CURRENCY_CONJ[lang]
    return f"{left} {conj} {right}" if conj else f"{left} {right}"
