"""Labeled examples: what every labeled-data format becomes (DESIGN.md §3 "Labeled data").

Every intent/slot format becomes the same :class:`NLUExample` (whitespace words, IOB2 tags, an
intent, a locale), so that fine-tuning, distillation and evaluation never see the file format;
sentence-pair data (XNLI) becomes :class:`PairExample`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_LOCALE", "PAIR_LABELS", "NLUExample", "PairExample"]

PAIR_LABELS = ("entailment", "neutral", "contradiction")
"""XNLI labels in the Hugging Face ``xnli`` order: integer labels 0, 1, 2 map to these."""

DEFAULT_LOCALE = "en-US"


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
