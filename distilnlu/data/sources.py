"""Streaming text sources (DESIGN.md §3 "Sources" and "Bad input").

A :class:`~distilnlu.data.source_config.SourceConfig` names where text comes from: a file, a
directory (every file under it, recursively, in sorted order), a glob pattern, a Hugging Face
dataset (``hf:<dataset>[:<config>]``) or the built-in demo data
(``synthetic:public|domain|labeled``).
:func:`iter_documents` streams :class:`~distilnlu.data.source_config.Document` objects from one
source, :func:`iter_texts` chains several.

Nothing is read into memory as a whole: text files are read line by line (in binary, each line
decoded as UTF-8 on its own so that a bad line can be reported), parquet files batch by batch and
``hf:`` datasets with ``streaming=True``. The formats and how ``format: auto`` picks one per file
are described in :mod:`distilnlu.data.text_formats`.

Bad input raises :class:`~distilnlu.errors.DataError` whose message starts with
``<file>:<line>:`` (``<file>: row <n>:`` for parquet, ``<dataset>: record <n>:`` for ``hf:``) and
says what is wrong. With ``on_error="skip"`` the bad record is skipped instead and counted in
:class:`~distilnlu.data.records.SourceStats`; one warning summarises the skipped records when the
stream ends. A source that yields no documents at all is an error either way.

``max_chars`` (``data.max_document_chars``) lets the line-based readers skip what the cut of
:mod:`distilnlu.data.limits` would drop; the cut itself is the caller's
(:mod:`distilnlu.data.corpus` applies it to every document).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

from distilnlu.data.paths import resolve_paths
from distilnlu.data.readers import TEXT_READERS
from distilnlu.data.records import OnError, Problems, SourceStats
from distilnlu.data.source_config import Document, SourceConfig, source_kind
from distilnlu.data.text_formats import detect_format, iter_hf, iter_synthetic
from distilnlu.errors import DataError

__all__ = ["iter_documents", "iter_texts"]


def iter_documents(
    source: SourceConfig,
    root: Path | str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    max_chars: int | None = None,
) -> Iterator[Document]:
    """Stream the documents of one source.

    Paths are resolved (and ``on_error`` checked) when this is called; the files are read as the
    iterator is consumed. Bad records raise DataError naming file, line and problem, or with
    ``on_error="skip"`` are skipped, counted in ``stats`` and summarised in one warning at the
    end. Raises DataError "source '<path>' yielded no documents" when the source turns out empty.
    With ``max_chars``, text files are not read further into a line or article than a cut to
    that length needs (the documents may still be longer: cutting them is the caller's).
    """
    problems = Problems(on_error, stats)
    plan = _plan(source, root)
    return _run([(source, plan)], root, problems, f"source {source.path!r}", max_chars)


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
    problems = Problems(on_error, stats)
    plans = [(source, _plan(source, root)) for source in sources]
    what = f"source {sources[0].path!r}" if len(sources) == 1 else f"{len(sources)} sources"
    return _run(plans, root, problems, what)


def _run(
    plans: list[tuple[SourceConfig, list[Path] | None]],
    root: Path | str | None,
    problems: Problems,
    what: str,
    max_chars: int | None = None,
) -> Iterator[Document]:
    try:
        for source, files in plans:
            yield from _iter_source(source, files, root, problems, max_chars)
    finally:
        problems.summarise(what)


def _plan(source: SourceConfig, root: Path | str | None) -> list[Path] | None:
    """Resolve a file source's paths now (None for hf:/synthetic: sources)."""
    return resolve_paths(source.path, root) if source_kind(source) == "files" else None


def _iter_source(
    source: SourceConfig,
    files: list[Path] | None,
    root: Path | str | None,
    problems: Problems,
    max_chars: int | None,
) -> Iterator[Document]:
    problems.source_skipped = problems.source_filtered = 0
    kind = source_kind(source)
    inner: Generator[Document, None, None]
    if kind == "hf":
        inner = iter_hf(source, root, problems)
    elif kind == "synthetic":
        inner = iter_synthetic(source)
    else:
        assert files is not None
        inner = _iter_files(source, files, problems, max_chars)
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


def _empty_hint(source: SourceConfig, problems: Problems) -> str:
    notes = []
    if problems.source_filtered:
        notes.append(f"{problems.source_filtered} record(s) did not match filter {source.filter}")
    if problems.source_skipped:
        notes.append(f"{problems.source_skipped} bad record(s) skipped")
    return f" ({'; '.join(notes)})" if notes else ""


def _iter_files(
    source: SourceConfig, files: list[Path], problems: Problems, max_chars: int | None
) -> Generator[Document, None, None]:
    for path in files:
        fmt = detect_format(path) if source.format == "auto" else source.format
        if fmt in ("txt", "wikiextractor") and (source.language_field or source.filter):
            raise DataError(
                f"{path}: language_field and filter need records with fields (jsonl, parquet, "
                f"hf); this file is read as {fmt}"
            )
        reader = TEXT_READERS.get(fmt)
        if reader is None:  # pragma: no cover - excluded by the config validator
            raise DataError(f"{path}: format {fmt!r} cannot be read from a file")
        yield from reader(path, source, problems, max_chars)
