"""Masked-position LM head: same logits as the full forward, on N rows instead of B*T."""

from __future__ import annotations

import pytest
import torch
import transformers

from distilnlu.modeling import masked_lm as heads

SHAPE = dict(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
)


def _prelayernorm() -> transformers.PreTrainedModel:
    config = transformers.RobertaPreLayerNormConfig(**SHAPE, pad_token_id=1)
    return transformers.RobertaPreLayerNormForMaskedLM(config)


def _bert() -> transformers.PreTrainedModel:
    return transformers.BertForMaskedLM(transformers.BertConfig(**SHAPE, pad_token_id=1))


def _distilbert() -> transformers.PreTrainedModel:
    config = transformers.DistilBertConfig(
        vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64, pad_token_id=1
    )
    return transformers.DistilBertForMaskedLM(config)


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 100, (3, 11), generator=g)
    input_ids[:, 0] = 0
    attention_mask = torch.ones_like(input_ids)
    input_ids[1, 7:] = 1  # padding
    attention_mask[1, 7:] = 0
    positions = (torch.rand(input_ids.shape, generator=g) < 0.3) & attention_mask.bool()
    positions[2, 4] = True
    return input_ids, attention_mask, positions


def _full_logits(model, input_ids, attention_mask, positions):
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[positions]


@pytest.mark.parametrize("build", [_prelayernorm, _bert], ids=["roberta-prelayernorm", "bert"])
def test_efficient_path_matches_full_forward(build):
    torch.manual_seed(0)
    model = build().eval()
    head = heads.lm_head(model)
    assert head is not None

    seen = []
    handle = head.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    input_ids, attention_mask, positions = _inputs()
    with torch.no_grad():
        logits = heads.masked_lm_logits(model, input_ids, attention_mask, positions)
    handle.remove()

    n = int(positions.sum())
    assert logits.shape == (n, 100)
    assert seen == [torch.Size([n, 32])], "the head must run on the N selected rows only"
    expected = _full_logits(model, input_ids, attention_mask, positions)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


def test_gradients_flow_through_efficient_path():
    torch.manual_seed(0)
    model = _prelayernorm().train()
    input_ids, attention_mask, positions = _inputs(1)
    logits = heads.masked_lm_logits(model, input_ids, attention_mask, positions)
    logits.sum().backward()
    assert model.lm_head.dense.weight.grad is not None
    assert model.roberta_prelayernorm.embeddings.word_embeddings.weight.grad is not None


def test_fallback_when_head_unknown(monkeypatch):
    torch.manual_seed(0)
    model = _prelayernorm().eval()
    input_ids, attention_mask, positions = _inputs(2)
    expected = _full_logits(model, input_ids, attention_mask, positions)

    calls = []
    original_forward = model.forward

    def counting_forward(*args, **kwargs):
        calls.append(1)
        return original_forward(*args, **kwargs)

    monkeypatch.setattr(heads, "lm_head", lambda m: None)
    monkeypatch.setattr(model, "forward", counting_forward)
    with torch.no_grad():
        logits = heads.masked_lm_logits(model, input_ids, attention_mask, positions)
    assert calls, "the fallback runs the model's own forward"
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


def test_model_without_known_head_uses_fallback():
    torch.manual_seed(0)
    model = _distilbert().eval()
    assert heads.lm_head(model) is None
    input_ids, attention_mask, positions = _inputs(3)
    with torch.no_grad():
        logits = heads.masked_lm_logits(model, input_ids, attention_mask, positions)
    expected = _full_logits(model, input_ids, attention_mask, positions)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


def test_wrapped_model_takes_full_path():
    model = _bert().eval()
    wrapper = torch.nn.Sequential()  # any non-PreTrainedModel module
    assert heads.lm_head(wrapper) is None
    assert heads.lm_head(model) is model.cls


def test_no_selected_positions():
    model = _prelayernorm().eval()
    input_ids, attention_mask, _ = _inputs()
    with torch.no_grad():
        logits = heads.masked_lm_logits(
            model, input_ids, attention_mask, torch.zeros_like(input_ids, dtype=torch.bool)
        )
    assert logits.shape == (0, 100)


def test_hidden_states_and_encoder_hidden():
    torch.manual_seed(0)
    model = _prelayernorm().eval()
    input_ids, attention_mask, positions = _inputs(4)
    with torch.no_grad():
        result = heads.masked_lm_forward(
            model, input_ids, attention_mask, positions, output_hidden_states=True
        )
        full = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        encoded = heads.encoder_hidden(model, input_ids, attention_mask)
        encoded_all = heads.encoder_hidden(
            model, input_ids, attention_mask, output_hidden_states=True
        )
    assert len(result.hidden_states) == len(full.hidden_states) == 3  # embeddings + 2 layers
    for ours, theirs in zip(result.hidden_states, full.hidden_states, strict=True):
        torch.testing.assert_close(ours, theirs)
    assert encoded.last_hidden_state.shape == (3, 11, 32)
    assert encoded.hidden_states is None
    assert len(encoded_all.hidden_states) == 3
    # The head applied to the encoder output gives the model's logits.
    torch.testing.assert_close(model.lm_head(encoded.last_hidden_state), full.logits)


def test_shape_checks():
    model = _bert().eval()
    input_ids, attention_mask, positions = _inputs()
    with pytest.raises(ValueError):
        heads.masked_lm_logits(model, input_ids, attention_mask, positions[:, :3])
    with pytest.raises(ValueError):
        heads.masked_lm_logits(model, input_ids[0], attention_mask[0], positions[0])


# --- packed, isolated documents ------------------------------------------------------------


def _packed_documents(bos: int = 0, eos: int = 2):
    """Two rows of ``<s> doc </s>`` documents packed without padding, and the documents."""
    g = torch.Generator().manual_seed(3)
    rows, docs = [], []
    for lengths in ([3, 5, 2], [7, 4]):
        row = []
        for n in lengths:
            doc = [bos, *torch.randint(5, 100, (n,), generator=g).tolist(), eos]
            docs.append(doc)
            row += doc
        rows.append(row)
    width = max(map(len, rows))
    rows = [r + r[: width - len(r)] for r in rows]  # second row: a cut-off document at the end
    return torch.tensor(rows), docs


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("build", [_prelayernorm, _bert], ids=["roberta-prelayernorm", "bert"])
def test_isolated_documents_are_encoded_as_if_alone(build, attn):
    from distilnlu.data.corpus import document_ids

    torch.manual_seed(0)
    model = build().eval()
    model.config._attn_implementation = attn
    input_ids, docs = _packed_documents()
    doc_ids = document_ids(input_ids, bos_id=0)
    positions = torch.ones_like(input_ids, dtype=torch.bool)
    with torch.no_grad():
        packed = heads.masked_lm_logits(model, input_ids, None, positions, document_ids=doc_ids)
        alone = [model(input_ids=torch.tensor([d])).logits[0] for d in docs]
    packed_rows = packed.view(*input_ids.shape, -1)
    cursor = {0: 0, 1: 0}
    checked = 0
    for row in range(2):
        for doc in docs[:3] if row == 0 else docs[3:]:
            start = cursor[row]
            torch.testing.assert_close(
                packed_rows[row, start : start + len(doc)],
                alone[docs.index(doc)],
                atol=1e-5,
                rtol=0,
            )
            cursor[row] += len(doc)
            checked += 1
    assert checked == 5
    # The same block without document_ids mixes the documents: the logits differ.
    with torch.no_grad():
        mixed = heads.masked_lm_logits(model, input_ids, None, positions)
    assert (mixed - packed).abs().max() > 1e-3


def test_position_offsets_follow_the_model_family():
    assert heads.position_offset(_prelayernorm()) == 2  # RoBERTa: padding_idx + 1
    assert heads.position_offset(_bert()) == 0


def test_isolated_documents_need_a_model_that_takes_positions():
    from distilnlu.errors import ModelError

    class NoPositions(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, **kwargs):
            raise AssertionError("must not be called")

    input_ids, attention_mask, positions = _inputs()
    with pytest.raises(ModelError, match="packing: concatenated"):
        heads.masked_lm_logits(
            NoPositions(), input_ids, attention_mask, positions, document_ids=attention_mask
        )
