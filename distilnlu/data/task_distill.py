"""Inputs of task-aware distillation: unlabeled utterances, teacher targets, batches.

Labeled and unlabeled utterances share one pool of :class:`~distilnlu.data.finetune.Encoded`
items; an unlabeled one has intent ``-100`` and no slot labels, so only the soft terms see it.
The teacher's scores are kept per item at the first sub-token of each word, the positions the
hard slot labels sit on, and put back at those positions when a batch is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from distilnlu.data.finetune import IGNORE, Encoded, collate, first_subtokens

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's scores for one item: ``intent`` ``[I]``, ``slots`` ``[W, S]`` at the first
    sub-token of each kept word, in word order (``W`` = words not truncated away)."""

    intent: torch.Tensor
    slots: torch.Tensor | None


def normalise(text: str) -> str:
    """The form two utterances are compared in (case and spacing do not make a new one)."""
    return " ".join(text.lower().split())


def new_texts(texts: Iterable[str], seen: Iterable[str], limit: int) -> list[str]:
    """Up to ``limit`` distinct texts of ``texts``, in order, that are not in ``seen``.

    The domain corpus often holds the labeled utterances themselves; those already carry hard
    labels, and counting them twice would double their soft terms.
    """
    known = {normalise(t) for t in seen}
    out = []
    for text in texts:
        key = normalise(text)
        if key and key not in known:
            known.add(key)
            out.append(text)
            if len(out) >= limit:
                break
    return out


def encode_unlabeled(
    words: Sequence[Sequence[str]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> list[Encoded]:
    """Pre-split utterances as items without labels (word starts found as for labeled ones)."""
    if not words:
        return []
    enc = tokenizer(
        [list(w) for w in words], is_split_into_words=True, truncation=True, max_length=max_length
    )
    out = []
    for i, row in enumerate(words):
        ids = enc["input_ids"][i]
        starts = first_subtokens(enc.word_ids(i), len(row))
        out.append(Encoded(ids, IGNORE, [IGNORE] * len(ids), starts))
    return out


def word_mask(items: Sequence[Encoded], width: int) -> torch.Tensor:
    """``[B, width]`` bool: True at each kept word's first sub-token."""
    mask = torch.zeros((len(items), width), dtype=torch.bool)
    for row, item in enumerate(items):
        starts = [s for s in item.word_starts if s >= 0]
        mask[row, starts] = True
    return mask


def collate_distill(
    items: Sequence[Encoded], targets: Sequence[TeacherTargets], pad_id: int, with_slots: bool
) -> dict[str, torch.Tensor]:
    """:func:`~distilnlu.data.finetune.collate` plus ``teacher_intent`` ``[B, I]`` and, with
    slots, ``word_mask`` ``[B, T]`` and ``teacher_slots`` ``[B, T, S]`` (zero off the words)."""
    batch = collate(items, pad_id, with_slots)
    batch["teacher_intent"] = torch.stack([t.intent for t in targets]).float()
    if with_slots:
        width = batch["input_ids"].shape[1]
        mask = word_mask(items, width)
        first = targets[0].slots
        assert first is not None  # a slot task's targets always carry slot scores
        slots = torch.zeros((len(items), width, first.shape[-1]))
        for row, (item, target) in enumerate(zip(items, targets, strict=True)):
            starts = [s for s in item.word_starts if s >= 0]
            assert target.slots is not None
            slots[row, starts] = target.slots.float()
        batch["word_mask"], batch["teacher_slots"] = mask, slots
    return batch


def ensemble_logits(logits: Sequence[torch.Tensor], temperature: float) -> torch.Tensor:
    """Logits ``[..., C]`` whose tempered softmax is the mean of the teachers' tempered softmaxes.

    ``T · log(mean_k softmax(z_k / T))``: the soft CE applies ``softmax(· / T)`` to stored
    logits, so the ensemble is kept in the same form as one teacher's scores. One teacher's
    logits are returned as they are (the formula would only shift each row by a constant).
    """
    if not logits:
        raise ValueError("ensemble_logits needs at least one teacher's logits")
    if len(logits) == 1:
        return logits[0]
    tempered = torch.stack([torch.log_softmax(z.float() / temperature, dim=-1) for z in logits])
    return temperature * (torch.logsumexp(tempered, dim=0) - math.log(len(logits)))


def targets_from_logits(
    items: Sequence[Encoded], intent: torch.Tensor, slots: torch.Tensor | None
) -> list[TeacherTargets]:
    """Per-item targets from one teacher batch: ``intent`` ``[B, I]``, ``slots`` ``[B, T, S]``;
    kept as fp16 (a pool of augmented utterances is large, soft targets need no more)."""
    out = []
    for row, item in enumerate(items):
        starts = [s for s in item.word_starts if s >= 0]
        word_scores = slots[row, starts].half().cpu() if slots is not None else None
        out.append(TeacherTargets(intent[row].half().cpu(), word_scores))
    return out
