"""What counts as a text the parser can take: one check shared by ``predict``, the service and
:class:`~distilnlu.deploy.parser.Parser`.

A text is refused, with a one-line :class:`~distilnlu.errors.DataError`, when it

* is not a string;
* cannot be written as UTF-8: it holds a lone surrogate, which JSON allows (``"\\ud800"``) and
  Python makes of undecodable bytes in command-line arguments and files (``surrogateescape``).
  The tokenizer raises on such a string, and the answer, which echoes the text, could not be
  encoded either;
* is empty or only whitespace: there is no word to tag;
* is longer than ``max_chars`` characters (:data:`MAX_CHARS` by default, ``serve --max-chars``).

Checking before the model call is what keeps one bad text from failing the texts batched with it.
"""

from __future__ import annotations

from typing import Any

from distilnlu.errors import DataError

MAX_CHARS = 1000
"""The longest text accepted by default, in characters (``serve --max-chars`` changes it)."""

_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string"}


def json_kind(value: Any) -> str:
    """A JSON value's type, in JSON's words."""
    return _KINDS.get(type(value), "list" if isinstance(value, list) else "object")


def _unencodable(text: str, where: str) -> str | None:
    """Why ``text`` cannot be UTF-8, or None. Surrogates U+DC80-U+DCFF are what Python's
    ``surrogateescape`` makes of undecodable bytes, so those name the original byte."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        if 0xDC80 <= code <= 0xDCFF:
            byte = code - 0xDC00
            return f"{where} is not valid UTF-8 (byte 0x{byte:02x} at character {exc.start})"
        return (
            f"{where} is not valid Unicode text: it holds a lone surrogate U+{code:04X} at"
            f" character {exc.start}"
        )
    return None


def check_text(text: Any, where: str = "the text", max_chars: int = MAX_CHARS) -> str:
    """``text`` itself if the parser can take it; else a :class:`DataError` naming ``where``.

    ``where`` names the text for the message (``"'text'"``, ``"texts[3]"``, ``"line 7"``).
    """
    if not isinstance(text, str):
        raise DataError(f"{where} must be a string, not a {json_kind(text)}")
    problem = _unencodable(text, where)
    if problem:
        raise DataError(problem)
    if not text.strip():
        raise DataError(f"{where} is empty or only whitespace: there is nothing to parse")
    if len(text) > max_chars:
        raise DataError(f"{where} is {len(text)} characters long; the limit is {max_chars}")
    return text
