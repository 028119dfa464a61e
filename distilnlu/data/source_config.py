"""Where text comes from: :class:`SourceConfig` and :class:`Document` (DESIGN.md §3 "Sources").

A :class:`SourceConfig` names a file, a directory (every file under it, recursively, in sorted
order), a glob pattern, a Hugging Face dataset (``hf:<dataset>[:<config>]``) or the built-in demo
data (``synthetic:public|domain|labeled``); :func:`source_kind` tells which. The sources are read by
:mod:`distilnlu.data.sources`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FILE_FORMATS",
    "HF_PREFIX",
    "SYNTHETIC_KINDS",
    "SYNTHETIC_PREFIX",
    "Document",
    "SourceConfig",
    "SourceFormat",
    "hf_spec",
    "normalize_language",
    "source_kind",
    "synthetic_kind",
]

SourceFormat = Literal["auto", "txt", "wikiextractor", "jsonl", "parquet", "hf", "synthetic"]

FILE_FORMATS = ("txt", "wikiextractor", "jsonl", "parquet")
"""Formats read from local files."""
SYNTHETIC_KINDS = ("public", "domain", "labeled")
"""The kinds of built-in demo text (``synthetic:<kind>``)."""
HF_PREFIX = "hf:"
SYNTHETIC_PREFIX = "synthetic:"


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
        kind = source_kind(self)
        if kind == "hf":
            if not hf_spec(self).partition(":")[0]:
                raise ValueError(f"path {self.path!r}: expected 'hf:<dataset>[:<config>]'")
        elif kind == "synthetic":
            name = synthetic_kind(self)
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


def normalize_language(code: str) -> str:
    """Reduce a language or locale code to its lower-case language: 'en-US', 'en_us' -> 'en'."""
    return re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()


def source_kind(source: SourceConfig) -> str:
    """'hf', 'synthetic' or 'files': how a source is read, from its path prefix or format."""
    if source.path.startswith(HF_PREFIX) or source.format == "hf":
        return "hf"
    if source.path.startswith(SYNTHETIC_PREFIX) or source.format == "synthetic":
        return "synthetic"
    return "files"


def hf_spec(source: SourceConfig) -> str:
    """``<dataset>[:<config>]`` of an hf: source (its path without the prefix)."""
    path = source.path
    return path[len(HF_PREFIX) :] if path.startswith(HF_PREFIX) else path


def synthetic_kind(source: SourceConfig) -> str:
    """The kind of a synthetic: source ('public', 'domain' or 'labeled')."""
    path = source.path
    return path[len(SYNTHETIC_PREFIX) :] if path.startswith(SYNTHETIC_PREFIX) else path
