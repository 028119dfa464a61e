"""NLU metrics on hand-computed cases, cross-checked against seqeval and scipy when installed."""

from __future__ import annotations

import math
import random
import warnings

import pytest

from distilnlu.evaluation import metrics as nlu

# --- chunks ------------------------------------------------------------------------------------


def test_chunks_b_i_runs_and_trailing_chunk() -> None:
    # date spans tokens 0-1, then O, then a one-token time chunk still open at the end.
    assert nlu.chunks(["B-date", "I-date", "O", "B-time"]) == [("date", 0, 2), ("time", 3, 4)]


def test_chunks_i_after_o_starts_a_chunk() -> None:
    # conlleval: an I- tag with no open chunk of its type opens one instead of being dropped.
    assert nlu.chunks(["O", "I-place", "I-place", "O"]) == [("place", 1, 3)]
    assert nlu.chunks(["I-a"]) == [("a", 0, 1)]


def test_chunks_type_change_mid_run_and_b_after_b() -> None:
    # I-b after a-chunk closes it at 2 and opens b at 2.
    assert nlu.chunks(["B-a", "I-a", "I-b", "I-b"]) == [("a", 0, 2), ("b", 2, 4)]
    # A second B- of the same type splits the run.
    assert nlu.chunks(["B-a", "B-a", "I-a"]) == [("a", 0, 1), ("a", 1, 3)]


def test_chunks_all_o_and_empty() -> None:
    assert nlu.chunks(["O", "O", "O"]) == []
    assert nlu.chunks([]) == []


def test_chunks_types_with_hyphens_and_iobes() -> None:
    # The type is everything after the first "-".
    assert nlu.chunks(["B-time-of-day", "I-time-of-day"]) == [("time-of-day", 0, 2)]
    # seqeval also reads IOBES: S- is a one-tag chunk, E- closes one.
    assert nlu.chunks(["S-a", "B-b", "E-b", "O"]) == [("a", 0, 1), ("b", 1, 3)]


def test_chunks_unprefixed_tags_follow_seqeval_and_warn() -> None:
    # seqeval reads "PER" as prefix "P" with type "ER" and opens a chunk; it is not an "O".
    with pytest.warns(UserWarning, match="PER"):
        assert nlu.chunks(["O", "PER", "PER", "O"]) == [("ER", 1, 3)]


def test_chunks_empty_tag_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty slot tag"):
        nlu.chunks(["O", ""])


# --- slot precision / recall / F1 ---------------------------------------------------------------

GOLD_TAGS = [
    ["B-date", "I-date", "O", "B-time"],  # date(0,2), time(3,4)
    ["O", "B-place", "I-place"],  # place(1,3)
    ["O", "O", "O"],  # nothing
]
PRED_TAGS = [
    ["B-date", "I-date", "O", "O"],  # date(0,2): right; time missed
    ["O", "B-place", "O"],  # place(1,2): wrong span
    ["B-person", "O", "I-person"],  # person(0,1), person(2,3): I- after O opens a chunk
]


def test_slot_prf_three_utterances() -> None:
    # 3 gold chunks, 4 predicted, 1 right (date): P = 1/4, R = 1/3,
    # F1 = 2 * 1/4 * 1/3 / (1/4 + 1/3) = (1/6) / (7/12) = 2/7.
    scores = nlu.slot_prf(GOLD_TAGS, PRED_TAGS)
    assert scores == pytest.approx({"precision": 0.25, "recall": 1 / 3, "f1": 2 / 7})


def test_slot_prf_zero_chunk_cases_are_zero_not_nan() -> None:
    nothing = [["O", "O"], ["O"]]
    something = [["B-a", "I-a"], ["B-b"]]
    # No gold and no predicted chunks: every ratio is 0/0, which seqeval reports as 0.0.
    assert nlu.slot_prf(nothing, nothing) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # Gold chunks, no predictions: precision 0/0 -> 0.0, recall 0/2 = 0.0.
    assert nlu.slot_prf(something, nothing) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # Predictions, no gold chunks: precision 0/2 = 0.0, recall 0/0 -> 0.0.
    assert nlu.slot_prf(nothing, something) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # Everything right.
    assert nlu.slot_prf(something, something) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_slot_prf_length_errors() -> None:
    with pytest.raises(ValueError, match="utterance 1"):
        nlu.slot_prf([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="same length"):
        nlu.slot_prf([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="empty"):
        nlu.slot_prf([], [])


def test_chunks_do_not_cross_utterances() -> None:
    # A chunk at the end of one utterance and I- at the start of the next are two chunks, both
    # right: P = R = 1.
    gold = [["O", "B-a"], ["I-a", "O"]]
    assert nlu.slot_prf(gold, gold)["f1"] == 1.0
    # Predicting one utterance's trailing chunk doesn't earn the next one's: 1 of 2 found.
    assert nlu.slot_prf(gold, [["O", "B-a"], ["O", "O"]])["recall"] == 0.5


# --- intents and exact match --------------------------------------------------------------------


def test_intent_accuracy() -> None:
    # 3 of 4 equal; an intent the model cannot predict ("rare") simply counts as wrong.
    assert nlu.intent_accuracy(["a", "b", "c", "rare"], ["a", "b", "c", "a"]) == 0.75
    with pytest.raises(ValueError, match="same length"):
        nlu.intent_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        nlu.intent_accuracy([], [])


def test_exact_match() -> None:
    gold_intents = ["alarm", "alarm", "weather", "alarm"]
    pred_intents = ["alarm", "alarm", "music", "alarm"]
    gold_tags = [["B-time", "I-time"], ["O", "B-time"], ["B-place"], ["B-time", "I-time"]]
    pred_tags = [
        ["B-time", "I-time"],  # identical: match
        ["O", "I-time"],  # other tags, same chunk time(1,2): match
        ["B-place"],  # slots right but intent wrong: no match
        ["B-time", "O"],  # intent right, span wrong: no match
    ]
    # 2 of 4.
    assert nlu.exact_match(gold_intents, pred_intents, gold_tags, pred_tags) == 0.5
    with pytest.raises(ValueError, match="utterance 0"):
        nlu.exact_match(["a"], ["a"], [["O"]], [["O", "O"]])


# --- semantic error rate ------------------------------------------------------------------------


def _semer(gold_tags: str, pred_tags: str, gold: str = "i", pred: str = "i") -> dict[str, int]:
    return nlu.semer_counts(gold, pred, gold_tags.split(), pred_tags.split())


def _counts(s: int = 0, d: int = 0, i: int = 0, intent: int = 0, ref: int = 1) -> dict[str, int]:
    return {
        "substitutions": s,
        "deletions": d,
        "insertions": i,
        "intent_errors": intent,
        "reference": ref,
    }


def test_semer_counts_single_errors() -> None:
    # All right: one gold slot -> reference 1 + 1 = 2.
    assert _semer("B-a I-a O", "B-a I-a O") == _counts(ref=2)
    # time(0,2) predicted as time(0,1): same type, wrong span -> 1 substitution.
    assert _semer("B-time I-time O", "B-time O O") == _counts(s=1, ref=2)
    # b(2,3) not predicted -> 1 deletion; two gold slots -> reference 3.
    assert _semer("B-a O B-b", "B-a O O") == _counts(d=1, ref=3)
    # b(2,3) predicted but not in gold -> 1 insertion.
    assert _semer("B-a O O", "B-a O B-b") == _counts(i=1, ref=2)
    # Slots right, intent wrong.
    assert _semer("B-a O", "B-a O", "x", "y") == _counts(intent=1, ref=2)
    # No slots at all: the reference is the intent alone.
    assert _semer("O O", "O O") == _counts(ref=1)


def test_semer_counts_combinations() -> None:
    # Right span, wrong type: nothing to pair with within its type -> 1 deletion + 1 insertion.
    assert _semer("B-a O", "B-b O") == _counts(d=1, i=1, ref=2)
    # gold: a(0,2), a(3,4), b(5,6); pred: a(0,1), c(4,5), b(5,6).
    # b is right. Left over: gold a x2, pred a x1 and c x1.
    # type a: min(2, 1) = 1 substitution, 1 deletion; type c: 1 insertion. Intent wrong: 1.
    # reference = 3 + 1 = 4.
    counts = _semer("B-a I-a O B-a O B-b", "B-a O O O B-c B-b", "x", "y")
    assert counts == _counts(s=1, d=1, i=1, intent=1, ref=4)
    # Two wrong-span predictions of a type with one gold slot: 1 substitution + 1 insertion.
    assert _semer("B-a I-a I-a O", "B-a O B-a O") == _counts(s=1, i=1, ref=2)
    with pytest.raises(ValueError, match="slot tags"):
        _semer("O O", "O")


def test_semantic_error_rate_sums_counts() -> None:
    gold_intents, pred_intents = ["x", "p"], ["y", "p"]
    # Utterance 1: the combination above, 4 errors over reference 4 (rate 1.0).
    first_gold = ["B-a", "I-a", "O", "B-a", "O", "B-b"]
    first_pred = ["B-a", "O", "O", "O", "B-c", "B-b"]
    # Utterance 2: 3 gold slots all right, intent right: 0 errors over reference 4 (rate 0.0).
    many_slots = ["B-a", "B-b", "B-c"]
    # Corpus SemER = (4 + 0) / (4 + 4) = 0.5 ...
    rate = nlu.semantic_error_rate(
        gold_intents, pred_intents, [first_gold, many_slots], [first_pred, many_slots]
    )
    assert rate == 0.5
    # ... and with a slot-less second utterance (reference 1), (4 + 0) / (4 + 1) = 0.8, whereas
    # the mean of the per-utterance rates would still be 0.5.
    rate = nlu.semantic_error_rate(
        gold_intents, pred_intents, [first_gold, ["O"]], [first_pred, ["O"]]
    )
    assert rate == 0.8
    with pytest.raises(ValueError, match="empty"):
        nlu.semantic_error_rate([], [], [], [])


def test_nlu_metrics() -> None:
    gold_intents, pred_intents = ["a", "b", "c"], ["a", "b", "x"]
    metrics = nlu.nlu_metrics(gold_intents, pred_intents, GOLD_TAGS, PRED_TAGS)
    # Intent: 2 of 3. Slots: as in test_slot_prf_three_utterances. No utterance has every slot
    # right, so exact match is 0. SemER: utterance 1 deletes time (1 error, reference 3),
    # utterance 2 substitutes place (1, reference 2), utterance 3 inserts two persons and gets
    # the intent wrong (3, reference 1): 5 / 6.
    assert metrics == pytest.approx(
        {
            "intent_accuracy": 2 / 3,
            "slot_precision": 0.25,
            "slot_recall": 1 / 3,
            "slot_f1": 2 / 7,
            "exact_match": 0.0,
            "semer": 5 / 6,
            "n": 3,
        }
    )
    assert isinstance(metrics["n"], int)
    with pytest.raises(ValueError, match="empty"):
        nlu.nlu_metrics([], [], [], [])
    with pytest.raises(ValueError, match="same length"):
        nlu.nlu_metrics(["a"], ["a"], [["O"], ["O"]], [["O"], ["O"]])


# --- pairs, relative error, correlation, grouping ----------------------------------------------


def test_pair_accuracy_per_language() -> None:
    gold = ["yes", "no", "yes", "no", "yes"]
    pred = ["yes", "yes", "yes", "no", "no"]
    languages = ["en", "en", "de", "de", "de"]
    # en: 1 of 2; de: 2 of 3; overall 3 of 5 (not the mean of 0.5 and 2/3).
    result = nlu.pair_accuracy(gold, pred, languages)
    assert result == {
        "accuracy": 0.6,
        "n": 5,
        "by_language": {"de": {"accuracy": 2 / 3, "n": 3}, "en": {"accuracy": 0.5, "n": 2}},
    }
    assert list(result["by_language"]) == ["de", "en"]
    with pytest.raises(ValueError, match="same length"):
        nlu.pair_accuracy(["yes"], ["yes"], ["en", "de"])
    with pytest.raises(ValueError, match="empty"):
        nlu.pair_accuracy([], [], [])


def test_relative_error_change_paper_style() -> None:
    # Exact match 0.80 vs 0.75: error 0.20 vs 0.25 -> (0.20 - 0.25) / 0.25 = -0.20.
    assert nlu.relative_error_change(0.80, 0.75) == pytest.approx(-0.20)
    # Accuracy 0.70 vs 0.75: error 0.30 vs 0.25 -> +0.20.
    assert nlu.relative_error_change(0.70, 0.75) == pytest.approx(0.20)
    # SemER 0.09 vs 0.10 -> -0.10; 0.12 vs 0.10 -> +0.20.
    assert nlu.relative_error_change(0.09, 0.10, higher_is_better=False) == pytest.approx(-0.10)
    assert nlu.relative_error_change(0.12, 0.10, higher_is_better=False) == pytest.approx(0.20)
    # Same as the baseline: no change.
    assert nlu.relative_error_change(0.9, 0.9) == 0.0


def test_relative_error_change_undefined_and_invalid() -> None:
    # An error-free baseline leaves nothing to be relative to.
    assert math.isnan(nlu.relative_error_change(0.9, 1.0))
    assert math.isnan(nlu.relative_error_change(0.1, 0.0, higher_is_better=False))
    assert math.isnan(nlu.relative_error_change(math.nan, 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nlu.relative_error_change(80.0, 75.0)  # percentages, not fractions
    with pytest.raises(ValueError, match="non-negative"):
        nlu.relative_error_change(-0.1, 0.1, higher_is_better=False)


def test_spearman_with_ties() -> None:
    # x ranks [1, 2.5, 2.5, 4], y ranks [1, 3, 2, 4]; centred on 2.5: dx = [-1.5, 0, 0, 1.5],
    # dy = [-1.5, 0.5, -0.5, 1.5]. sum(dx*dy) = 4.5, sum(dx^2) = 4.5, sum(dy^2) = 5,
    # rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    assert nlu.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))
    # y ranks [4, 2.5, 2.5, 1] mirror x's exactly: -1.
    assert nlu.spearman([1, 2, 2, 3], [4, 3, 3, 1]) == pytest.approx(-1.0)
    # Monotone but not linear: 1.
    assert nlu.spearman([1.0, 2.0, 3.0], [1.0, 10.0, 1000.0]) == 1.0


def test_spearman_nan_cases() -> None:
    assert math.isnan(nlu.spearman([], []))
    assert math.isnan(nlu.spearman([1.0], [2.0]))
    assert math.isnan(nlu.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # constant x
    assert math.isnan(nlu.spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))  # constant y
    # The pair with a NaN is dropped: x = [1, 2, 3], y = [1, 3, 2] remain; dx = [-1, 0, 1],
    # dy = [-1, 1, 0] -> 1 / sqrt(2 * 2) = 0.5.
    assert nlu.spearman([1.0, math.nan, 2.0, 3.0], [1.0, 5.0, 3.0, 2.0]) == pytest.approx(0.5)
    # Dropping NaN pairs can leave too few points.
    assert math.isnan(nlu.spearman([1.0, math.nan, 3.0], [math.nan, 2.0, 3.0]))
    with pytest.raises(ValueError, match="same length"):
        nlu.spearman([1.0, 2.0], [1.0])


def test_by_group_splits_columns_in_order() -> None:
    groups = ["fr-FR", "en-US", "fr-FR"]
    split = nlu.by_group(groups, gold_intents=["a", "b", "c"], pred_intents=["a", "x", "d"])
    assert split == {
        "en-US": {"gold_intents": ["b"], "pred_intents": ["x"]},
        "fr-FR": {"gold_intents": ["a", "c"], "pred_intents": ["a", "d"]},
    }
    assert list(split) == ["en-US", "fr-FR"]
    per_locale = {
        g: nlu.intent_accuracy(**cols)
        for g, cols in nlu.by_group(groups, gold=["a", "b", "c"], pred=["a", "x", "d"]).items()
    }
    assert per_locale == {"en-US": 0.0, "fr-FR": 0.5}
    with pytest.raises(ValueError, match="same length"):
        nlu.by_group(groups, gold=["a"])


# --- cross-checks against the reference implementations ----------------------------------------

# Valid IOB2 tags, I- tags that open chunks, and tags seqeval does not expect (IOBES, unprefixed,
# bare prefixes, "."), so that the odd corners are compared too.
_TAG_ALPHABET = [
    *(["O"] * 6),
    *("B-a", "I-a", "B-b", "I-b", "I-c", "B-time-of-day", "I-time-of-day"),
    *("E-a", "S-b", "PER", "X", "B", "I", ".", "O-a", "X-"),
]


def _random_corpus(rng: random.Random) -> tuple[list[list[str]], list[list[str]]]:
    lengths = [rng.randint(0, 8) for _ in range(rng.randint(1, 6))]
    gold = [[rng.choice(_TAG_ALPHABET) for _ in range(n)] for n in lengths]
    pred = [[rng.choice(_TAG_ALPHABET) for _ in range(n)] for n in lengths]
    return gold, pred


def test_matches_seqeval() -> None:
    pytest.importorskip("seqeval", reason="seqeval (dev extra) is not installed")
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(1234)
    with warnings.catch_warnings():
        # Both sides warn about the odd tags and seqeval about 0/0; the values are what matter.
        warnings.simplefilter("ignore")
        for _ in range(1000):
            gold, pred = _random_corpus(rng)
            for tags in gold:
                expected = [(t, start, end + 1) for t, start, end in get_entities(list(tags))]
                assert nlu.chunks(tags) == expected, tags
            ours = nlu.slot_prf(gold, pred)
            reference = {
                "precision": precision_score(gold, pred),
                "recall": recall_score(gold, pred),
                "f1": f1_score(gold, pred),
            }
            assert ours == pytest.approx(reference, abs=1e-12), (gold, pred)


def test_matches_scipy_spearman() -> None:
    pytest.importorskip("scipy", reason="scipy (dev extra) is not installed")
    from scipy.stats import spearmanr

    rng = random.Random(99)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input
        for _ in range(500):
            n = rng.randint(2, 15)
            # Few distinct values, so ties are common on both sides (and constant input happens).
            x = [float(rng.randint(0, 4)) for _ in range(n)]
            y = [float(rng.randint(0, 3)) + rng.choice([0.0, 0.5]) for _ in range(n)]
            expected = float(spearmanr(x, y).statistic)
            ours = nlu.spearman(x, y)
            if math.isnan(expected):
                assert math.isnan(ours), (x, y)
            else:
                assert ours == pytest.approx(expected, abs=1e-12), (x, y)
        # NaN pairs: ours drops them, like scipy's nan_policy="omit".
        for _ in range(100):
            n = rng.randint(4, 15)
            x = [rng.choice([math.nan, *range(5)]) for _ in range(n)]
            y = [rng.gauss(0.0, 1.0) for _ in range(n)]
            kept = [(a, b) for a, b in zip(x, y, strict=True) if not math.isnan(a)]
            if len(kept) < 3 or len({a for a, _ in kept}) < 2:
                continue
            expected = float(spearmanr(x, y, nan_policy="omit").statistic)
            assert nlu.spearman(x, y) == pytest.approx(expected, abs=1e-12), (x, y)
