"""Evaluation of fine-tuned models: unknown gold labels are errors, not crashes; latency."""

from distilnlu.data.labeled import LabelVocab
from distilnlu.data.nlu import NLUExample, PairExample
from distilnlu.evaluation.inference import evaluate_nlu, evaluate_pairs, latency_ms, primary_score
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder

TRAIN = [
    NLUExample(("wake", "me", "at", "five"), ("O", "O", "O", "B-time"), "alarm_set"),
    NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music"),
]


def test_unknown_gold_labels_count_as_errors(tiny_mlm_dir, tiny_tokenizer):
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
    assert primary_score(metrics) == metrics["exact_match"]


def test_pair_evaluation_reports_the_language(tiny_mlm_dir, tiny_tokenizer):
    pairs = [PairExample("wake me up", "set an alarm", "entailment", "de")] * 3
    model = EncoderClassifier(
        load_encoder(tiny_mlm_dir), LabelVocab.build_pairs(pairs), task="pair"
    )
    metrics, predictions = evaluate_pairs(model, pairs, tiny_tokenizer, max_length=32)
    assert metrics["language"] == "de" and metrics["n"] == 3
    assert 0 <= metrics["accuracy"] <= 1 and len(predictions) == 3
    assert primary_score(metrics) == metrics["accuracy"]


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
