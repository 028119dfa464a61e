"""Sentence-pair data formats (XNLI), each read into :class:`PairExample` (DESIGN.md §3).

:func:`read_xnli_tsv` reads the XTREME dev files (``premise <TAB> hypothesis <TAB> label``),
:func:`read_xnli_jsonl` jsonl ``{"premise", "hypothesis", "label"}`` (XNLI test as published).
Bad input is reported as in :mod:`distilnlu.data.intent_formats`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from distilnlu.data.examples import PAIR_LABELS, PairExample
from distilnlu.data.records import (
    REASON_MISSING_FIELD,
    OnError,
    Problems,
    SourceStats,
    iter_json_records,
    iter_lines,
    record_id,
    reporter,
    string_fields,
)
from distilnlu.errors import DataError

__all__ = ["REASON_COLUMNS", "REASON_LABEL", "read_xnli_jsonl", "read_xnli_tsv"]

# Reasons counted in SourceStats.reasons when on_error="skip".
REASON_COLUMNS = "wrong number of columns"
REASON_LABEL = "bad label"

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


def read_xnli_tsv(
    path: Path | str,
    *,
    language: str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    problems: Problems | None = None,
) -> list[PairExample]:
    """Pairs of an XTREME XNLI tsv: ``premise <TAB> hypothesis <TAB> label`` per line.

    Labels are words (entailment, neutral, contradiction; 'contradictory' is read as
    contradiction) or the integers 0-2 of the HF convention. A first line whose third column is
    'label' or 'gold_label' is a header and skipped. ``language`` defaults to the code at the end
    of the file name ('dev-de.tsv' -> 'de'). Blank lines are ignored.

    ``problems``: report bad records there instead; ``on_error`` and ``stats`` are then unused
    and the caller summarises (how :func:`~distilnlu.data.labeled.load_labeled` reads a set).
    """
    path = Path(path)
    language = language or _language_from_name(path.stem, path, "file name", suffix=True)
    problems, summarise = reporter(problems, on_error, stats)
    examples: list[PairExample] = []
    first = True
    for number, line in iter_lines(path, problems):
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
    if summarise:
        problems.summarise(str(path))
    return examples


def read_xnli_jsonl(
    path: Path | str,
    *,
    language: str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    problems: Problems | None = None,
) -> list[PairExample]:
    """Pairs of a jsonl file ``{"premise", "hypothesis", "label"}`` (XNLI test as published).

    ``label`` is 0, 1, 2 (entailment, neutral, contradiction: the HF convention) or a label word.
    The language is ``language`` when given, else the record's ``language`` field, else the name
    of the file's folder ('.../de/test.jsonl' -> 'de'). Blank lines are ignored.

    ``problems``: report bad records there instead; ``on_error`` and ``stats`` are then unused
    and the caller summarises (how :func:`~distilnlu.data.labeled.load_labeled` reads a set).
    """
    path = Path(path)
    problems, summarise = reporter(problems, on_error, stats)
    folder_language: str | None = None
    examples: list[PairExample] = []
    for number, record in iter_json_records(path, problems):
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
        fields = string_fields(record, ("premise", "hypothesis"), where, problems)
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
            record_id(record),
            problems,
        )
        if example is not None:
            examples.append(example)
    if summarise:
        problems.summarise(str(path))
    return examples


def _pair(
    premise: str,
    hypothesis: str,
    label: Any,
    language: str,
    where: str,
    id: str | None,
    problems: Problems,
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
