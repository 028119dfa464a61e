"""The export-only encoder restatement computes what the HF encoder computes."""

from __future__ import annotations

import pytest
import torch

from distilnlu.data.labeled import LabelVocab
from distilnlu.deploy.lean import LeanClassifier, supports_lean
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder
from distilnlu.tasks import INTENT_SLOT, PAIR

LABELS = LabelVocab(["a", "b", "c"], ["O", "B-x", "I-x"])


def _batch(vocab: int, pad: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(3, vocab, (4, 11), generator=generator)
    mask = torch.ones_like(ids)
    for row, length in ((1, 6), (3, 2)):  # right-padded rows, as the parser sends them
        ids[row, length:] = pad
        mask[row, length:] = 0
    return ids, mask


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("task", [INTENT_SLOT, PAIR], ids=["intent_slot", "pair"])
def test_lean_equals_the_hf_encoder(tiny_mlm_dir, pooling, task):
    torch.manual_seed(0)
    labels = LABELS if task.has_slots else LabelVocab(["a", "b"], [])
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), labels, task=task, pooling=pooling)
    model.eval()
    ids, mask = _batch(model.encoder.config.vocab_size)
    with torch.no_grad():
        want_intent, want_slots = model(ids, mask)
        got_intent, got_slots = LeanClassifier(model)(ids, mask)
    torch.testing.assert_close(got_intent, want_intent, atol=1e-5, rtol=1e-5)
    if not task.has_slots:
        assert got_slots is None and want_slots is None
    else:
        valid = mask.bool()
        torch.testing.assert_close(got_slots[valid], want_slots[valid], atol=1e-5, rtol=1e-5)


def _tiny_bert() -> EncoderClassifier:
    """An intent + slot model on a one-layer BERT encoder (not distilnlu's architecture)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64,
    )  # fmt: skip
    return EncoderClassifier(BertModel(config, add_pooling_layer=False), LABELS).eval()


def test_other_architectures_are_not_restated():
    model = _tiny_bert()
    assert not supports_lean(model)
    with pytest.raises(ValueError, match="pre-LayerNorm RoBERTa"):
        LeanClassifier(model)


def test_a_bert_encoder_still_exports_with_parity(tmp_path):
    """Any HF encoder exports (traced as HF wrote it)."""
    import numpy as np

    from distilnlu.deploy.backends import OnnxBackend, TorchBackend
    from distilnlu.deploy.export import export_onnx

    model = _tiny_bert()
    export_onnx(model, tmp_path / "bert.onnx")
    ids, mask = (t.numpy() for t in _batch(50, pad=0))
    want = TorchBackend(model)(ids, mask)
    got = OnnxBackend(tmp_path / "bert.onnx", threads=1)(ids, mask)
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)
