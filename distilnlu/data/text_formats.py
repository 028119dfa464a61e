"""Readers of the text formats (DESIGN.md §3 "Sources"), one document stream per file or dataset.

- ``txt``: one document per non-empty line.
- ``wikiextractor``: ``<doc id=.. url=.. title=..>``, then the title line (dropped), then the
  article's text lines until ``</doc>``; one document per article, its non-empty lines joined by
  ``"\\n"``.
- ``jsonl``: one JSON object per line, the text in ``text_field``.
- ``parquet``: the text in the column ``text_field``, read batch by batch.
- ``hf``: a Hugging Face dataset, streamed (``streaming=True``).
- ``synthetic``: the built-in demo text of :mod:`distilnlu.data.synthetic`.

:func:`detect_format` picks a file format for ``format: auto``. Files ending in ``.gz`` or
``.bz2`` are decompressed on the fly (WikiExtractor ``--compress`` writes ``.bz2`` shards).
Document text is stripped of surrounding whitespace; records whose text is empty are dropped
silently. Bad records go to a :class:`~distilnlu.data.records.Problems`.
Readers take ``max_chars``, the length documents are cut to afterwards
(:mod:`distilnlu.data.limits`): the line-based ones (``txt``, ``wikiextractor``) then never hold
more of an over-long line or article than that cut can need; a JSON or parquet record is parsed
whole.
:data:`distilnlu.data.readers.TEXT_READERS` maps each file format to its reader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

from distilnlu.data.records import (
    COMPRESSED,
    Problems,
    iter_json_records,
    iter_lines,
    json_type,
    open_binary,
    preview,
)
from distilnlu.data.source_config import (
    Document,
    SourceConfig,
    hf_spec,
    normalize_language,
    synthetic_kind,
)
from distilnlu.errors import DataError

__all__ = [
    "REASON_LANGUAGE",
    "REASON_MISSING_TEXT",
    "REASON_NON_STRING_TEXT",
    "REASON_OUTSIDE_DOC",
    "REASON_UNTERMINATED_DOC",
    "detect_format",
    "iter_hf",
    "iter_jsonl",
    "iter_parquet",
    "iter_synthetic",
    "iter_txt",
    "iter_wikiextractor",
]

# Reasons counted in SourceStats.reasons when on_error="skip".
REASON_MISSING_TEXT = "missing text field"
REASON_NON_STRING_TEXT = "non-string text field"
REASON_LANGUAGE = "bad language field"
REASON_UNTERMINATED_DOC = "unterminated <doc>"
REASON_OUTSIDE_DOC = "text outside <doc>"

_PARQUET_BATCH_ROWS = 1024
_LINE_SLACK_BYTES = 1 << 16  # read past the kept characters: room for stripped leading spaces
_TITLE_RE = re.compile(r'\btitle="([^"]*)"')


def detect_format(path: Path) -> str:
    """Guess a file's format: 'jsonl', 'parquet', 'wikiextractor' or 'txt'.

    .jsonl/.json -> jsonl; .parquet (or a file starting with the parquet magic bytes) ->
    parquet; a file whose first non-empty line starts with ``<doc `` -> wikiextractor; anything
    else -> txt. A trailing .gz/.bz2 is looked through.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    with open_binary(path) as fh:
        try:
            for number, raw in enumerate(fh, 1):
                if number == 1 and raw.startswith(b"PAR1"):
                    return "parquet"
                line = raw.lstrip(b"\xef\xbb\xbf").strip()
                if line:
                    return "wikiextractor" if line.startswith((b"<doc ", b"<doc>")) else "txt"
        except (OSError, EOFError) as exc:  # e.g. a corrupt .gz
            raise DataError(f"{path}: cannot read: {exc}") from exc
    return "txt"


# ------------------------------------------------------------------------------------ readers


def _line_bytes(max_chars: int | None) -> int | None:
    """Bytes of a line to read so that its first ``max_chars + 1`` characters are there (the
    cut looks one past the limit), at up to 4 bytes a character in UTF-8."""
    return None if max_chars is None else 4 * (max_chars + 1) + _LINE_SLACK_BYTES


def iter_txt(
    path: Path, source: SourceConfig, problems: Problems, max_chars: int | None = None
) -> Generator[Document, None, None]:
    """One document per non-empty line, in the source's language."""
    language = normalize_language(source.language)
    for _, line in iter_lines(path, problems, _line_bytes(max_chars)):
        text = line.strip()
        if text:
            yield Document(text, language)


def iter_wikiextractor(
    path: Path, source: SourceConfig, problems: Problems, max_chars: int | None = None
) -> Generator[Document, None, None]:
    """One document per ``<doc>`` article of a WikiExtractor file, without its title line.

    With ``max_chars``, an article's lines stop being kept once they join to more than that.
    """
    language = normalize_language(source.language)
    open_line = 0  # line of the current <doc>, 0 when outside any
    open_tag = ""
    expect_title = False
    lines: list[str] = []
    kept = 0  # characters of "\n".join(lines)
    for number, line in iter_lines(path, problems, _line_bytes(max_chars)):
        stripped = line.strip()
        if stripped.startswith(("<doc ", "<doc>")):
            if open_line:
                problems.bad(
                    f"{path}:{open_line}",
                    REASON_UNTERMINATED_DOC,
                    f"{_describe_doc(open_tag)} is not closed by </doc> before the next <doc> "
                    f"at line {number}",
                )
            open_line, open_tag, expect_title, lines, kept = number, stripped, True, [], 0
        elif stripped == "</doc>":
            if not open_line:
                problems.bad(
                    f"{path}:{number}", REASON_OUTSIDE_DOC, "</doc> without an opening <doc>"
                )
                continue
            if lines:
                yield Document("\n".join(lines), language)
            open_line, expect_title, lines = 0, False, []
        elif not open_line:
            if stripped:
                problems.bad(
                    f"{path}:{number}",
                    REASON_OUTSIDE_DOC,
                    f"text outside any <doc> ... </doc> block: {preview(stripped)}",
                )
        elif expect_title:
            expect_title = False  # WikiExtractor repeats the title on the line after <doc>
        elif stripped and (max_chars is None or kept <= max_chars):
            # Past max_chars the article is cut anyway: the lines after it need not be held.
            kept += len(stripped) + (1 if lines else 0)
            lines.append(stripped)
    if open_line:
        problems.bad(
            f"{path}:{open_line}",
            REASON_UNTERMINATED_DOC,
            f"{_describe_doc(open_tag)} is not closed by </doc> before the end of the file",
        )


def _describe_doc(tag: str) -> str:
    match = _TITLE_RE.search(tag)
    return f'<doc title="{match.group(1)}">' if match else "<doc>"


def iter_jsonl(
    path: Path, source: SourceConfig, problems: Problems, max_chars: int | None = None
) -> Generator[Document, None, None]:
    """One document per JSON object (line) with the text in ``source.text_field``.

    ``max_chars`` is not used: a JSON line can only be parsed whole.
    """
    matcher = _Matcher(source, problems)
    for number, record in iter_json_records(path, problems):
        where = f"{path}:{number}"
        document = matcher.document(record, where)
        if document is not None:
            yield document


def iter_parquet(
    path: Path, source: SourceConfig, problems: Problems, max_chars: int | None = None
) -> Generator[Document, None, None]:
    """One document per row, read batch by batch, only the columns the source needs.

    ``max_chars`` is not used: pyarrow reads a value whole.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable parquet file: {exc}") from exc
    with parquet:
        available = parquet.schema_arrow.names
        wanted = [source.text_field, *source.filter]
        if source.language_field is not None:
            wanted.append(source.language_field)
        columns = list(dict.fromkeys(wanted))
        missing = [c for c in columns if c not in available]
        if missing:
            raise DataError(
                f"{path}: no column {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(available)})"
            )
        matcher = _Matcher(source, problems)
        row = 0
        try:
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
                values = {name: batch.column(name).to_pylist() for name in columns}
                for i in range(batch.num_rows):
                    row += 1
                    record = {name: values[name][i] for name in columns}
                    document = matcher.document(record, f"{path}: row {row}")
                    if document is not None:
                        yield document
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: cannot read parquet data after row {row}: {exc}") from exc


def iter_hf(
    source: SourceConfig, root: Path | str | None, problems: Problems
) -> Generator[Document, None, None]:
    """One document per record of an ``hf:`` dataset, streamed; relative data_files under root."""
    import datasets

    name, _, config = hf_spec(source).partition(":")
    data_files = source.data_files
    if data_files is not None and root is not None:
        data_files = [_under_root(f, root) for f in data_files]
    label = source.path
    try:
        dataset = datasets.load_dataset(
            name, config or None, split=source.hf_split, streaming=True, data_files=data_files
        )
    except Exception as exc:
        raise DataError(f"{label}: cannot load dataset: {type(exc).__name__}: {exc}") from exc
    matcher = _Matcher(source, problems)
    records = iter(dataset)
    number = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as exc:
            raise DataError(
                f"{label}: record {number + 1}: cannot read: {type(exc).__name__}: {exc}"
            ) from exc
        number += 1
        document = matcher.document(record, f"{label}: record {number}")
        if document is not None:
            yield document


def _under_root(data_file: str, root: Path | str) -> str:
    expanded = os.path.expanduser(data_file)
    if "://" in expanded or os.path.isabs(expanded):
        return expanded
    return os.path.join(str(root), expanded)


def iter_synthetic(source: SourceConfig) -> Generator[Document, None, None]:
    """The built-in demo text of a ``synthetic:`` source."""
    from distilnlu.data import synthetic

    language = normalize_language(source.language)
    for item in synthetic.iter_texts(synthetic_kind(source), source.num_docs, source.seed):
        if isinstance(item, Document):
            yield item
            continue
        text = (item if isinstance(item, str) else item.text).strip()
        if text:
            yield Document(text, language)


# ---------------------------------------------------------------------------------- records


class _Matcher:
    """Turns a record (a mapping) into a Document: filter, text field, language field."""

    def __init__(self, source: SourceConfig, problems: Problems) -> None:
        self.text_field = source.text_field
        self.language_field = source.language_field
        self.language = normalize_language(source.language)
        self.filter = {
            key: frozenset([value] if isinstance(value, str) else value)
            for key, value in source.filter.items()
        }
        self.problems = problems

    def document(self, record: Mapping[str, Any], where: str) -> Document | None:
        for key, allowed in self.filter.items():
            if _filter_value(record.get(key)) not in allowed:
                self.problems.source_filtered += 1
                return None
        if self.text_field not in record or record[self.text_field] is None:
            self.problems.bad(where, REASON_MISSING_TEXT, f"missing text field {self.text_field!r}")
            return None
        text = record[self.text_field]
        if not isinstance(text, str):
            self.problems.bad(
                where,
                REASON_NON_STRING_TEXT,
                f"text field {self.text_field!r} is {json_type(text)}, not a string",
            )
            return None
        language = self.language
        if self.language_field is not None:
            value = record.get(self.language_field)
            language = normalize_language(value) if isinstance(value, str) else ""
            if not language:
                got = "missing" if value is None else f"{json_type(value)} {preview(str(value))}"
                self.problems.bad(
                    where,
                    REASON_LANGUAGE,
                    f"language field {self.language_field!r} must be a language or locale "
                    f"string, got {got}",
                )
                return None
        text = text.strip()
        return Document(text, language) if text else None


def _filter_value(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
