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
from distilnlu.evaluation.decoding import PRIOR_WEIGHTS, BIODecoder, TagPrior, tune_prior
from distilnlu.evaluation.inference import predict
from distilnlu.evaluation.metrics import slot_prf

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


def prior_score(prior: TagPrior, ids: tuple[int, ...]) -> float:
    """The prior's weighted log-probability of a tag sequence, from the counts directly."""
    start = prior.start_counts + 1.0
    total = float(np.log(start[ids[0]] / start.sum()))
    for a, b in itertools.pairwise(ids):
        row = prior.bigram_counts[a] + 1.0
        total += float(np.log(row[b] / row.sum()))
    return prior.weight * total


def brute_force(
    tags: list[str], scores: np.ndarray, prior: TagPrior | None = None
) -> tuple[float, list[tuple[int, ...]]]:
    """Best total score over all valid sequences (log-probs, plus the weighted prior when
    given), and every sequence reaching it (to 1e-9)."""
    log_probs = log_softmax(scores)
    rows = log_probs.tolist()
    totals = {
        ids: sum(row[i] for row, i in zip(rows, ids, strict=True))
        + (prior_score(prior, ids) if prior is not None else 0.0)
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
        self.slot_prior = None
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


# --------------------------------------------------------------------------- tag prior


def random_prior(rng: random.Random, n_tags: int, weight: float) -> TagPrior:
    sequences = [[rng.randrange(n_tags) for _ in range(rng.randint(1, 6))] for _ in range(30)]
    return TagPrior.count(sequences, n_tags).with_weight(weight)


def test_decoding_with_a_prior_finds_the_best_sequence_like_brute_force() -> None:
    rng = random.Random(1)
    moved = 0
    for _ in range(200):
        tags, scores = random_case(rng)
        prior = random_prior(rng, len(tags), rng.choice([0.3, 1.0, 2.5]))
        decoder = BIODecoder(tags, prior)
        ids = decoder.decode(scores)
        assert decoder.is_valid(ids)
        best, winners = brute_force(tags, scores, prior)
        total = float(log_softmax(scores)[np.arange(len(ids)), ids].sum())
        assert total + prior_score(prior, tuple(ids)) == pytest.approx(best, abs=1e-9)
        if len(winners) == 1:
            assert tuple(ids) == winners[0]
        moved += ids != BIODecoder(tags).decode(scores)
    assert moved > 10  # the prior does change decisions


def test_prior_counts_starts_and_bigrams() -> None:
    prior = TagPrior.count([[0, 1, 2], [1, 2, 2], [], [0]], 3)
    assert prior.start_counts.tolist() == [2, 1, 0]
    assert prior.bigram_counts.tolist() == [[0, 1, 0], [0, 0, 2], [0, 0, 1]]
    assert np.exp(prior.log_transitions()).sum(1) == pytest.approx(np.ones(3))
    assert np.exp(prior.log_start()) == pytest.approx(np.array([3, 2, 1]) / 6)


def test_a_zero_weight_prior_decodes_as_no_prior() -> None:
    rng = random.Random(2)
    for _ in range(50):
        tags, scores = random_case(rng)
        prior = random_prior(rng, len(tags), 0.0)
        assert BIODecoder(tags, prior).decode(scores) == BIODecoder(tags).decode(scores)


def test_prior_json_round_trip_and_errors() -> None:
    prior = TagPrior.count([[0, 1], [1, 1]], 2).with_weight(0.4)
    back = TagPrior.from_json(prior.to_json(), 2)
    assert back.weight == 0.4
    assert back.start_counts.tolist() == [1, 1] and back.bigram_counts.tolist() == [[0, 1], [0, 1]]
    with pytest.raises(ValueError, match="labels have 3 slot tags"):
        TagPrior.from_json(prior.to_json(), 3)
    with pytest.raises(ValueError, match="malformed slot prior"):
        TagPrior.from_json({"weight": 0.4}, 2)
    with pytest.raises(ValueError, match=r"weight -1\.0"):
        TagPrior.from_json({**prior.to_json(), "weight": -1}, 2)
    with pytest.raises(ValueError, match="over 2 tags, the decoder 3"):
        BIODecoder(["O", "B-a", "I-a"], prior)


def test_tune_prior_picks_the_weight_with_the_best_score() -> None:
    tags = ["O", "B-a", "I-a"]
    # Training data: 'a' slots are rare and never follow O mid-utterance.
    prior = TagPrior.count([[0, 0, 0]] * 20 + [[1, 2, 0]] * 2, 3)
    # Utterance 1: a weak spurious B-a on word 2; utterance 2: a strong, real slot on word 1.
    spurious = np.array([[3.0, 0.0, 0.0], [0.0, 0.3, 0.0], [3.0, 0.0, 0.0]])
    real = np.array([[0.0, 4.0, 0.0], [0.0, 0.0, 4.0], [3.0, 0.0, 0.0]])
    gold = [["O", "O", "O"], ["B-a", "I-a", "O"]]
    starts = [[0, 1, 2], [0, 1, 2]]

    def slot_f1(predicted: list[list[str]]) -> float:
        return slot_prf(gold, predicted)["f1"]

    chosen, f1 = tune_prior(prior, tags, [spurious, real], starts, slot_f1)
    assert list(f1) == [str(w) for w in PRIOR_WEIGHTS]
    assert f1["0.0"] == pytest.approx(2 / 3)  # the spurious slot costs precision
    assert f1[str(chosen.weight)] == 1.0 and chosen.weight > 0
    assert all(f1[str(w)] < 1.0 for w in PRIOR_WEIGHTS if w < chosen.weight)  # smallest best

    def real_slot_kept(predicted: list[list[str]]) -> float:
        return float(predicted[1] == gold[1])

    flat, kept = tune_prior(prior, tags, [spurious, real], starts, real_slot_kept)
    assert flat.weight == 0.0 and set(kept.values()) == {1.0}  # a tie keeps the smallest weight
