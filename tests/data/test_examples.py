"""Tests for distilnlu.data.examples: the labeled example types."""

from __future__ import annotations

import pytest

from distilnlu.data.examples import NLUExample, PairExample
from tests.data.helpers import ALARM, TAGS, TEXT, WORDS


def test_example_text_tuples_and_length_check() -> None:
    example = NLUExample(list(WORDS), list(TAGS), "alarm_set", id="x")  # type: ignore[arg-type]
    assert example == ALARM and hash(example) == hash(ALARM)
    assert example.text == TEXT
    with pytest.raises(ValueError, match="2 tags for 1 words"):
        NLUExample(("a",), ("O", "O"), "i")
    pair = PairExample("p", "h", "neutral", "en", id="1")
    assert pair == PairExample("p", "h", "neutral", "en", id="2")
