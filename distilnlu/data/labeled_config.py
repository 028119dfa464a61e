"""A labeled set of a recipe (``data.labeled``): :class:`LabeledSetConfig` and the format names.

:func:`~distilnlu.data.labeled.load_labeled` reads a set with the reader that
:data:`~distilnlu.data.readers.LABELED_READERS` names for its format.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LABELED_FORMATS", "PAIR_FORMATS", "LabeledFormat", "LabeledSetConfig"]

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
"""Formats of sentence-pair data (task 'pair'); the others are intent + slot data."""


class LabeledSetConfig(BaseModel):
    """One labeled data set (a split) of a recipe."""

    model_config = ConfigDict(extra="forbid")

    format: LabeledFormat = Field(
        description=(
            "'massive' (MASSIVE jsonl with annot_utt), 'bio' (folder with seq.in, seq.out, "
            "label), 'spans' (jsonl with text, intent and character-span slots), 'synthetic' "
            "(built-in demo utterances), 'xnli_tsv' (premise, hypothesis, label) or 'xnli_jsonl'."
        )
    )
    path: str | None = Field(
        default=None,
        description=(
            "A file, a folder (bio; for other formats every file under it) or a glob pattern "
            "(several files, read in sorted order). Relative to data.root when it is set."
        ),
    )
    partition: str | None = Field(
        default=None, description="massive: keep only this partition (train, dev or test)."
    )
    locales: list[str] | None = Field(
        default=None, description="massive: keep only these locales, e.g. ['en-US', 'de-DE']."
    )
    language: str | None = Field(
        default=None,
        description=(
            "xnli: the language of every pair (default: from the file or folder name, or the "
            "record's language field). Other formats: the locale of every example."
        ),
    )
    num_examples: int | None = Field(
        default=None,
        gt=0,
        description=(
            "synthetic: how many examples to generate. Other formats: keep only the first N "
            "examples after skip (default: all)."
        ),
    )
    skip: int = Field(
        default=0,
        ge=0,
        description="Drop the first N examples (e.g. to carve a dev split off the same data).",
    )
    seed: int = Field(default=0, description="synthetic: random seed of the generator.")

    @model_validator(mode="after")
    def _check(self) -> LabeledSetConfig:
        if self.format == "synthetic":
            if self.num_examples is None:
                raise ValueError("format 'synthetic' needs num_examples")
            if self.path is not None:
                raise ValueError("format 'synthetic' takes no path")
        elif self.path is None or not self.path.strip():
            raise ValueError(f"format {self.format!r} needs a path")
        if self.format != "massive":
            for name in ("partition", "locales"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to format 'massive' only")
        if self.locales is not None and not self.locales:
            raise ValueError("locales is an empty list: no example could match")
        if self.language is not None and not self.language.strip():
            raise ValueError("language must not be empty")
        return self

    @property
    def task(self) -> Literal["intent_slot", "pair"]:
        """'pair' for sentence-pair classification (XNLI), else 'intent_slot'."""
        return "pair" if self.format in PAIR_FORMATS else "intent_slot"
