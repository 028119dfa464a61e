"""Labeled NLU data: intent + slot utterances and sentence pairs (DESIGN.md §3 "Labeled data").

Every intent/slot format becomes the same :class:`NLUExample` (whitespace words, IOB2 tags, an
intent, a locale), so that fine-tuning, distillation and evaluation never see the file format:

- ``massive``: MASSIVE jsonl, one record per line with ``intent`` and ``annot_utt``
  (``"wake me up at [time : five am]"``, see :func:`parse_annotated`); :func:`read_massive`.
- ``bio``: the three-file layout of ATIS/SNIPS (JointBERT): ``seq.in``, ``seq.out``, ``label``,
  one example per line; :func:`read_bio`.
- ``spans``: jsonl ``{"text", "intent", "slots": [{"start", "end", "type"}]}`` with character
  spans (end exclusive); :func:`read_spans_jsonl`. The built-in synthetic labeled data has the
  same shape (:func:`from_span_records`).

Sentence-pair data (XNLI) becomes :class:`PairExample`: :func:`read_xnli_tsv` (XTREME dev files)
and :func:`read_xnli_jsonl` (``{"premise", "hypothesis", "label"}``).

Recipes name data sets and build label vocabularies through :mod:`distilnlu.data.labeled`.

Bad input follows :mod:`distilnlu.data.sources`: a :class:`~distilnlu.errors.DataError` whose
message starts with ``<file>:<line>:`` and says what is wrong, or with ``on_error="skip"`` the bad
record is skipped, counted (in ``stats`` when one is passed) and summarised in one warning.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from distilnlu.data.sources import (
    REASON_UTF8,
    OnError,
    SourceStats,
    _iter_json_records,
    _iter_lines,
    _json_type,
    _preview,
    _Problems,
)
from distilnlu.errors import DataError

__all__ = [
    "LABELED_FORMATS",
    "PAIR_LABELS",
    "NLUExample",
    "PairExample",
    "bio_spans",
    "check_bio",
    "from_span_records",
    "parse_annotated",
    "read_bio",
    "read_massive",
    "read_spans_jsonl",
    "read_xnli_jsonl",
    "read_xnli_tsv",
    "spans_to_example",
]

LabeledFormat = Literal["massive", "bio", "spans", "synthetic", "xnli_tsv", "xnli_jsonl"]
LABELED_FORMATS: tuple[str, ...] = (
    "massive",
    "bio",
    "spans",
    "synthetic",
    "xnli_tsv",
    "xnli_jsonl",
)
PAIR_FORMATS = ("xnli_tsv", "xnli_jsonl")

PAIR_LABELS = ("entailment", "neutral", "contradiction")
"""XNLI labels in the Hugging Face ``xnli`` order: integer labels 0, 1, 2 map to these."""

DEFAULT_LOCALE = "en-US"
BIO_FILES = ("seq.in", "seq.out", "label")

# Reasons counted in SourceStats.reasons when on_error="skip".
REASON_MISSING_FIELD = "missing or bad field"
REASON_ANNOTATION = "bad slot annotation"
REASON_SPANS = "bad slot spans"
REASON_BIO = "bad BIO tags"
REASON_COUNTS = "word/tag count mismatch"
REASON_EMPTY = "empty line"
REASON_COLUMNS = "wrong number of columns"
REASON_LABEL = "bad label"
REASON_TEXT_MISMATCH = "annot_utt does not match utt"

# Words: maximal runs of non-whitespace, the same split as str.split() (Unicode whitespace).
_WORD_RE = re.compile(r"\S+")
# A language code in a file or folder name: 'de', 'zh-CN', 'zh-Hant'. Two-letter languages only,
# so that names such as 'dev' or 'tmp' are not mistaken for languages.
_LANGUAGE = r"[A-Za-z]{2}(?:[-_](?:[A-Z]{2}|[A-Z][a-z]{3}))?"
_LANGUAGE_RE = re.compile(_LANGUAGE)
_LANGUAGE_SUFFIX_RE = re.compile(rf"[-_.]({_LANGUAGE})$")
_PAIR_LABEL_WORDS = {
    "entailment": "entailment",
    "neutral": "neutral",
    "contradiction": "contradiction",
    # Some XNLI copies (e.g. the original XNLI 1.0 tsv) spell it this way.
    "contradictory": "contradiction",
}
_HEADER_LABELS = ("label", "gold_label")


# ------------------------------------------------------------------------------------ examples


@dataclass(frozen=True, slots=True)
class NLUExample:
    """One labeled utterance: whitespace words, one IOB2 tag per word, the intent."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    """IOB2 tags ('O', 'B-<type>', 'I-<type>'), one per word."""
    intent: str
    locale: str = DEFAULT_LOCALE
    id: str | None = field(default=None, compare=False)
    """Where the example came from (record id); metadata, not part of equality."""

    def __post_init__(self) -> None:
        # Callers often build examples from lists; tuples keep the example hashable and make
        # equality independent of the container type.
        if not isinstance(self.words, tuple):
            object.__setattr__(self, "words", tuple(self.words))
        if not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", tuple(self.tags))
        if len(self.words) != len(self.tags):
            raise ValueError(f"{len(self.tags)} tags for {len(self.words)} words")

    @property
    def text(self) -> str:
        """The words joined by single spaces."""
        return " ".join(self.words)


@dataclass(frozen=True, slots=True)
class PairExample:
    """One sentence pair with its label (XNLI: entailment, neutral or contradiction)."""

    premise: str
    hypothesis: str
    label: str
    language: str
    """Language code such as 'en' or 'de'."""
    id: str | None = field(default=None, compare=False)


# ------------------------------------------------------------------------------ slot encodings


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
                f"{where}: ']' at character {stray + 1} without an opening '[' in {_preview(annot)}"
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
                f"character {start + 1} in {_preview(annot)}"
            )
        if end == -1:
            raise DataError(
                f"{where}: '[' at character {start + 1} is never closed by ']' in {_preview(annot)}"
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
        raise DataError(f"{where}: the text is {_json_type(text)}, not a string")
    if not isinstance(intent, str) or not intent.strip():
        raise DataError(f"{where}: the intent must be a non-empty string, got {_describe(intent)}")
    matches = list(_WORD_RE.finditer(text))
    if not matches:
        raise DataError(f"{where}: the text has no words")
    if not isinstance(slots, list):
        raise DataError(f"{where}: 'slots' must be a list of objects, got {_json_type(slots)}")
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
        raise DataError(f"{where}: slot {number} is {_json_type(slot)}, not an object")
    slot_type = slot.get("type")
    if not isinstance(slot_type, str) or not slot_type.strip():
        raise DataError(
            f"{where}: slot {number}: 'type' must be a non-empty string, got {_describe(slot_type)}"
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
                f"{_describe(value)}"
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


# ------------------------------------------------------------------------------------ readers


def read_massive(
    path: Path | str,
    *,
    partition: str | None = None,
    locales: list[str] | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> list[NLUExample]:
    """Examples of a MASSIVE jsonl file (fields ``id, locale, partition, intent, annot_utt``).

    Keeps the records of ``partition`` and ``locales`` when given (others are dropped silently,
    before their annotation is parsed). When a record has ``utt`` too, the annotation must spell
    the same text up to whitespace (it differs only in spacing for ja-JP and zh-CN, whose ``utt``
    has no spaces between words). Blank lines are ignored.
    """
    problems = _Problems(on_error, stats)
    examples = _read_massive(Path(path), partition, locales, problems)
    problems.summarise(str(path))
    return examples


def _read_massive(
    path: Path, partition: str | None, locales: list[str] | None, problems: _Problems
) -> list[NLUExample]:
    wanted_locales = set(locales) if locales is not None else None
    examples: list[NLUExample] = []
    for number, record in _iter_json_records(path, problems):
        where = f"{path}:{number}"
        if partition is not None and record.get("partition") != partition:
            continue
        locale = record.get("locale")
        if wanted_locales is not None and locale not in wanted_locales:
            continue
        fields = _string_fields(record, ("locale", "intent", "annot_utt"), where, problems)
        if fields is None:
            continue
        locale, intent, annot = fields
        try:
            words, tags = parse_annotated(annot, where)
        except DataError as exc:
            problems.bad(where, REASON_ANNOTATION, _detail(exc, where))
            continue
        utt = record.get("utt")
        if isinstance(utt, str) and "".join(utt.split()) != "".join(words):
            problems.bad(
                where,
                REASON_TEXT_MISMATCH,
                f"annot_utt {_preview(annot)} does not spell the same text as utt {_preview(utt)}",
            )
            continue
        examples.append(NLUExample(tuple(words), tuple(tags), intent, locale, _record_id(record)))
    return examples


def read_bio(
    folder: Path | str,
    *,
    locale: str = DEFAULT_LOCALE,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> list[NLUExample]:
    """Examples of the ATIS/SNIPS three-file layout: ``seq.in``, ``seq.out``, ``label``.

    Line ``n`` of the three files is one example: its whitespace-separated words, as many IOB2
    tags and the intent. Trailing spaces and blank lines at the very end of a file are ignored;
    other blank lines are bad records. Files of different lengths cannot be aligned, so that is
    an error even with ``on_error="skip"``.
    """
    problems = _Problems(on_error, stats)
    examples = _read_bio(Path(folder), locale, problems)
    problems.summarise(str(folder))
    return examples


def _read_bio(folder: Path, locale: str, problems: _Problems) -> list[NLUExample]:
    if not folder.is_dir():
        raise DataError(
            f"{folder}: not a folder (a bio data set is a folder with {', '.join(BIO_FILES)})"
        )
    paths = [folder / name for name in BIO_FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} (expected {', '.join(BIO_FILES)})")
    contents = [_raw_lines(p) for p in paths]
    counts = [len(lines) for lines in contents]
    if len(set(counts)) > 1:
        shortest = counts.index(min(counts))
        others = ", ".join(
            f"{p.name} has {n}"
            for i, (p, n) in enumerate(zip(paths, counts, strict=True))
            if i != shortest
        )
        raise DataError(
            f"{paths[shortest]}:{counts[shortest] + 1}: file ends after {counts[shortest]} "
            f"lines but {others}; the three files need one line per example"
        )
    examples: list[NLUExample] = []
    for index in range(counts[0]):
        number = index + 1
        line = _decode_row(paths, [lines[index] for lines in contents], number, problems)
        if line is None:
            continue
        words, tags, intent = line[0].split(), line[1].split(), line[2].strip()
        empty = next((p for p, v in zip(paths, line, strict=True) if not v.strip()), None)
        if empty is not None:
            problems.bad(f"{empty}:{number}", REASON_EMPTY, "empty line (every line is an example)")
            continue
        if len(tags) != len(words):
            problems.bad(
                f"{paths[1]}:{number}",
                REASON_COUNTS,
                f"{len(tags)} tags for {len(words)} words",
            )
            continue
        try:
            check_bio(tags, f"{paths[1]}:{number}")
        except DataError as exc:
            problems.bad(f"{paths[1]}:{number}", REASON_BIO, _detail(exc, f"{paths[1]}:{number}"))
            continue
        examples.append(NLUExample(tuple(words), tuple(tags), intent, locale))
    return examples


def _raw_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    # A final newline, or blank lines after the last example, do not make extra examples.
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


def _decode_row(
    paths: list[Path], raw: list[bytes], number: int, problems: _Problems
) -> list[str] | None:
    decoded = []
    for path, line in zip(paths, raw, strict=True):
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            bad = line[exc.start : exc.start + 1].hex()
            problems.bad(
                f"{path}:{number}",
                REASON_UTF8,
                f"invalid UTF-8 (byte 0x{bad} at byte {exc.start + 1} of the line)",
            )
            return None
    return decoded


def read_spans_jsonl(
    path: Path | str,
    *,
    text_field: str = "text",
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> list[NLUExample]:
    """Examples of a jsonl file ``{"text", "intent", "slots": [{"start", "end", "type"}]}``.

    Spans are character offsets into the text, end exclusive (see :func:`spans_to_example`).
    Optional fields: ``locale`` (default en-US), ``id``; a missing or null ``slots`` means no
    slots. Blank lines are ignored.
    """
    problems = _Problems(on_error, stats)
    examples = _read_spans(Path(path), text_field, problems)
    problems.summarise(str(path))
    return examples


def _read_spans(path: Path, text_field: str, problems: _Problems) -> list[NLUExample]:
    examples: list[NLUExample] = []
    for number, record in _iter_json_records(path, problems):
        where = f"{path}:{number}"
        fields = _string_fields(record, (text_field, "intent"), where, problems)
        if fields is None:
            continue
        example = _span_example(record, fields[0], where, DEFAULT_LOCALE, problems)
        if example is not None:
            examples.append(example)
    return examples


def from_span_records(
    records: Iterable[Mapping[str, Any]], where: str, locale: str = DEFAULT_LOCALE
) -> list[NLUExample]:
    """Examples of in-memory span records (the synthetic labeled data); errors always raise.

    Records look like the lines of :func:`read_spans_jsonl` (``text``, ``intent``, ``slots``,
    optional ``locale`` and ``id``); problems are reported as ``"<where>: record <n>: ..."``.
    """
    problems = _RaiseProblems()
    examples = []
    for number, record in enumerate(records, 1):
        here = f"{where}: record {number}"
        if not isinstance(record, Mapping):
            raise DataError(f"{here}: expected an object, got {_json_type(record)}")
        fields = _string_fields(record, ("text", "intent"), here, problems)
        assert fields is not None  # "raise" mode never returns None
        example = _span_example(record, fields[0], here, locale, problems)
        assert example is not None
        examples.append(example)
    return examples


def _span_example(
    record: Mapping[str, Any], text: str, where: str, locale: str, problems: _Problems
) -> NLUExample | None:
    record_locale = record.get("locale", locale)
    if not isinstance(record_locale, str) or not record_locale.strip():
        problems.bad(
            where,
            REASON_MISSING_FIELD,
            f"'locale' must be a non-empty string, got {_describe(record_locale)}",
        )
        return None
    slots = record.get("slots")
    try:
        return spans_to_example(
            text,
            [] if slots is None else slots,
            record["intent"],
            record_locale.strip(),
            where,
            _record_id(record),
        )
    except DataError as exc:
        problems.bad(where, REASON_SPANS, _detail(exc, where))
        return None


def read_xnli_tsv(
    path: Path | str,
    *,
    language: str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> list[PairExample]:
    """Pairs of an XTREME XNLI tsv: ``premise <TAB> hypothesis <TAB> label`` per line.

    Labels are words (entailment, neutral, contradiction; 'contradictory' is read as
    contradiction) or the integers 0-2 of the HF convention. A first line whose third column is
    'label' or 'gold_label' is a header and skipped. ``language`` defaults to the code at the end
    of the file name ('dev-de.tsv' -> 'de'). Blank lines are ignored.
    """
    path = Path(path)
    language = language or _language_from_name(path.stem, path, "file name", suffix=True)
    problems = _Problems(on_error, stats)
    examples = _read_xnli_tsv(path, language, problems)
    problems.summarise(str(path))
    return examples


def _read_xnli_tsv(path: Path, language: str, problems: _Problems) -> list[PairExample]:
    examples: list[PairExample] = []
    first = True
    for number, line in _iter_lines(path, problems):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        columns = line.split("\t")
        if first and len(columns) == 3 and columns[2].strip() in _HEADER_LABELS:
            first = False
            continue
        first = False
        if len(columns) != 3:
            problems.bad(
                where,
                REASON_COLUMNS,
                f"expected 3 tab-separated columns (premise, hypothesis, label), got "
                f"{len(columns)}",
            )
            continue
        example = _pair(columns[0], columns[1], columns[2], language, where, None, problems)
        if example is not None:
            examples.append(example)
    return examples


def read_xnli_jsonl(
    path: Path | str,
    *,
    language: str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> list[PairExample]:
    """Pairs of a jsonl file ``{"premise", "hypothesis", "label"}`` (XNLI test as published).

    ``label`` is 0, 1, 2 (entailment, neutral, contradiction: the HF convention) or a label word.
    The language is ``language`` when given, else the record's ``language`` field, else the name
    of the file's folder ('.../de/test.jsonl' -> 'de'). Blank lines are ignored.
    """
    path = Path(path)
    problems = _Problems(on_error, stats)
    examples = _read_xnli_jsonl(path, language, problems)
    problems.summarise(str(path))
    return examples


def _read_xnli_jsonl(path: Path, language: str | None, problems: _Problems) -> list[PairExample]:
    folder_language: str | None = None
    examples: list[PairExample] = []
    for number, record in _iter_json_records(path, problems):
        where = f"{path}:{number}"
        record_language = language
        if record_language is None:
            field_value = record.get("language")
            if isinstance(field_value, str) and field_value.strip():
                record_language = field_value.strip()
            else:
                # Only needed when no record says its language, so a file whose records all
                # carry one may live in any folder.
                if folder_language is None:
                    folder_language = _language_from_name(
                        path.parent.name, path, "folder name", suffix=False
                    )
                record_language = folder_language
        fields = _string_fields(record, ("premise", "hypothesis"), where, problems)
        if fields is None:
            continue
        if "label" not in record:
            problems.bad(where, REASON_MISSING_FIELD, "missing field 'label'")
            continue
        example = _pair(
            fields[0],
            fields[1],
            record["label"],
            record_language,
            where,
            _record_id(record),
            problems,
        )
        if example is not None:
            examples.append(example)
    return examples


def _pair(
    premise: str,
    hypothesis: str,
    label: Any,
    language: str,
    where: str,
    id: str | None,
    problems: _Problems,
) -> PairExample | None:
    premise, hypothesis = premise.strip(), hypothesis.strip()
    for name, value in (("premise", premise), ("hypothesis", hypothesis)):
        if not value:
            problems.bad(where, REASON_MISSING_FIELD, f"empty {name}")
            return None
    word = _pair_label(label)
    if word is None:
        problems.bad(
            where,
            REASON_LABEL,
            f"label {label!r} is not one of {', '.join(PAIR_LABELS)} ('contradictory') or 0, 1, 2",
        )
        return None
    return PairExample(premise, hypothesis, word, language, id)


def _pair_label(label: Any) -> str | None:
    if isinstance(label, bool):
        return None
    if isinstance(label, str):
        text = label.strip()
        if text.isascii() and text.isdigit():
            label = int(text)
        else:
            return _PAIR_LABEL_WORDS.get(text.lower())
    if isinstance(label, int) and 0 <= label < len(PAIR_LABELS):
        return PAIR_LABELS[label]
    return None


def _language_from_name(name: str, path: Path, what: str, *, suffix: bool) -> str:
    """'de' -> 'de'; with ``suffix`` also 'dev-de' -> 'de', 'test_zh-CN' -> 'zh-CN'."""
    match = _LANGUAGE_RE.fullmatch(name)
    code = match.group() if match else None
    if code is None and suffix:
        found = _LANGUAGE_SUFFIX_RE.search(name)
        code = found.group(1) if found else None
    if code is None:
        raise DataError(
            f"{path}: cannot tell the language from the {what} {name!r}; set language explicitly"
        )
    return code[:2].lower() + code[2:]


# ------------------------------------------------------------------------------- record helpers


class _RaiseProblems(_Problems):
    """Raises every bad record without the on_error hint: in-memory records cannot be skipped."""

    def __init__(self) -> None:
        super().__init__("raise", None)

    def bad(self, where: str, reason: str, detail: str) -> None:
        raise DataError(f"{where}: {detail}")


def _string_fields(
    record: Mapping[str, Any], names: tuple[str, ...], where: str, problems: _Problems
) -> list[str] | None:
    values = []
    for name in names:
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            got = "missing" if name not in record else _describe(value)
            problems.bad(
                where, REASON_MISSING_FIELD, f"field {name!r} must be a non-empty string, got {got}"
            )
            return None
        values.append(value.strip())
    return values


def _record_id(record: Mapping[str, Any]) -> str | None:
    value = record.get("id")
    return None if value is None else str(value)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if value.strip() else "an empty string"
    if isinstance(value, bool | int | float):
        return f"{_json_type(value)} {value!r}"
    return _json_type(value)


def _detail(exc: DataError, where: str) -> str:
    # The helpers prefix their message with `where`; _Problems.bad adds it again.
    return str(exc).removeprefix(f"{where}: ")
