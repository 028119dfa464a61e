"""Constrained BIO decoding: the best valid sequence, checked against brute force; and the
evaluation path never emits an orphan ``I-`` tag."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from torch import nn

from distilnlu.data.finetune import Encoded
from distilnlu.data.labeled import LabelVocab
from distilnlu.data.slots import check_bio
from distilnlu.errors import DataError
from distilnlu.evaluation.decoding import BIODecoder
from distilnlu.evaluation.inference import predict

# I-c has no B-c, so it can never be valid; B-d has no I-d.
POOL = ["O", "B-a", "I-a", "B-b", "I-b", "I-c", "B-d"]


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def valid(tags: list[str]) -> bool:
    try:
        check_bio(tags, "test")
    except DataError:
        return False
    return True


def brute_force(tags: list[str], scores: np.ndarray) -> tuple[float, list[tuple[int, ...]]]:
    """Best total log-prob over all valid sequences, and every sequence reaching it (to 1e-9)."""
    log_probs = log_softmax(scores)
    rows = log_probs.tolist()
    totals = {
        ids: sum(row[i] for row, i in zip(rows, ids, strict=True))
        for ids in itertools.product(range(len(tags)), repeat=len(scores))
        if valid([tags[i] for i in ids])
    }
    best = max(totals.values())
    return best, [ids for ids, total in totals.items() if total > best - 1e-9]


def random_case(rng: random.Random) -> tuple[list[str], np.ndarray]:
    while True:
        tags = rng.sample(POOL, rng.randint(3, len(POOL)))
        if any(not t.startswith("I-") for t in tags):  # some valid sequence must exist
            break
    scores = np.array([[rng.gauss(0, 2) for _ in tags] for _ in range(rng.randint(1, 5))])
    return tags, scores


def test_decoding_finds_the_best_valid_sequence_like_brute_force() -> None:
    rng = random.Random(0)
    changed = 0
    for _ in range(200):
        tags, scores = random_case(rng)
        decoder = BIODecoder(tags)
        ids = decoder.decode(scores)
        assert valid([tags[i] for i in ids]) and decoder.is_valid(ids)
        best, winners = brute_force(tags, scores)
        total = float(log_softmax(scores)[np.arange(len(ids)), ids].sum())
        assert total == pytest.approx(best, abs=1e-9)
        if len(winners) == 1:
            assert tuple(ids) == winners[0]
        changed += ids != scores.argmax(-1).tolist()
    assert changed > 10  # the cases do exercise the constraint


def test_an_orphan_inside_tag_from_argmax_becomes_valid() -> None:
    tags = ["O", "B-a", "I-a"]
    scores = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 1.5]])
    assert [tags[i] for i in scores.argmax(-1)] == ["O", "I-a"]
    decoded = [tags[i] for i in BIODecoder(tags).decode(scores)]
    assert decoded == ["O", "B-a"]


def test_no_words_decode_to_no_tags() -> None:
    decoder = BIODecoder(["O", "B-a", "I-a"])
    assert decoder.decode(np.zeros((0, 3))) == []
    assert decoder.decode_words(np.zeros((4, 3)), []) == []


def test_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[n_words, 3\]"):
        BIODecoder(["O", "B-a", "I-a"]).decode(np.zeros((2, 4)))


def test_without_constraints_decoding_is_argmax() -> None:
    tags = ["O", "B-a", "B-b", "weird"]
    scores = np.random.default_rng(0).normal(size=(50, len(tags)))
    assert BIODecoder(tags).decode(scores) == scores.argmax(-1).tolist()


def test_truncated_words_keep_minus_one() -> None:
    tags = ["O", "B-a", "I-a"]
    scores = np.array([[0.0, 0.0, 5.0], [9.0, 9.0, 9.0], [0.0, 0.0, 5.0]])
    # Word 0 starts at token 0, word 1 at token 2; word 2 was truncated away.
    assert BIODecoder(tags).decode_words(scores, [0, 2, -1]) == [1, 2, -1]


class FixedLogits(nn.Module):
    """A classifier whose slot logits depend only on the token position (argmax: O I-a I-a O)."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = LabelVocab(["greet"], ["O", "B-a", "I-a"])
        self.anchor = nn.Parameter(torch.zeros(1))  # predict reads the device off a parameter
        self.table = torch.tensor(
            [[4.0, 0.0, 0.0], [0.0, 1.0, 1.5], [0.0, 0.0, 2.0], [3.0, 0.0, 0.0]]
        )

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, width = input_ids.shape
        slots = self.table[:width].expand(batch, width, 3)
        return torch.zeros(batch, 1), slots


def test_evaluation_predictions_never_hold_an_orphan_inside_tag() -> None:
    model = FixedLogits()
    items = [
        Encoded([5, 6, 7, 8], 0, [], [0, 1, 2, 3]),
        Encoded([5, 6, 7], 0, [], [0, 1, 2]),
        Encoded([5, 6, 7, 8], 0, [], [1, 3]),
        Encoded([5, 6], 0, [], [0, 1, -1]),  # the last word truncated away
    ]
    argmax = model.table.argmax(-1).tolist()
    assert [model.labels.slot_tags[argmax[s]] for s in (0, 1)] == ["O", "I-a"]
    _, _, tag_ids = predict(model, items, batch_size=2, pad_id=0)
    tags = [[model.labels.slot_tags[t] if t >= 0 else "O" for t in row] for row in tag_ids]
    assert tags == [
        ["O", "B-a", "I-a", "O"],
        ["O", "B-a", "I-a"],
        ["B-a", "O"],
        ["O", "B-a", "O"],
    ]
    assert tag_ids[3][-1] == -1
    for row in tags:
        check_bio(row, "prediction")
