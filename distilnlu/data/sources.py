"""Streaming text sources (DESIGN.md §3 "Sources" and "Bad input").

A :class:`SourceConfig` names where text comes from: a file, a directory (every file under it,
recursively, in sorted order), a glob pattern, a Hugging Face dataset (``hf:<dataset>[:<config>]``)
or the built-in demo data (``synthetic:public|domain|labeled``). :func:`iter_documents` streams
:class:`Document` objects from one source, :func:`iter_texts` chains several.

Nothing is read into memory as a whole: text files are read line by line (in binary, each line
decoded as UTF-8 on its own so that a bad line can be reported), parquet files batch by batch and
``hf:`` datasets with ``streaming=True``.

File formats (``format: auto`` picks one per file with :func:`detect_format`):

- ``txt``: one document per non-empty line.
- ``wikiextractor``: ``<doc id=.. url=.. title=..>``, then the title line (dropped), then the
  article's text lines until ``</doc>``; one document per article, its non-empty lines joined by
  ``"\\n"``.
- ``jsonl``: one JSON object per line, the text in ``text_field``.
- ``parquet``: the text in the column ``text_field``.

Files ending in ``.gz`` or ``.bz2`` are decompressed on the fly (WikiExtractor ``--compress``
writes ``.bz2`` shards). Document text is stripped of surrounding whitespace; records whose text is
empty are dropped silently.

Bad input raises :class:`~distilnlu.errors.DataError` whose message starts with
``<file>:<line>:`` (``<file>: row <n>:`` for parquet, ``<dataset>: record <n>:`` for ``hf:``) and
says what is wrong. With ``on_error="skip"`` the bad record is skipped instead and counted in
:class:`SourceStats`; one warning summarises the skipped records when the stream ends. A source
that yields no documents at all is an error either way.
"""

from __future__ import annotations

import bz2
import collections
import glob
import gzip
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from distilnlu.errors import DataError

__all__ = [
    "FILE_FORMATS",
    "SYNTHETIC_KINDS",
    "Document",
    "SourceConfig",
    "SourceStats",
    "detect_format",
    "iter_documents",
    "iter_texts",
    "normalize_language",
    "resolve_paths",
]

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
SourceFormat = Literal["auto", "txt", "wikiextractor", "jsonl", "parquet", "hf", "synthetic"]

FILE_FORMATS = ("txt", "wikiextractor", "jsonl", "parquet")
"""Formats read from local files."""
SYNTHETIC_KINDS = ("public", "domain", "labeled")
"""The kinds of built-in demo text (``synthetic:<kind>``)."""
HF_PREFIX = "hf:"
SYNTHETIC_PREFIX = "synthetic:"

# Reasons counted in SourceStats.reasons when on_error="skip".
REASON_UTF8 = "invalid UTF-8"
REASON_JSON = "invalid JSON"
REASON_NOT_OBJECT = "JSON not an object"
REASON_MISSING_TEXT = "missing text field"
REASON_NON_STRING_TEXT = "non-string text field"
REASON_LANGUAGE = "bad language field"
REASON_UNTERMINATED_DOC = "unterminated <doc>"
REASON_OUTSIDE_DOC = "text outside <doc>"

_SKIP_HINT = " (set data.on_error: skip to skip bad records)"
_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open}
_PARQUET_BATCH_ROWS = 1024
_TITLE_RE = re.compile(r'\btitle="([^"]*)"')


class SourceConfig(BaseModel):
    """One text source: where the text is, how to read it, which records to keep."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description=(
            "A file, a directory (all files under it, recursively, sorted; hidden files skipped), "
            "a glob pattern (e.g. 'wiki/*/wiki_*'), 'hf:<dataset>[:<config>]' for a Hugging Face "
            "dataset, or 'synthetic:public|domain|labeled' for the built-in demo text. Relative "
            "paths are relative to data.root when it is set, else to the working directory."
        )
    )
    format: SourceFormat = Field(
        default="auto",
        description=(
            "How to read the files. 'auto' decides per file: .jsonl/.json -> jsonl, .parquet -> "
            "parquet, a file whose first non-empty line starts with '<doc ' -> wikiextractor, "
            "anything else -> txt (one document per line). 'hf' and 'synthetic' follow from the "
            "path's prefix."
        ),
    )
    text_field: str = Field(
        default="text",
        description="The field (jsonl), column (parquet) or feature (hf) holding the text.",
    )
    language: str = Field(
        default="en",
        description=(
            "Language of every document unless language_field is set. Locales are reduced to "
            "their language ('en-US' -> 'en')."
        ),
    )
    language_field: str | None = Field(
        default=None,
        description=(
            "Per-record field holding the language or locale ('en-US' -> 'en'); jsonl, parquet "
            "and hf sources only. A record without it is a bad record."
        ),
    )
    filter: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description=(
            "Keep only records whose field equals the value, or one of the values, e.g. "
            "{'partition': 'train'}. Other records are dropped silently (they are not errors). "
            "jsonl, parquet and hf sources only."
        ),
    )
    max_docs: int | None = Field(
        default=None,
        ge=1,
        description="Stop after this many documents from this source (default: all of them).",
    )
    hf_split: str = Field(default="train", description="Split of an hf: dataset to stream.")
    data_files: list[str] | None = Field(
        default=None,
        description=(
            "data_files passed to datasets.load_dataset for hf: sources, e.g. local files for "
            "'hf:json'. Relative paths are relative to data.root when it is set."
        ),
    )
    num_docs: int = Field(
        default=10000, ge=1, description="Number of documents to generate (synthetic sources only)."
    )
    seed: int = Field(
        default=0, description="Random seed of the generator (synthetic sources only)."
    )

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if not self.path.strip():
            raise ValueError("path must not be empty")
        if not self.language.strip():
            raise ValueError("language must not be empty")
        for key, value in self.filter.items():
            if isinstance(value, list) and not value:
                raise ValueError(f"filter[{key!r}] is an empty list: no record could match")
        kind = _source_kind(self)
        if kind == "hf":
            if not _hf_spec(self).partition(":")[0]:
                raise ValueError(f"path {self.path!r}: expected 'hf:<dataset>[:<config>]'")
        elif kind == "synthetic":
            name = _synthetic_kind(self)
            if name not in SYNTHETIC_KINDS:
                raise ValueError(
                    f"path {self.path!r}: unknown synthetic kind {name!r}; "
                    f"expected one of {', '.join('synthetic:' + k for k in SYNTHETIC_KINDS)}"
                )
            if self.language_field or self.filter:
                raise ValueError("language_field and filter do not apply to synthetic sources")
        if self.format in FILE_FORMATS and kind != "files":
            raise ValueError(f"format {self.format!r} does not apply to path {self.path!r}")
        return self


@dataclass(frozen=True, slots=True)
class Document:
    """One document: its text and its language (a lower-case code such as 'en')."""

    text: str
    language: str


@dataclass
class SourceStats:
    """Counts gathered while streaming; pass one in to accumulate over several calls."""

    documents: int = 0
    """Documents yielded."""
    skipped: int = 0
    """Bad records skipped (on_error='skip')."""
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    """Skipped records by reason, e.g. {'invalid JSON': 2}."""


def normalize_language(code: str) -> str:
    """Reduce a language or locale code to its lower-case language: 'en-US', 'en_us' -> 'en'."""
    return re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()


# --------------------------------------------------------------------------------------- paths


def resolve_paths(path: str, root: Path | str | None = None) -> list[Path]:
    """The files a source path stands for, in sorted order.

    ``path`` is a file, a directory (all files under it, recursively, hidden ones skipped) or a
    glob pattern (``**`` recurses; directories it matches are expanded). A relative path is taken
    relative to ``root`` when given, else to the working directory. Raises DataError naming the
    path when nothing matches.
    """
    if path.startswith((HF_PREFIX, SYNTHETIC_PREFIX)):
        raise DataError(f"source {path!r} is not a file path")
    expanded = os.path.expanduser(path)
    base = Path(root).expanduser() if root is not None else None
    where = (
        f" (relative to data.root {str(base)!r})" if base and not os.path.isabs(expanded) else ""
    )
    if glob.has_magic(expanded):
        pattern = expanded
        if base is not None and not os.path.isabs(expanded):
            pattern = os.path.join(glob.escape(str(base)), expanded)
        files: set[Path] = set()
        for match in glob.glob(pattern, recursive=True):
            candidate = Path(match)
            if candidate.is_dir():
                files.update(_walk(candidate))
            elif candidate.is_file():
                files.add(candidate)
        if not files:
            raise DataError(f"no files match the pattern {path!r}{where}")
        return sorted(files)
    target = base / expanded if base is not None else Path(expanded)
    if target.is_file():
        return [target]
    if target.is_dir():
        found = _walk(target)
        if not found:
            raise DataError(f"directory {path!r}{where} contains no files")
        return found
    raise DataError(f"no such file or directory: {path!r}{where}")


def _walk(directory: Path) -> list[Path]:
    files = []
    for candidate in directory.rglob("*"):
        relative = candidate.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if candidate.is_file():
            files.append(candidate)
    return sorted(files)


def _open_binary(path: Path) -> IO[bytes]:
    opener = _COMPRESSED.get(path.suffix.lower())
    try:
        return opener(path, "rb") if opener else open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot open: {exc.strerror or exc}") from exc


def detect_format(path: Path) -> str:
    """Guess a file's format: 'jsonl', 'parquet', 'wikiextractor' or 'txt'.

    .jsonl/.json -> jsonl; .parquet (or a file starting with the parquet magic bytes) ->
    parquet; a file whose first non-empty line starts with ``<doc `` -> wikiextractor; anything
    else -> txt. A trailing .gz/.bz2 is looked through.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    with _open_binary(path) as fh:
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


# ------------------------------------------------------------------------------- bad records


class _Problems:
    """Raises or counts bad records; remembers what the end-of-stream summary needs."""

    def __init__(self, on_error: str, stats: SourceStats | None) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.stats = stats if stats is not None else SourceStats()
        self.skipped = 0
        self.reasons: collections.Counter[str] = collections.Counter()
        self.first: str | None = None
        # Per source, for the empty-corpus message.
        self.source_skipped = 0
        self.source_filtered = 0

    def bad(self, where: str, reason: str, detail: str) -> None:
        message = f"{where}: {detail}"
        if self.on_error == "raise":
            raise DataError(message + _SKIP_HINT)
        self.stats.skipped += 1
        self.stats.reasons[reason] += 1
        self.skipped += 1
        self.source_skipped += 1
        self.reasons[reason] += 1
        if self.first is None:
            self.first = message

    def summarise(self, what: str) -> None:
        if not self.skipped:
            return
        counts = ", ".join(f"{reason}: {n}" for reason, n in self.reasons.most_common())
        logger.warning(
            "skipped %d bad record(s) in %s (%s); first: %s", self.skipped, what, counts, self.first
        )


# ------------------------------------------------------------------------------ entry points


def iter_documents(
    source: SourceConfig,
    root: Path | str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> Iterator[Document]:
    """Stream the documents of one source.

    Paths are resolved (and ``on_error`` checked) when this is called; the files are read as the
    iterator is consumed. Bad records raise DataError naming file, line and problem, or with
    ``on_error="skip"`` are skipped, counted in ``stats`` and summarised in one warning at the
    end. Raises DataError "source '<path>' yielded no documents" when the source turns out empty.
    """
    problems = _Problems(on_error, stats)
    plan = _plan(source, root)
    return _run([(source, plan)], root, problems, f"source {source.path!r}")


def iter_texts(
    sources: Iterable[SourceConfig],
    root: Path | str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
) -> Iterator[Document]:
    """Stream the documents of several sources one after the other (see :func:`iter_documents`).

    Every source's paths are resolved up front, so a missing file fails before any text is read.
    Each source must yield at least one document; one warning at the end summarises all skips.
    """
    sources = list(sources)
    if not sources:
        raise DataError("no sources given")
    problems = _Problems(on_error, stats)
    plans = [(source, _plan(source, root)) for source in sources]
    what = f"source {sources[0].path!r}" if len(sources) == 1 else f"{len(sources)} sources"
    return _run(plans, root, problems, what)


def _run(
    plans: list[tuple[SourceConfig, list[Path] | None]],
    root: Path | str | None,
    problems: _Problems,
    what: str,
) -> Iterator[Document]:
    try:
        for source, files in plans:
            yield from _iter_source(source, files, root, problems)
    finally:
        problems.summarise(what)


def _plan(source: SourceConfig, root: Path | str | None) -> list[Path] | None:
    """Resolve a file source's paths now (None for hf:/synthetic: sources)."""
    return resolve_paths(source.path, root) if _source_kind(source) == "files" else None


def _iter_source(
    source: SourceConfig, files: list[Path] | None, root: Path | str | None, problems: _Problems
) -> Iterator[Document]:
    problems.source_skipped = problems.source_filtered = 0
    kind = _source_kind(source)
    if kind == "hf":
        inner = _iter_hf(source, root, problems)
    elif kind == "synthetic":
        inner = _iter_synthetic(source)
    else:
        assert files is not None
        inner = _iter_files(source, files, problems)
    count = 0
    try:
        for document in inner:
            count += 1
            problems.stats.documents += 1
            yield document
            if source.max_docs is not None and count >= source.max_docs:
                return
    finally:
        inner.close()
    if count == 0:
        raise DataError(
            f"source {source.path!r} yielded no documents{_empty_hint(source, problems)}"
        )


def _empty_hint(source: SourceConfig, problems: _Problems) -> str:
    notes = []
    if problems.source_filtered:
        notes.append(f"{problems.source_filtered} record(s) did not match filter {source.filter}")
    if problems.source_skipped:
        notes.append(f"{problems.source_skipped} bad record(s) skipped")
    return f" ({'; '.join(notes)})" if notes else ""


def _source_kind(source: SourceConfig) -> str:
    if source.path.startswith(HF_PREFIX) or source.format == "hf":
        return "hf"
    if source.path.startswith(SYNTHETIC_PREFIX) or source.format == "synthetic":
        return "synthetic"
    return "files"


def _hf_spec(source: SourceConfig) -> str:
    path = source.path
    return path[len(HF_PREFIX) :] if path.startswith(HF_PREFIX) else path


def _synthetic_kind(source: SourceConfig) -> str:
    path = source.path
    return path[len(SYNTHETIC_PREFIX) :] if path.startswith(SYNTHETIC_PREFIX) else path


# ------------------------------------------------------------------------------- file formats


def _iter_files(source: SourceConfig, files: list[Path], problems: _Problems) -> Iterator[Document]:
    language = normalize_language(source.language)
    for path in files:
        fmt = detect_format(path) if source.format == "auto" else source.format
        if fmt in ("txt", "wikiextractor") and (source.language_field or source.filter):
            raise DataError(
                f"{path}: language_field and filter need records with fields (jsonl, parquet, "
                f"hf); this file is read as {fmt}"
            )
        if fmt == "txt":
            yield from _iter_txt(path, language, problems)
        elif fmt == "wikiextractor":
            yield from _iter_wikiextractor(path, language, problems)
        elif fmt == "jsonl":
            yield from _iter_jsonl(path, source, problems)
        elif fmt == "parquet":
            yield from _iter_parquet(path, source, problems)
        else:  # pragma: no cover - excluded by the config validator
            raise DataError(f"{path}: format {fmt!r} cannot be read from a file")


def _iter_lines(path: Path, problems: _Problems) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its line break); bad UTF-8 lines reported."""
    with _open_binary(path) as fh:
        number = 0
        try:
            for number, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad = raw[exc.start : exc.start + 1].hex()
                    problems.bad(
                        f"{path}:{number}",
                        REASON_UTF8,
                        f"invalid UTF-8 (byte 0x{bad} at byte {exc.start + 1} of the line)",
                    )
                    continue
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield number, line.rstrip("\r\n")
        except (OSError, EOFError) as exc:  # a truncated or corrupt compressed file
            raise DataError(f"{path}:{number + 1}: cannot read: {exc}") from exc


def _iter_txt(path: Path, language: str, problems: _Problems) -> Iterator[Document]:
    for _, line in _iter_lines(path, problems):
        text = line.strip()
        if text:
            yield Document(text, language)


def _iter_wikiextractor(path: Path, language: str, problems: _Problems) -> Iterator[Document]:
    open_line = 0  # line of the current <doc>, 0 when outside any
    open_tag = ""
    expect_title = False
    lines: list[str] = []
    for number, line in _iter_lines(path, problems):
        stripped = line.strip()
        if stripped.startswith(("<doc ", "<doc>")):
            if open_line:
                problems.bad(
                    f"{path}:{open_line}",
                    REASON_UNTERMINATED_DOC,
                    f"{_describe_doc(open_tag)} is not closed by </doc> before the next <doc> "
                    f"at line {number}",
                )
            open_line, open_tag, expect_title, lines = number, stripped, True, []
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
                    f"text outside any <doc> ... </doc> block: {_preview(stripped)}",
                )
        elif expect_title:
            expect_title = False  # WikiExtractor repeats the title on the line after <doc>
        elif stripped:
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


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _iter_json_records(path: Path, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-empty line; bad JSON and non-objects go to ``problems``."""
    for number, line in _iter_lines(path, problems):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.bad(where, REASON_JSON, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            problems.bad(
                where,
                REASON_NOT_OBJECT,
                f"expected a JSON object per line, got {_json_type(record)}",
            )
            continue
        yield number, record


def _iter_jsonl(path: Path, source: SourceConfig, problems: _Problems) -> Iterator[Document]:
    matcher = _Matcher(source, problems)
    for number, record in _iter_json_records(path, problems):
        where = f"{path}:{number}"
        document = matcher.document(record, where)
        if document is not None:
            yield document


def _iter_parquet(path: Path, source: SourceConfig, problems: _Problems) -> Iterator[Document]:
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


def _iter_hf(
    source: SourceConfig, root: Path | str | None, problems: _Problems
) -> Iterator[Document]:
    import datasets

    name, _, config = _hf_spec(source).partition(":")
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


def _iter_synthetic(source: SourceConfig) -> Iterator[Document]:
    from distilnlu.data import synthetic

    language = normalize_language(source.language)
    for item in synthetic.iter_texts(_synthetic_kind(source), source.num_docs, source.seed):
        if isinstance(item, Document):
            yield item
            continue
        text = (item if isinstance(item, str) else item.text).strip()
        if text:
            yield Document(text, language)


# ---------------------------------------------------------------------------------- records


class _Matcher:
    """Turns a record (a mapping) into a Document: filter, text field, language field."""

    def __init__(self, source: SourceConfig, problems: _Problems) -> None:
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
                f"text field {self.text_field!r} is {_json_type(text)}, not a string",
            )
            return None
        language = self.language
        if self.language_field is not None:
            value = record.get(self.language_field)
            language = normalize_language(value) if isinstance(value, str) else ""
            if not language:
                got = "missing" if value is None else f"{_json_type(value)} {_preview(str(value))}"
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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
