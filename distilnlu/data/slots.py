"""Slot annotations: MASSIVE brackets, character spans and IOB2 tags (DESIGN.md §3 "Labeled data").

:func:`parse_annotated` reads a MASSIVE ``annot_utt`` and :func:`spans_to_example` character-span
slots into whitespace words with IOB2 tags; :func:`check_bio` validates a tag sequence and
:func:`bio_spans` reads the slots back out of one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from distilnlu.data.examples import NLUExample
from distilnlu.data.records import describe, json_type, preview
from distilnlu.errors import DataError

__all__ = ["bio_spans", "check_bio", "parse_annotated", "spans_to_example"]

# Words: maximal runs of non-whitespace, the same split as str.split() (Unicode whitespace).
_WORD_RE = re.compile(r"\S+")


def parse_annotated(annot: str, where: str) -> tuple[list[str], list[str]]:
    """Words and IOB2 tags of a MASSIVE ``annot_utt``.

    ``"wake me up at [time : five am]"`` gives words ``wake me up at five am`` and tags
    ``O O O O B-time I-time``. Words are separated by whitespace; a bracket also ends a word,
    so ``"[date : 今週]は"`` reads as the words ``今週`` and ``は`` (a slot covers whole words).
    Raises DataError ``"<where>: ..."`` for unbalanced or nested brackets, a slot without
    ``" : "``, an empty or multi-word slot type, an empty slot value or an annotation without
    words.
    """
    words: list[str] = []
    tags: list[str] = []
    pos = 0
    while pos < len(annot):
        start = annot.find("[", pos)
        stray = annot.find("]", pos)
        if stray != -1 and (start == -1 or stray < start):
            raise DataError(
                f"{where}: ']' at character {stray + 1} without an opening '[' in {preview(annot)}"
            )
        if start == -1:
            outside = annot[pos:].split()
            words += outside
            tags += ["O"] * len(outside)
            break
        outside = annot[pos:start].split()
        words += outside
        tags += ["O"] * len(outside)
        end = annot.find("]", start + 1)
        nested = annot.find("[", start + 1)
        if nested != -1 and (end == -1 or nested < end):
            raise DataError(
                f"{where}: nested '[' at character {nested + 1} inside the slot opened at "
                f"character {start + 1} in {preview(annot)}"
            )
        if end == -1:
            raise DataError(
                f"{where}: '[' at character {start + 1} is never closed by ']' in {preview(annot)}"
            )
        slot = annot[start : end + 1]
        slot_type, sep, value = annot[start + 1 : end].partition(" : ")
        slot_type = slot_type.strip()
        if not sep:
            raise DataError(
                f"{where}: slot {slot!r} has no ' : ' between its type and its value "
                "(expected '[type : value]')"
            )
        if not slot_type:
            raise DataError(f"{where}: slot {slot!r} has an empty type")
        if len(slot_type.split()) != 1:
            raise DataError(f"{where}: slot {slot!r}: the type must not contain whitespace")
        value_words = value.split()
        if not value_words:
            raise DataError(f"{where}: slot {slot!r} has an empty value")
        words += value_words
        tags += [f"B-{slot_type}"] + [f"I-{slot_type}"] * (len(value_words) - 1)
        pos = end + 1
    if not words:
        raise DataError(f"{where}: the annotation has no words")
    return words, tags


def spans_to_example(
    text: str,
    slots: list[dict[str, Any]],
    intent: str,
    locale: str,
    where: str,
    id: str | None = None,
) -> NLUExample:
    """An example from a text with character-span slots ``{"start", "end", "type"}``.

    Words are the whitespace-separated parts of ``text``; a word is tagged ``B-``/``I-<type>`` of
    the slot whose span covers it. Spans (end exclusive) must lie inside the text, start at the
    start of a word and end at the end of a word, and must not overlap; anything else, an empty
    text or an empty intent raises DataError ``"<where>: ..."``.
    """
    if not isinstance(text, str):
        raise DataError(f"{where}: the text is {json_type(text)}, not a string")
    if not isinstance(intent, str) or not intent.strip():
        raise DataError(f"{where}: the intent must be a non-empty string, got {describe(intent)}")
    matches = list(_WORD_RE.finditer(text))
    if not matches:
        raise DataError(f"{where}: the text has no words")
    if not isinstance(slots, list):
        raise DataError(f"{where}: 'slots' must be a list of objects, got {json_type(slots)}")
    starts = {m.start(): i for i, m in enumerate(matches)}
    ends = {m.end(): i for i, m in enumerate(matches)}
    tags = ["O"] * len(matches)
    spans: list[tuple[int, int, str]] = []
    for number, slot in enumerate(slots, 1):
        start, end, slot_type = _check_slot(slot, number, len(text), where)
        if start not in starts or end not in ends:
            raise DataError(
                f"{where}: slot {number} ({slot_type!r}) [{start}, {end}) = "
                f"{text[start:end]!r} does not start and end on word boundaries "
                "(words are separated by whitespace)"
            )
        spans.append((start, end, slot_type))
    spans.sort()
    for (_, prev_end, prev_type), (start, end, slot_type) in itertools.pairwise(spans):
        if start < prev_end:
            raise DataError(
                f"{where}: slot {slot_type!r} [{start}, {end}) overlaps slot {prev_type!r} "
                f"ending at {prev_end}"
            )
    for start, end, slot_type in spans:
        first, last = starts[start], ends[end]
        tags[first] = f"B-{slot_type}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{slot_type}"
    words = tuple(m.group() for m in matches)
    return NLUExample(words, tuple(tags), intent.strip(), locale, id)


def _check_slot(slot: Any, number: int, length: int, where: str) -> tuple[int, int, str]:
    if not isinstance(slot, Mapping):
        raise DataError(f"{where}: slot {number} is {json_type(slot)}, not an object")
    slot_type = slot.get("type")
    if not isinstance(slot_type, str) or not slot_type.strip():
        raise DataError(
            f"{where}: slot {number}: 'type' must be a non-empty string, got {describe(slot_type)}"
        )
    slot_type = slot_type.strip()
    if len(slot_type.split()) != 1:
        raise DataError(f"{where}: slot {number}: type {slot_type!r} must not contain whitespace")
    bounds = []
    for key in ("start", "end"):
        value = slot.get(key)
        # bool is an int subclass; true/false in a span is a mistake, not 1/0.
        if not isinstance(value, int) or isinstance(value, bool):
            raise DataError(
                f"{where}: slot {number} ({slot_type!r}): {key!r} must be an integer, got "
                f"{describe(value)}"
            )
        bounds.append(value)
    start, end = bounds
    if not 0 <= start < end <= length:
        raise DataError(
            f"{where}: slot {number} ({slot_type!r}) span [{start}, {end}) is empty or lies "
            f"outside the text (length {length})"
        )
    return start, end, slot_type


def bio_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The slots of an IOB2 tag sequence: ``(type, first_word, last_word + 1)``.

    Strict IOB2 reading: a span starts at ``B-x`` and continues over the ``I-x`` right after it.
    An ``I-x`` that does not continue a span of type ``x`` starts nothing, and malformed tags are
    read as outside; so a predicted sequence with such tags scores as wrong, never as a lucky
    span.
    """
    spans: list[tuple[str, int, int]] = []
    current: str | None = None
    begin = 0
    for i, tag in enumerate(tags):
        if current is not None and tag == f"I-{current}":
            continue
        if current is not None:
            spans.append((current, begin, i))
            current = None
        if tag.startswith("B-") and len(tag) > 2:
            current, begin = tag[2:], i
    if current is not None:
        spans.append((current, begin, len(tags)))
    return spans


def check_bio(tags: Sequence[str], where: str) -> None:
    """Raise DataError ``"<where>: ..."`` unless ``tags`` is valid IOB2.

    Every tag is ``O``, ``B-<type>`` or ``I-<type>``; ``I-x`` must follow ``B-x`` or ``I-x``.
    Words are counted from 1 in messages.
    """
    previous = "O"
    for number, tag in enumerate(tags, 1):
        if tag != "O":
            prefix, _, slot_type = tag.partition("-")
            if prefix not in ("B", "I") or not slot_type or len(tag.split()) != 1:
                raise DataError(
                    f"{where}: invalid tag {tag!r} at word {number} "
                    "(expected O, B-<type> or I-<type>)"
                )
            if prefix == "I" and previous not in (f"B-{slot_type}", f"I-{slot_type}"):
                raise DataError(f"{where}: {tag} without B-{slot_type} at word {number}")
        previous = tag
