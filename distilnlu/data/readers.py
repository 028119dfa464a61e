"""Which function reads each data format: the tables behind the text sources and labeled sets.

:data:`TEXT_READERS` maps a text file format (``txt``, ``wikiextractor``, ``jsonl``,
``parquet``) to its reader in :mod:`distilnlu.data.text_formats`; ``hf:`` and ``synthetic:``
sources are not files and are read by :mod:`distilnlu.data.sources` directly.

:data:`LABELED_READERS` maps a labeled format that is read file by file (``massive``, ``spans``,
``xnli_tsv``, ``xnli_jsonl``) to a reader taking the set's :class:`LabeledSetConfig`; ``bio``
(a folder of three files) and ``synthetic`` (generated) are read by
:func:`~distilnlu.data.labeled.load_labeled` directly.

Every reader reports bad records to the :class:`~distilnlu.data.records.Problems` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Protocol

from distilnlu.data.examples import NLUExample, PairExample
from distilnlu.data.intent_formats import read_massive, read_spans_jsonl
from distilnlu.data.labeled_config import LabeledSetConfig
from distilnlu.data.pair_formats import read_xnli_jsonl, read_xnli_tsv
from distilnlu.data.records import Problems
from distilnlu.data.source_config import Document, SourceConfig
from distilnlu.data.text_formats import iter_jsonl, iter_parquet, iter_txt, iter_wikiextractor

__all__ = ["LABELED_READERS", "TEXT_READERS", "LabeledReader", "TextReader"]


class TextReader(Protocol):
    """Reads the documents of one file; ``max_chars`` is the length they are cut to afterwards
    (a reader may stop holding text past it)."""

    def __call__(
        self, path: Path, source: SourceConfig, problems: Problems, max_chars: int | None = None
    ) -> Generator[Document, None, None]: ...


LabeledReader = Callable[[Path, LabeledSetConfig, Problems], list[NLUExample] | list[PairExample]]

TEXT_READERS: dict[str, TextReader] = {
    "txt": iter_txt,
    "wikiextractor": iter_wikiextractor,
    "jsonl": iter_jsonl,
    "parquet": iter_parquet,
}
"""Reader of each text file format (:data:`~distilnlu.data.source_config.FILE_FORMATS`)."""


def _massive(path: Path, cfg: LabeledSetConfig, problems: Problems) -> list[NLUExample]:
    return read_massive(path, partition=cfg.partition, locales=cfg.locales, problems=problems)


def _spans(path: Path, cfg: LabeledSetConfig, problems: Problems) -> list[NLUExample]:
    return read_spans_jsonl(path, problems=problems)


def _xnli_tsv(path: Path, cfg: LabeledSetConfig, problems: Problems) -> list[PairExample]:
    return read_xnli_tsv(path, language=cfg.language, problems=problems)


def _xnli_jsonl(path: Path, cfg: LabeledSetConfig, problems: Problems) -> list[PairExample]:
    return read_xnli_jsonl(path, language=cfg.language, problems=problems)


LABELED_READERS: dict[str, LabeledReader] = {
    "massive": _massive,
    "spans": _spans,
    "xnli_tsv": _xnli_tsv,
    "xnli_jsonl": _xnli_jsonl,
}
"""Reader of each labeled format read file by file (all but 'bio' and 'synthetic')."""
