"""Inputs of task distillation: soft slot targets sit exactly where the hard slot labels do."""

from __future__ import annotations

import math
import random

import pytest
import torch

from distilnlu.data.examples import NLUExample
from distilnlu.data.finetune import IGNORE, Encoded, encode_nlu, eval_batches
from distilnlu.data.labeled import LabelVocab
from distilnlu.data.task_distill import (
    TeacherTargets,
    collate_distill,
    encode_unlabeled,
    ensemble_logits,
    new_texts,
    normalise,
    targets_from_logits,
    word_mask,
)

S = 9  # slot tags of the random teacher scores


@pytest.fixture(scope="module")
def labels(tiny_nlu_examples):
    return LabelVocab.build(tiny_nlu_examples)


@pytest.fixture(scope="module")
def examples(tiny_nlu_examples):
    return list(tiny_nlu_examples[:48])


def random_targets(items, seed=0):
    """Teacher targets from random ``[B, T, S]`` scores of one padded batch, and those scores."""
    g = torch.Generator().manual_seed(seed)
    width = max(len(x.input_ids) for x in items)
    intent = torch.randn(len(items), 5, generator=g) * 3
    slots = torch.randn(len(items), width, S, generator=g) * 3
    return targets_from_logits(items, intent, slots), intent, slots


def check_alignment(items, batch, slots):
    """word_mask == hard-label positions; teacher slots there = the fp16-rounded source scores."""
    hard = batch["slot_labels"] != IGNORE
    assert torch.equal(batch["word_mask"], hard)
    width = batch["input_ids"].shape[1]
    source = slots[:, :width].half().float()
    assert torch.equal(batch["teacher_slots"][hard], source[hard])
    assert torch.count_nonzero(batch["teacher_slots"][~hard]) == 0


@pytest.mark.parametrize("max_length", [64, 8])
def test_soft_slot_targets_sit_on_the_hard_label_positions(
    tiny_tokenizer, labels, examples, max_length
):
    items = encode_nlu(examples, tiny_tokenizer, labels, max_length)
    pieces = [len(tiny_tokenizer.tokenize(w)) for ex in examples for w in ex.words]
    assert max(pieces) > 1  # some words split into several sub-tokens: the case that matters
    if max_length == 8:  # some words were truncated away
        assert any(-1 in x.word_starts for x in items)
    targets, intent, slots = random_targets(items)
    for item, target in zip(items, targets, strict=True):
        assert target.slots is not None and target.intent.dtype == torch.float16
        assert target.slots.dtype == torch.float16
        assert target.slots.shape == (sum(s >= 0 for s in item.word_starts), S)
    batch = collate_distill(items, targets, tiny_tokenizer.pad_token_id, with_slots=True)
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "intent_labels",
        "slot_labels",
        "teacher_intent",
        "teacher_slots",
        "word_mask",
    }
    assert batch["teacher_intent"].dtype == torch.float32
    assert torch.equal(batch["teacher_intent"], intent.half().float())
    assert batch["word_mask"].dtype == torch.bool
    assert batch["teacher_slots"].shape == (*batch["input_ids"].shape, S)
    check_alignment(items, batch, slots)
    # one mask position per kept word, never on specials or padding
    assert batch["word_mask"].sum().item() == sum(s >= 0 for x in items for s in x.word_starts)
    assert not batch["word_mask"][:, 0].any()
    assert not (batch["word_mask"] & (batch["attention_mask"] == 0)).any()


def test_targets_scored_in_eval_batches_follow_each_item_into_training_batches(
    tiny_tokenizer, labels, examples
):
    """As the stage does: score in length-sorted eval batches, train in shuffled other batches."""
    items = encode_nlu(examples, tiny_tokenizer, labels, 16)

    def score(index: int, position: int) -> torch.Tensor:  # a teacher scoring item × position
        return torch.arange(S, dtype=torch.float32) + 100.0 * index + position / 8

    targets: list[TeacherTargets | None] = [None] * len(items)
    for indices, batch in eval_batches(items, 7, tiny_tokenizer.pad_token_id):
        width = batch["input_ids"].shape[1]
        slots = torch.stack([torch.stack([score(i, p) for p in range(width)]) for i in indices])
        intent = torch.tensor([[float(i)] for i in indices])
        rows = targets_from_logits([items[i] for i in indices], intent, slots)
        for i, row in zip(indices, rows, strict=True):
            targets[i] = row
    assert all(t is not None for t in targets)
    order = list(range(len(items)))
    random.Random(3).shuffle(order)
    for start in range(0, len(order), 10):
        idx = order[start : start + 10]
        batch = collate_distill(
            [items[i] for i in idx], [targets[i] for i in idx], tiny_tokenizer.pad_token_id, True
        )
        assert torch.equal(batch["word_mask"], batch["slot_labels"] != IGNORE)
        assert batch["teacher_intent"][:, 0].tolist() == [float(i) for i in idx]
        for row, i in enumerate(idx):
            for pos in batch["word_mask"][row].nonzero().flatten().tolist():
                want = score(i, pos).half().float()
                assert torch.equal(batch["teacher_slots"][row, pos], want), (i, pos)


@pytest.mark.parametrize("max_length", [64, 8])
def test_encode_unlabeled_finds_the_same_word_starts_as_encode_nlu(
    tiny_tokenizer, labels, examples, max_length
):
    labeled = encode_nlu(examples, tiny_tokenizer, labels, max_length)
    unlabeled = encode_unlabeled([ex.words for ex in examples], tiny_tokenizer, max_length)
    assert len(unlabeled) == len(labeled)
    for a, b in zip(labeled, unlabeled, strict=True):
        assert b.input_ids == a.input_ids
        assert b.word_starts == a.word_starts
        assert b.intent == IGNORE
        assert b.slot_labels == [IGNORE] * len(b.input_ids)
    # an unlabeled batch: every word start is a soft-target position, none a hard one
    targets, _, _ = random_targets(unlabeled, seed=1)
    batch = collate_distill(unlabeled, targets, tiny_tokenizer.pad_token_id, with_slots=True)
    hard = collate_distill(labeled, targets, tiny_tokenizer.pad_token_id, with_slots=True)
    assert torch.equal(batch["word_mask"], hard["word_mask"])
    assert torch.equal(batch["teacher_slots"], hard["teacher_slots"])
    assert (batch["slot_labels"] == IGNORE).all() and (batch["intent_labels"] == IGNORE).all()


def test_word_mask_ignores_truncated_words():
    items = [Encoded([0, 5, 6, 7, 2], 0, [], [1, 3, -1]), Encoded([0, 5, 2], 0, [], [1])]
    mask = word_mask(items, 6)
    assert mask.tolist() == [
        [False, True, False, True, False, False],
        [False, True, False, False, False, False],
    ]


def test_unknown_gold_tag_is_a_soft_position_only(tiny_tokenizer, labels):
    """A word whose gold tag the vocabulary lacks keeps its teacher target (no hard label)."""
    ex = NLUExample(("wake", "me", "up", "at", "seven"), ("O", "O", "O", "O", "B-nosuchtag"), "x")
    (item,) = encode_nlu([ex], tiny_tokenizer, labels, 32)
    targets, _, slots = random_targets([item])
    batch = collate_distill([item], targets, tiny_tokenizer.pad_token_id, True)
    hard = batch["slot_labels"][0] != IGNORE
    assert hard.sum().item() == 4 and batch["word_mask"][0].sum().item() == 5
    last = item.word_starts[-1]
    assert batch["word_mask"][0, last] and not hard[last]
    assert torch.equal(batch["teacher_slots"][0, last], slots[0, last].half().float())


def test_collate_without_slots_adds_only_the_teacher_intent(tiny_tokenizer, labels, examples):
    items = encode_nlu(examples[:4], tiny_tokenizer, labels, 32)
    targets = targets_from_logits(items, torch.randn(4, 3), None)
    assert all(t.slots is None for t in targets)
    batch = collate_distill(items, targets, tiny_tokenizer.pad_token_id, with_slots=False)
    assert set(batch) == {"input_ids", "attention_mask", "intent_labels", "teacher_intent"}
    assert batch["teacher_intent"].shape == (4, 3)


def test_new_texts_skips_seen_duplicates_and_empties_and_keeps_order():
    texts = ["Play  Jazz", "play jazz", "", "   ", "set an alarm", "Wake me UP", "call mom", "x"]
    seen = ["wake me up", "SET AN ALARM "]
    assert new_texts(texts, seen, 10) == ["Play  Jazz", "call mom", "x"]
    assert new_texts(texts, seen, 2) == ["Play  Jazz", "call mom"]
    assert new_texts(iter(texts), [], 1) == ["Play  Jazz"]
    assert new_texts([], seen, 5) == []
    assert normalise("  A\tb  C ") == "a b c"


def test_new_texts_stops_reading_at_the_limit():
    def stream():
        yield "one"
        yield "two"
        raise AssertionError("read past the limit")

    assert new_texts(stream(), [], 2) == ["one", "two"]


def test_encode_unlabeled_of_nothing():
    assert encode_unlabeled([], None, 8) == []  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ensemble teacher


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_ensemble_logits_give_the_mean_of_the_tempered_distributions(temperature):
    g = torch.Generator().manual_seed(3)
    teachers = [torch.randn(4, 6, 7, generator=g) * 4 for _ in range(3)]
    combined = torch.softmax(ensemble_logits(teachers, temperature) / temperature, dim=-1)
    for b in range(4):
        for t in range(6):
            want = [0.0] * 7
            for z in teachers:
                row = [math.exp(float(v) / temperature) for v in z[b, t]]
                want = [w + r / sum(row) / len(teachers) for w, r in zip(want, row, strict=True)]
            assert combined[b, t].tolist() == pytest.approx(want, abs=1e-6)


def test_one_teachers_logits_are_kept_as_they_are():
    z = torch.randn(3, 5)
    assert ensemble_logits([z], 2.0) is z


def test_an_ensemble_of_no_teacher_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        ensemble_logits([], 2.0)
