"""Varlen attention for packed isolated documents: the same logits and gradients as the dense
block-diagonal mask, with no mask formed."""

from __future__ import annotations

import pytest
import torch

from distilnlu.data.corpus import document_ids
from distilnlu.errors import ConfigError
from distilnlu.modeling import varlen
from distilnlu.modeling.masked_lm import encoder_hidden, masked_lm_logits
from distilnlu.modeling.presets import ModelShape, build_model

SHAPE = ModelShape(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64, dropout=0.0)
BOS, PAD = 0, 1


def packed_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two rows of documents framed ``<s> ... </s>``: a document cut at the row start, documents
    of 1-6 tokens, and a padded tail on the second row."""
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 120, (2, 24), generator=gen)
    for row, starts in enumerate(([3, 7, 8, 15], [0, 6, 13])):
        ids[row, starts] = BOS
    mask = torch.ones_like(ids)
    mask[1, 19:] = 0
    ids[1, 19:] = PAD
    return ids, mask, document_ids(ids, BOS)


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def run(model, ids, mask, docs, positions) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    logits = masked_lm_logits(model, ids, mask, positions, document_ids=docs)
    # A loss that weighs every logit differently, so any wrong attention shows in the gradients.
    weights = torch.linspace(-1, 1, logits.numel()).reshape(logits.shape)
    (logits * weights).sum().backward()
    return logits.detach(), grads(model)


def test_segments_split_at_documents_rows_and_padding():
    _, mask, docs = packed_batch()
    lengths = varlen.segment_lengths(docs, mask)
    cumulative = lengths["cu_seq_lens_q"].tolist()
    # row 0: [0..3) cut document, 3..7, 7..8 (one-token document), 8..15, 15..24;
    # row 1 (offset 24): 0..6, 6..13, 13..19, then the padding 19..24 on its own.
    assert cumulative == [0, 3, 7, 8, 15, 24, 30, 37, 43, 48]
    assert lengths["max_length_q"] == 9 and lengths["cu_seq_lens_q"].dtype == torch.int32


def test_varlen_equals_the_dense_mask_in_logits_and_gradients():
    torch.manual_seed(0)
    model = build_model(SHAPE, 120)
    ids, mask, docs = packed_batch()
    positions = (torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) < 0.4) & (
        mask.bool()
    )
    dense_logits, dense_grads = run(model, ids, mask, docs, positions)
    varlen.use_varlen(model)
    assert model.config._attn_implementation == varlen.VARLEN
    var_logits, var_grads = run(model, ids, mask, docs, positions)
    torch.testing.assert_close(var_logits, dense_logits, atol=1e-5, rtol=1e-5)
    assert var_grads.keys() == dense_grads.keys()
    for name, grad in var_grads.items():
        torch.testing.assert_close(grad, dense_grads[name], atol=1e-5, rtol=1e-5, msg=name)
    # Real positions' hidden states match too (not only the masked ones).
    with torch.no_grad():
        hidden = encoder_hidden(model, ids, mask, document_ids=docs).last_hidden_state
        model.set_attn_implementation("sdpa")
        dense = encoder_hidden(model, ids, mask, document_ids=docs).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(hidden[real], dense[real], atol=1e-5, rtol=1e-5)


def test_eager_kernel_equals_the_sdpa_mask_in_logits_and_gradients():
    torch.manual_seed(0)
    model = build_model(SHAPE, 120)
    ids, mask, docs = packed_batch()
    positions = mask.bool()
    dense_logits, dense_grads = run(model, ids, mask, docs, positions)
    varlen.training_attention(model, "eager")
    assert model.config._attn_implementation == "eager"
    eager_logits, eager_grads = run(model, ids, mask, docs, positions)
    torch.testing.assert_close(eager_logits, dense_logits, atol=1e-5, rtol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(grad, dense_grads[name], atol=1e-5, rtol=1e-5, msg=name)
    varlen.saved_attention(model)
    assert model.config._attn_implementation == "sdpa"


def test_varlen_without_documents_is_plain_sdpa():
    torch.manual_seed(0)
    model = build_model(SHAPE, 120).eval()
    ids, mask, _ = packed_batch()
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).logits
        varlen.use_varlen(model)
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, plain)


def test_varlen_refuses_attention_dropout():
    model = build_model(ModelShape(num_layers=1, hidden_size=32, num_heads=2, dropout=0.1), 120)
    with pytest.raises(ConfigError, match="attention dropout 0"):
        varlen.use_varlen(model)
