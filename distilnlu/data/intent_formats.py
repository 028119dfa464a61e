"""Intent + slot data formats (DESIGN.md §3 "Labeled data"), each read into :class:`NLUExample`.

- ``massive``: MASSIVE jsonl, one record per line with ``intent`` and ``annot_utt``
  (``"wake me up at [time : five am]"``, see :func:`~distilnlu.data.slots.parse_annotated`);
  :func:`read_massive`.
- ``bio``: the three-file layout of ATIS/SNIPS (JointBERT): ``seq.in``, ``seq.out``, ``label``,
  one example per line; :func:`read_bio`.
- ``spans``: jsonl ``{"text", "intent", "slots": [{"start", "end", "type"}]}`` with character
  spans (end exclusive); :func:`read_spans_jsonl`. The built-in synthetic labeled data has the
  same shape (:func:`from_span_records`).

Bad input follows :mod:`distilnlu.data.records`: a :class:`~distilnlu.errors.DataError` whose
message starts with ``<file>:<line>:`` and says what is wrong, or with ``on_error="skip"`` the bad
record is skipped, counted (in ``stats`` when one is passed) and summarised in one warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from distilnlu.data.examples import DEFAULT_LOCALE, NLUExample
from distilnlu.data.records import (
    REASON_MISSING_FIELD,
    REASON_UTF8,
    OnError,
    Problems,
    RaiseProblems,
    SourceStats,
    describe,
    detail,
    iter_json_records,
    json_type,
    preview,
    record_id,
    reporter,
    string_fields,
    utf8_detail,
)
from distilnlu.data.slots import check_bio, parse_annotated, spans_to_example
from distilnlu.errors import DataError

__all__ = [
    "BIO_FILES",
    "REASON_ANNOTATION",
    "REASON_BIO",
    "REASON_COUNTS",
    "REASON_EMPTY",
    "REASON_SPANS",
    "REASON_TEXT_MISMATCH",
    "from_span_records",
    "read_bio",
    "read_massive",
    "read_spans_jsonl",
]

BIO_FILES = ("seq.in", "seq.out", "label")

# Reasons counted in SourceStats.reasons when on_error="skip".
REASON_ANNOTATION = "bad slot annotation"
REASON_SPANS = "bad slot spans"
REASON_BIO = "bad BIO tags"
REASON_COUNTS = "word/tag count mismatch"
REASON_EMPTY = "empty line"
REASON_TEXT_MISMATCH = "annot_utt does not match utt"


def read_massive(
    path: Path | str,
    *,
    partition: str | None = None,
    locales: list[str] | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    problems: Problems | None = None,
) -> list[NLUExample]:
    """Examples of a MASSIVE jsonl file (fields ``id, locale, partition, intent, annot_utt``).

    Keeps the records of ``partition`` and ``locales`` when given (others are dropped silently,
    before their annotation is parsed). When a record has ``utt`` too, the annotation must spell
    the same text up to whitespace (it differs only in spacing for ja-JP and zh-CN, whose ``utt``
    has no spaces between words). Blank lines are ignored.

    ``problems``: report bad records there instead; ``on_error`` and ``stats`` are then unused
    and the caller summarises (how :func:`~distilnlu.data.labeled.load_labeled` reads a set).
    """
    problems, summarise = reporter(problems, on_error, stats)
    what = str(path)
    path = Path(path)
    wanted_locales = set(locales) if locales is not None else None
    examples: list[NLUExample] = []
    for number, record in iter_json_records(path, problems):
        where = f"{path}:{number}"
        if partition is not None and record.get("partition") != partition:
            continue
        locale = record.get("locale")
        if wanted_locales is not None and locale not in wanted_locales:
            continue
        fields = string_fields(record, ("locale", "intent", "annot_utt"), where, problems)
        if fields is None:
            continue
        locale, intent, annot = fields
        try:
            words, tags = parse_annotated(annot, where)
        except DataError as exc:
            problems.bad(where, REASON_ANNOTATION, detail(exc, where))
            continue
        utt = record.get("utt")
        if isinstance(utt, str) and "".join(utt.split()) != "".join(words):
            problems.bad(
                where,
                REASON_TEXT_MISMATCH,
                f"annot_utt {preview(annot)} does not spell the same text as utt {preview(utt)}",
            )
            continue
        examples.append(NLUExample(tuple(words), tuple(tags), intent, locale, record_id(record)))
    if summarise:
        problems.summarise(what)
    return examples


def read_bio(
    folder: Path | str,
    *,
    locale: str = DEFAULT_LOCALE,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    problems: Problems | None = None,
) -> list[NLUExample]:
    """Examples of the ATIS/SNIPS three-file layout: ``seq.in``, ``seq.out``, ``label``.

    Line ``n`` of the three files is one example: its whitespace-separated words, as many IOB2
    tags and the intent. Trailing spaces and blank lines at the very end of a file are ignored;
    other blank lines are bad records. Files of different lengths cannot be aligned, so that is
    an error even with ``on_error="skip"``.

    ``problems``: report bad records there instead; ``on_error`` and ``stats`` are then unused
    and the caller summarises (how :func:`~distilnlu.data.labeled.load_labeled` reads a set).
    """
    problems, summarise = reporter(problems, on_error, stats)
    what = str(folder)
    folder = Path(folder)
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
            problems.bad(f"{paths[1]}:{number}", REASON_BIO, detail(exc, f"{paths[1]}:{number}"))
            continue
        examples.append(NLUExample(tuple(words), tuple(tags), intent, locale))
    if summarise:
        problems.summarise(what)
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
    paths: list[Path], raw: list[bytes], number: int, problems: Problems
) -> list[str] | None:
    decoded = []
    for path, line in zip(paths, raw, strict=True):
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.bad(f"{path}:{number}", REASON_UTF8, utf8_detail(line, exc))
            return None
    return decoded


def read_spans_jsonl(
    path: Path | str,
    *,
    text_field: str = "text",
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    problems: Problems | None = None,
) -> list[NLUExample]:
    """Examples of a jsonl file ``{"text", "intent", "slots": [{"start", "end", "type"}]}``.

    Spans are character offsets into the text, end exclusive (see :func:`spans_to_example`).
    Optional fields: ``locale`` (default en-US), ``id``; a missing or null ``slots`` means no
    slots. Blank lines are ignored.

    ``problems``: report bad records there instead; ``on_error`` and ``stats`` are then unused
    and the caller summarises (how :func:`~distilnlu.data.labeled.load_labeled` reads a set).
    """
    problems, summarise = reporter(problems, on_error, stats)
    what = str(path)
    path = Path(path)
    examples: list[NLUExample] = []
    for number, record in iter_json_records(path, problems):
        where = f"{path}:{number}"
        fields = string_fields(record, (text_field, "intent"), where, problems)
        if fields is None:
            continue
        example = _span_example(record, fields[0], where, DEFAULT_LOCALE, problems)
        if example is not None:
            examples.append(example)
    if summarise:
        problems.summarise(what)
    return examples


def from_span_records(
    records: Iterable[Mapping[str, Any]], where: str, locale: str = DEFAULT_LOCALE
) -> list[NLUExample]:
    """Examples of in-memory span records (the synthetic labeled data); errors always raise.

    Records look like the lines of :func:`read_spans_jsonl` (``text``, ``intent``, ``slots``,
    optional ``locale`` and ``id``); problems are reported as ``"<where>: record <n>: ..."``.
    """
    problems = RaiseProblems()
    examples = []
    for number, record in enumerate(records, 1):
        here = f"{where}: record {number}"
        if not isinstance(record, Mapping):
            raise DataError(f"{here}: expected an object, got {json_type(record)}")
        fields = string_fields(record, ("text", "intent"), here, problems)
        assert fields is not None  # "raise" mode never returns None
        example = _span_example(record, fields[0], here, locale, problems)
        assert example is not None
        examples.append(example)
    return examples


def _span_example(
    record: Mapping[str, Any], text: str, where: str, locale: str, problems: Problems
) -> NLUExample | None:
    record_locale = record.get("locale", locale)
    if not isinstance(record_locale, str) or not record_locale.strip():
        problems.bad(
            where,
            REASON_MISSING_FIELD,
            f"'locale' must be a non-empty string, got {describe(record_locale)}",
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
            record_id(record),
        )
    except DataError as exc:
        problems.bad(where, REASON_SPANS, detail(exc, where))
        return None
