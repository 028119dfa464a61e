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
The check itself is :func:`distilnlu.modeling.nlu_parse.check_text`, the one a fine-tuned folder
carries, so that a folder used without distilnlu refuses the same texts with the same words.
"""

from __future__ import annotations

from typing import Any

from distilnlu.errors import DataError
from distilnlu.modeling import nlu_parse
from distilnlu.modeling.nlu_parse import MAX_CHARS, json_kind

__all__ = ["MAX_CHARS", "check_text", "json_kind"]


def check_text(text: Any, where: str = "the text", max_chars: int = MAX_CHARS) -> str:
    """``text`` itself if the parser can take it; else a :class:`DataError` naming ``where``.

    ``where`` names the text for the message (``"'text'"``, ``"texts[3]"``, ``"line 7"``).
    """
    try:
        return nlu_parse.check_text(text, where, max_chars)
    except ValueError as exc:
        raise DataError(str(exc)) from None
