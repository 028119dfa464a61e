"""EncoderClassifier: shapes, frozen encoder trains only the heads, save/load round trip."""

import pytest
import torch
from transformers import AutoModel

from distilnlu.config import TrainingConfig
from distilnlu.data.examples import NLUExample
from distilnlu.data.labeled import LabelVocab
from distilnlu.errors import ModelError
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder, load_nlu_model
from distilnlu.tasks import PAIR
from distilnlu.training.loop import build_optimizer
from distilnlu.training.objectives import ClassificationObjective, EarlyStopping

LABELS = LabelVocab.build(
    [
        NLUExample(("wake", "me", "at", "five"), ("O", "O", "O", "B-time"), "alarm_set"),
        NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music"),
    ]
)


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[0, 10, 11, 12, 2], [0, 13, 14, 2, 1]])
    return {
        "input_ids": ids,
        "attention_mask": (ids != 1).long(),
        "intent_labels": torch.tensor([0, 1]),
        "slot_labels": torch.tensor([[-100, 0, 0, 1, -100], [-100, 0, 3, -100, -100]]),
    }


def test_forward_shapes_and_pair_task(tiny_mlm_dir):
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LABELS)
    intent, slots = model(_batch()["input_ids"], _batch()["attention_mask"])
    assert intent.shape == (2, len(LABELS.intents)) and slots.shape == (2, 5, len(LABELS.slot_tags))
    pair = EncoderClassifier(load_encoder(tiny_mlm_dir), LABELS, task=PAIR, pooling="cls")
    intent, slots = pair(_batch()["input_ids"], _batch()["attention_mask"])
    assert intent.shape == (2, len(LABELS.intents)) and slots is None


def test_mean_pooling_ignores_padding(tiny_mlm_dir):
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LABELS, dropout=0.0).eval()
    ids = torch.tensor([[0, 10, 11, 2]])
    padded = torch.tensor([[0, 10, 11, 2, 1, 1]])
    alone, _ = model(ids, torch.ones_like(ids))
    with_pad, _ = model(padded, (padded != 1).long())
    torch.testing.assert_close(alone, with_pad, atol=1e-5, rtol=1e-5)


def _one_step(model) -> tuple[dict, dict]:
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = build_optimizer(model, TrainingConfig(max_steps=1, lr=1e-2))
    objective = ClassificationObjective(1.0, EarlyStopping(3), lambda m: m["exact_match"])
    model.train()
    objective(model, _batch())["loss"].backward()
    grads = {k: p.grad for k, p in model.named_parameters()}
    optimizer.step()
    return before, grads


def test_frozen_encoder_trains_only_the_heads(tiny_mlm_dir):
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LABELS)
    model.freeze_encoder()
    before, grads = _one_step(model)
    for name, param in model.named_parameters():
        if name.startswith("encoder."):
            assert grads[name] is None, name
            assert torch.equal(param, before[name]), name
        else:
            assert grads[name] is not None and grads[name].abs().sum() > 0, name
            assert not torch.equal(param, before[name]), name
    assert not model.encoder.training  # no dropout inside a frozen encoder, even in train mode


def test_full_fine_tuning_updates_the_encoder(tiny_mlm_dir):
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LABELS)
    before, _ = _one_step(model)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("encoder.encoder.layer") for n in changed)


def test_save_and_load_round_trip(tiny_mlm_dir, tmp_path):
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LABELS).eval()
    model.save_pretrained(tmp_path / "ft", extra={"max_length": 32})
    loaded = load_nlu_model(tmp_path / "ft")
    batch = _batch()
    for a, b in zip(
        model(batch["input_ids"], batch["attention_mask"]),
        loaded(batch["input_ids"], batch["attention_mask"]),
        strict=True,
    ):
        torch.testing.assert_close(a, b)
    assert loaded.labels.intents == LABELS.intents
    # The encoder alone is a plain HF folder.
    assert AutoModel.from_pretrained(tmp_path / "ft").config.hidden_size == 32


def test_loading_a_folder_without_heads_is_a_clear_error(tiny_mlm_dir):
    with pytest.raises(ModelError, match="not a fine-tuned NLU model"):
        load_nlu_model(tiny_mlm_dir)
