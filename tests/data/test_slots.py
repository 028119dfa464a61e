"""Tests for distilnlu.data.slots: MASSIVE annotations, character spans, IOB2 tags."""

from __future__ import annotations

import pytest

from distilnlu.data.slots import bio_spans, check_bio, parse_annotated, spans_to_example
from distilnlu.errors import DataError
from tests.data.helpers import ALARM, TAGS, TEXT, WORDS

# ------------------------------------------------------------------------- parse_annotated


@pytest.mark.parametrize(
    ("annot", "words", "tags"),
    [
        (
            "wake me up at [time : five am] [date : this week]",
            list(WORDS),
            list(TAGS),
        ),
        (
            "[date : 今週] は [time : 午前五時] に起こして",
            ["今週", "は", "午前五時", "に起こして"],
            ["B-date", "O", "B-time", "O"],
        ),
        # A bracket ends a word even without a space: slots always cover whole words.
        ("[date : 今週]は", ["今週", "は"], ["B-date", "O"]),
        (
            "at [time : 5:30 pm]  please ",
            ["at", "5:30", "pm", "please"],
            ["O", "B-time", "I-time", "O"],
        ),
        ("no slots here", ["no", "slots", "here"], ["O", "O", "O"]),
    ],
)
def test_parse_annotated(annot: str, words: list[str], tags: list[str]) -> None:
    assert parse_annotated(annot, "f:1") == (words, tags)


@pytest.mark.parametrize(
    ("annot", "problem"),
    [
        ("wake me at [time : five am", "'\\[' at character 12 is never closed"),
        ("wake me at time : five am]", "'\\]' at character 26 without an opening '\\['"),
        ("[time : [date : x] y]", "nested '\\[' at character 9"),
        ("wake [time five am]", "no ' : ' between its type and its value"),
        ("wake [ : five am]", "empty type"),
        ("wake [time : ]", "empty value"),
        ("wake [time of day : five]", "type must not contain whitespace"),
        ("   ", "no words"),
    ],
)
def test_parse_annotated_malformed(annot: str, problem: str) -> None:
    with pytest.raises(DataError, match="^data.jsonl:3: .*" + problem):
        parse_annotated(annot, "data.jsonl:3")


# ----------------------------------------------------------------------------------- spans


@pytest.mark.parametrize(
    ("slots", "problem"),
    [
        ([{"start": 15, "end": 21, "type": "time"}], r"\[15, 21\) = 'ive am' does not start"),
        ([{"start": 14, "end": 22, "type": "time"}], "does not start and end on word bound"),
        (
            [{"start": 14, "end": 21, "type": "time"}, {"start": 19, "end": 26, "type": "x"}],
            r"slot 'x' \[19, 26\) overlaps slot 'time' ending at 21",
        ),
        (
            [{"start": 22, "end": 31, "type": "d"}, {"start": 14, "end": 26, "type": "t"}],
            "overlaps",
        ),
        ([{"start": 22, "end": 40, "type": "date"}], "outside the text"),
        ([{"start": 5, "end": 5, "type": "date"}], "is empty"),
        ([{"start": "14", "end": 21, "type": "time"}], "'start' must be an integer"),
        ([{"start": 14, "end": 21}], "'type' must be a non-empty string"),
        (["time"], "slot 1 is a string, not an object"),
    ],
)
def test_bad_spans(slots: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(DataError, match="^x:4: .*" + problem):
        spans_to_example(TEXT, slots, "alarm_set", "en-US", "x:4")


def test_spans_to_example_unordered_slots_and_extra_whitespace() -> None:
    text = "  wake me up at five am this week "
    slots = [{"start": 24, "end": 33, "type": "date"}, {"start": 16, "end": 23, "type": "time"}]
    example = spans_to_example(text, slots, "alarm_set", "en-US", "w", id="3")
    assert example == ALARM and example.id == "3"


# ------------------------------------------------------------------------------------- BIO


def test_check_bio_and_bio_spans() -> None:
    check_bio(list(TAGS), "w")
    check_bio([], "w")
    with pytest.raises(DataError, match=r"^f:2: I-time without B-time at word 2$"):
        check_bio(["O", "I-time"], "f:2")
    with pytest.raises(DataError, match="I-date without B-date at word 2"):
        check_bio(["B-time", "I-date"], "f:2")
    with pytest.raises(DataError, match="invalid tag 'X-time' at word 1"):
        check_bio(["X-time"], "f:2")
    with pytest.raises(DataError, match="invalid tag 'B-' at word 1"):
        check_bio(["B-"], "f:2")

    assert bio_spans(TAGS) == [("time", 4, 6), ("date", 6, 8)]
    assert bio_spans(["B-a", "B-a", "I-a"]) == [("a", 0, 1), ("a", 1, 3)]
    # Strict reading: a stray I- (or a malformed tag) starts nothing.
    assert bio_spans(["O", "I-a", "I-a", "B-b", "I-a", "junk"]) == [("b", 3, 4)]
    assert bio_spans([]) == []
