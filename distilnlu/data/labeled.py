"""Labeled sets of a recipe and the label vocabulary a model is trained with.

A recipe names each labeled split with a
:class:`~distilnlu.data.labeled_config.LabeledSetConfig` (``data.labeled``); :func:`load_labeled`
reads it with the format readers of :mod:`distilnlu.data.readers`.
:class:`LabelVocab` fixes the intent and tag ids a model is trained with; it is saved next to the
model so that evaluation maps labels exactly as training did.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilnlu.data.examples import DEFAULT_LOCALE, PAIR_LABELS, NLUExample, PairExample
from distilnlu.data.intent_formats import BIO_FILES, from_span_records, read_bio
from distilnlu.data.labeled_config import LabeledSetConfig
from distilnlu.data.paths import resolve_paths
from distilnlu.data.readers import LABELED_READERS
from distilnlu.data.records import OnError, Problems, SourceStats, json_type
from distilnlu.errors import DataError

__all__ = ["LABELS_FILE", "LabelVocab", "load_labeled", "unseen_labels"]

LABELS_FILE = "labels.json"
"""File name of a saved :class:`LabelVocab` inside a model folder."""


# ------------------------------------------------------------------------------ labeled sets


def load_labeled(
    cfg: LabeledSetConfig,
    root: Path | str | None = None,
    on_error: OnError = "raise",
    stats: SourceStats | None = None,
    hint: str | None = None,
) -> list[NLUExample] | list[PairExample]:
    """Read one labeled set: resolve its path against ``root``, read it, apply skip/num_examples.

    A glob or folder path (other than for 'bio') reads every file it stands for, in sorted order.
    Raises DataError naming the set when it yields no examples. ``hint`` replaces what an error
    on a bad record suggests (the recipe's ``data.on_error``; a command names its own flags).
    """
    problems = Problems(on_error, stats) if hint is None else Problems(on_error, stats, hint)
    if cfg.format == "synthetic":
        from distilnlu.data.synthetic import labeled_examples

        assert cfg.num_examples is not None  # the config validator demands it
        # Generate skip + N and drop the first `skip`, so that skip carves disjoint sets off the
        # same seed exactly as it does for files.
        records = labeled_examples(cfg.skip + cfg.num_examples, cfg.seed)
        examples: list[Any] = from_span_records(records, "synthetic:labeled")
    else:
        assert cfg.path is not None
        examples = _read_set(cfg, root, problems)
    problems.summarise(f"labeled set {cfg.path or cfg.format!r}")
    read = len(examples)
    examples = examples[cfg.skip :]
    if cfg.num_examples is not None:
        examples = examples[: cfg.num_examples]
    if cfg.language is not None and cfg.task == "intent_slot":
        examples = [dataclasses.replace(ex, locale=cfg.language) for ex in examples]
    if not examples:
        raise DataError(
            f"labeled set {cfg.path or cfg.format!r} (format {cfg.format}) yielded no examples"
            f"{_empty_hint(cfg, read, problems)}"
        )
    return examples


def _read_set(cfg: LabeledSetConfig, root: Path | str | None, problems: Problems) -> list[Any]:
    assert cfg.path is not None
    if cfg.format == "bio":
        folder = _resolve_folder(cfg.path, root)
        return read_bio(folder, locale=cfg.language or DEFAULT_LOCALE, problems=problems)
    examples: list[Any] = []
    for path in resolve_paths(cfg.path, root):
        reader = LABELED_READERS.get(cfg.format)
        if reader is None:  # pragma: no cover - excluded by the Literal type
            raise DataError(f"format {cfg.format!r} cannot be read from files")
        examples += reader(path, cfg, problems)
    return examples


def _resolve_folder(path: str, root: Path | str | None) -> Path:
    expanded = Path(os.path.expanduser(path))
    folder = Path(root).expanduser() / expanded if root is not None else expanded
    if not folder.is_dir():
        where = f" (relative to data.root {str(root)!r})" if root is not None else ""
        raise DataError(
            f"no such folder: {path!r}{where} (a bio data set is a folder with "
            f"{', '.join(BIO_FILES)})"
        )
    return folder


def _empty_hint(cfg: LabeledSetConfig, read: int, problems: Problems) -> str:
    notes = []
    filters = {"partition": cfg.partition, "locales": cfg.locales}
    active = ", ".join(f"{k}={v!r}" for k, v in filters.items() if v is not None)
    if active and not read:
        notes.append(f"no record matched {active}")
    if read and cfg.skip >= read:
        notes.append(f"skip={cfg.skip} dropped all {read} examples")
    if problems.skipped:
        notes.append(f"{problems.skipped} bad record(s) skipped")
    return f" ({'; '.join(notes)})" if notes else ""


# --------------------------------------------------------------------------------- label vocab


@dataclass
class LabelVocab:
    """The intent and slot-tag inventories a model is trained with; ids are list positions."""

    intents: list[str]
    """Intent names, sorted (pair tasks: the labels, in PAIR_LABELS order when they are those)."""
    slot_tags: list[str]
    """'O', then 'B-<type>', 'I-<type>' for each slot type in sorted order; [] for pair tasks."""
    _intent_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _tag_ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, values in (("intents", self.intents), ("slot_tags", self.slot_tags)):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"{name} has duplicates: {', '.join(duplicates)}")
        self._intent_ids = {name: i for i, name in enumerate(self.intents)}
        self._tag_ids = {tag: i for i, tag in enumerate(self.slot_tags)}

    @classmethod
    def build(cls, examples: Sequence[NLUExample]) -> LabelVocab:
        """The labels of intent/slot training examples."""
        if not examples:
            raise DataError("cannot build a label vocabulary from no examples")
        intents = sorted({ex.intent for ex in examples})
        types = sorted({tag[2:] for ex in examples for tag in ex.tags if tag != "O"})
        tags = ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]
        return cls(intents, tags)

    @classmethod
    def build_pairs(cls, examples: Sequence[PairExample]) -> LabelVocab:
        """The labels of pair examples; all of PAIR_LABELS when the labels are among them.

        Keeping all three in the fixed order even if a (small) training set lacks one keeps
        label ids equal to the HF convention and equal across runs.
        """
        if not examples:
            raise DataError("cannot build a label vocabulary from no examples")
        labels = {ex.label for ex in examples}
        intents = list(PAIR_LABELS) if labels <= set(PAIR_LABELS) else sorted(labels)
        return cls(intents, [])

    def intent_id(self, name: str) -> int:
        """Id of an intent (or pair label); -1 when unknown, so evaluation counts it wrong."""
        return self._intent_ids.get(name, -1)

    def tag_id(self, tag: str) -> int:
        """Id of a slot tag; -1 when unknown."""
        return self._tag_ids.get(tag, -1)

    def to_json(self) -> dict[str, list[str]]:
        return {"intents": list(self.intents), "slot_tags": list(self.slot_tags)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "label vocabulary") -> LabelVocab:
        """Inverse of :meth:`to_json`; DataError ``"<where>: ..."`` when malformed."""
        if not isinstance(d, Mapping):
            raise DataError(f"{where}: expected an object, got {json_type(d)}")
        lists = []
        for key in ("intents", "slot_tags"):
            value = d.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"{where}: {key!r} must be a list of strings")
            lists.append(value)
        try:
            return cls(*lists)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from exc

    def save(self, folder: Path | str) -> None:
        """Write ``folder/labels.json`` (creating the folder)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        (folder / LABELS_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, folder: Path | str) -> LabelVocab:
        """Read ``folder/labels.json``; DataError when it is missing or malformed."""
        path = Path(folder) / LABELS_FILE
        if not path.is_file():
            raise DataError(
                f"{path}: no label vocabulary ({LABELS_FILE}) in {folder}; is this a model "
                "fine-tuned on labeled data?"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read the label vocabulary: {exc}") from exc
        return cls.from_json(data, str(path))


def unseen_labels(examples: Sequence[Any], labels: LabelVocab) -> str | None:
    """One line on the intent + slot examples whose intent or slot type the model was never
    trained on (None when there are none, and for sentence pairs).

    Such an example can only be scored wrong, so the line states the ceiling it puts on intent
    accuracy and exact match: a number that explains a gap no training can close.
    """
    nlu = [ex for ex in examples if isinstance(ex, NLUExample)]
    if not nlu:
        return None
    intents, types = set(labels.intents), {t[2:] for t in labels.slot_tags if t != "O"}
    new_intents: Counter[str] = Counter()
    new_types: Counter[str] = Counter()
    either = 0
    for ex in nlu:
        missing = {t[2:] for t in ex.tags if t != "O" and t[2:] not in types}
        new_types.update(missing)
        if ex.intent not in intents:
            new_intents[ex.intent] += 1
        either += bool(missing) or ex.intent not in intents
    if not either:
        return None
    n, n_intent = len(nlu), sum(new_intents.values())
    parts = []
    if new_intents:
        parts.append(f"{n_intent} with an intent not in training ({_top(new_intents)})")
    if new_types:
        parts.append(f"{len(new_types)} slot type(s) not in training ({_top(new_types)})")
    return (
        f"{either:,} of {n:,} utterances hold labels the model never saw: {'; '.join(parts)}."
        f" They count as errors: intent accuracy can reach at most {1 - n_intent / n:.1%}, exact"
        f" match {1 - either / n:.1%}"
    )


def _top(counts: Counter[str], shown: int = 3) -> str:
    names = [name for name, _ in counts.most_common(shown)]
    return ", ".join(names) + (", ..." if len(counts) > shown else "")
