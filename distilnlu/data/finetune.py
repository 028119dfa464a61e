"""Labeled examples to model inputs: sub-token alignment, length-grouped batches (DESIGN.md §3).

Slot labels go on the first sub-token of each word; the other sub-tokens, the specials and the
padding get ``-100`` (ignored by the loss). Words cut off by ``max_length`` are decoded as ``O``
(an error when their gold tag is a slot, never a crash).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from distilnlu.data.examples import NLUExample, PairExample
from distilnlu.data.labeled import LabelVocab
from distilnlu.modeling.nlu_parse import first_subtokens  # where tags are read in decoding, too

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One tokenised example.

    ``word_starts[i]`` is the sub-token index of word ``i``'s first piece, or ``-1`` when the
    word was truncated away. Label ids are ``-1`` for labels the vocabulary does not know
    (possible in evaluation sets only).
    """

    input_ids: list[int]
    intent: int
    slot_labels: list[int]
    word_starts: list[int]


def encode_nlu(
    examples: Sequence[NLUExample],
    tokenizer: PreTrainedTokenizerBase,
    labels: LabelVocab,
    max_length: int,
) -> list[Encoded]:
    """Tokenise pre-split words; slot tag ids on each word's first sub-token."""
    if not examples:
        return []
    enc = tokenizer(
        [list(ex.words) for ex in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    out = []
    for i, ex in enumerate(examples):
        ids = enc["input_ids"][i]
        starts = first_subtokens(enc.word_ids(i), len(ex.words))
        slot_labels = [IGNORE] * len(ids)
        for word, position in enumerate(starts):
            tag = labels.tag_id(ex.tags[word]) if position >= 0 else -1
            if tag >= 0:
                slot_labels[position] = tag
        out.append(Encoded(ids, labels.intent_id(ex.intent), slot_labels, starts))
    return out


def encode_pairs(
    examples: Sequence[PairExample],
    tokenizer: PreTrainedTokenizerBase,
    labels: LabelVocab,
    max_length: int,
) -> list[Encoded]:
    """``<s> premise </s></s> hypothesis </s>``, the longer side truncated first."""
    if not examples:
        return []
    enc = tokenizer(
        [ex.premise for ex in examples],
        [ex.hypothesis for ex in examples],
        truncation="longest_first",
        max_length=max_length,
    )
    return [
        Encoded(ids, labels.intent_id(ex.label), [], [])
        for ids, ex in zip(enc["input_ids"], examples, strict=True)
    ]


def collate(items: Sequence[Encoded], pad_id: int, with_slots: bool) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask`` ``[B, T]``, ``intent_labels`` ``[B]`` and
    (``with_slots``) ``slot_labels`` ``[B, T]``."""
    width = max(len(x.input_ids) for x in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, x in enumerate(items):
        ids[row, : len(x.input_ids)] = torch.tensor(x.input_ids)
        mask[row, : len(x.input_ids)] = 1
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "intent_labels": torch.tensor([x.intent for x in items], dtype=torch.long),
    }
    if with_slots:
        slots = torch.full((len(items), width), IGNORE, dtype=torch.long)
        for row, x in enumerate(items):
            slots[row, : len(x.slot_labels)] = torch.tensor(x.slot_labels)
        batch["slot_labels"] = slots
    return batch


def epoch_batches(
    n: int, batch_size: int, rng: random.Random, lengths: Sequence[int]
) -> list[list[int]]:
    """Index batches of one epoch, grouped by length.

    Shuffle, then sort windows of 50 batches by length, so each batch pads little while the
    batch order (shuffled again) stays random.
    """
    order = list(range(n))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, n, window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def index_batches(
    lengths: Sequence[int], batch_size: int, seed: int, skip: int = 0
) -> Iterator[list[int]]:
    """Endless, deterministic stream of length-grouped index batches over shuffled epochs;
    ``skip`` batches dropped (resume)."""
    if not lengths:
        raise ValueError("no training examples")
    epoch, seen = 0, 0
    while True:
        batches = epoch_batches(
            len(lengths), batch_size, random.Random(seed * 7919 + epoch), lengths
        )
        if seen + len(batches) <= skip:  # skip whole epochs without collating them
            seen += len(batches)
            epoch += 1
            continue
        for indices in batches:
            seen += 1
            if seen > skip:
                yield indices
        epoch += 1


def training_batches(
    items: Sequence[Encoded],
    *,
    batch_size: int,
    seed: int,
    pad_id: int,
    with_slots: bool,
    skip: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless, deterministic stream of shuffled epochs; ``skip`` batches dropped (resume)."""
    lengths = [len(x.input_ids) for x in items]
    for indices in index_batches(lengths, batch_size, seed, skip):
        yield collate([items[i] for i in indices], pad_id, with_slots)


def eval_batches(
    items: Sequence[Encoded], batch_size: int, pad_id: int
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """``(indices, batch)`` over every item once, sorted by length (little padding)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, collate([items[i] for i in indices], pad_id, with_slots=False)
