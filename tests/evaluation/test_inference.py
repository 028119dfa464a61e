"""Evaluation of fine-tuned models: unknown gold labels are errors, not crashes; latency."""

import pytest
import torch

from distilnlu.data.examples import NLUExample, PairExample
from distilnlu.data.labeled import LabelVocab
from distilnlu.evaluation.inference import evaluate_nlu, evaluate_pairs, latency_ms
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder
from distilnlu.tasks import INTENT_SLOT, PAIR

TRAIN = [
    NLUExample(("wake", "me", "at", "five"), ("O", "O", "O", "B-time"), "alarm_set"),
    NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music"),
]


def test_unknown_gold_labels_count_as_errors(tiny_mlm_dir, tiny_tokenizer):
    torch.manual_seed(0)  # the heads' initialisation: the exact answers below depend on it
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LabelVocab.build(TRAIN))
    unseen = [
        NLUExample(("order", "a", "pizza"), ("O", "O", "B-food"), "takeaway_order"),
        *TRAIN,
    ]
    metrics, predictions = evaluate_nlu(model, unseen, tiny_tokenizer, max_length=16)
    assert metrics["n"] == 3 and metrics["intent_accuracy"] <= 2 / 3
    assert metrics["exact_match"] <= 2 / 3  # the unseen intent can never be right
    assert predictions[0]["intent"] == "takeaway_order"
    assert predictions[0]["predicted_intent"] in ("alarm_set", "play_music")
    assert len(predictions[0]["predicted_tags"]) == 3
    assert [p["predicted_intent"] for p in predictions] == ["alarm_set"] * 3
    assert metrics == pytest.approx(
        {
            "intent_accuracy": 1 / 3,
            "slot_precision": 0.0,
            "slot_recall": 0.0,
            "slot_f1": 0.0,
            "exact_match": 0.0,
            "semer": 11 / 6,
            "n": 3,
            "language": "en-US",
        }
    )
    assert INTENT_SLOT.score(metrics) == metrics["exact_match"]


def test_pair_evaluation_reports_the_language(tiny_mlm_dir, tiny_tokenizer):
    pairs = [PairExample("wake me up", "set an alarm", "entailment", "de")] * 3
    torch.manual_seed(0)
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LabelVocab.build_pairs(pairs), task=PAIR)
    metrics, predictions = evaluate_pairs(model, pairs, tiny_tokenizer, max_length=32)
    assert metrics["language"] == "de" and metrics["n"] == 3
    assert metrics["accuracy"] == 1.0 and len(predictions) == 3
    assert [p["predicted"] for p in predictions] == ["entailment"] * 3
    assert predictions[0]["confidence"] == pytest.approx(0.5325, abs=1e-4)
    assert PAIR.score(metrics) == metrics["accuracy"]


def test_latency_is_measured_per_utterance_and_per_pair(tiny_mlm_dir, tiny_tokenizer):
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LabelVocab.build(TRAIN))
    timed = latency_ms(model, tiny_tokenizer, ["wake me up at five", "play jazz"] * 5, 16)
    assert timed["n"] == 10 and 0 < timed["p50"] <= timed["p99"]
    pairs = latency_ms(model, tiny_tokenizer, [("wake me up", "an alarm")] * 3, 16)
    assert pairs["n"] == 3
    assert latency_ms(model, tiny_tokenizer, [], 16) == {}


def test_latency_restores_the_thread_count(tiny_mlm_dir, tiny_tokenizer):
    import torch

    before = torch.get_num_threads()
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LabelVocab.build(TRAIN))
    latency_ms(model, tiny_tokenizer, ["play jazz"], 16)
    assert torch.get_num_threads() == before
