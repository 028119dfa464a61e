"""Document-isolated attention without a dense mask: variable-length (varlen) attention.

Packed isolated documents (``training.packing: isolated``) must each attend only to themselves.
The default path says so with a block-diagonal ``[B, 1, T, T]`` mask
(:func:`distilnlu.modeling.masked_lm.document_inputs`), which SDPA accepts but which rules out its
flash kernels on a GPU: with a dense mask SDPA falls back to the memory-efficient or math kernel.

This module registers the attention implementation :data:`VARLEN` with ``transformers``. The
model is then called with no mask at all and with the documents' boundaries as
``cu_seq_lens_q`` / ``cu_seq_lens_k`` (cumulative lengths over the flattened ``B * T`` tokens)
and ``max_length_q`` / ``max_length_k``, the keyword arguments transformers passes down to every
attention call. Each document, and each run of padding, is one sequence:

* on a CUDA device: ``torch.nn.attention.varlen.varlen_attn``, FlashAttention's variable-length
  kernel, which never forms a mask;
* elsewhere: SDPA on a nested (jagged) tensor of the documents, the same function (FlexAttention
  would need no mask either, but has no backward pass on the CPU in torch 2.13).

Attention dropout is not supported by the varlen kernel: with :data:`VARLEN` the model must have
``attention_probs_dropout_prob`` 0 (:func:`use_varlen` checks it). Any call without
``cu_seq_lens_q`` (an unpacked batch) takes plain SDPA.

Shapes: ``B`` batch, ``T`` length, ``h`` heads, ``d`` head size, ``S`` sequences (documents and
padding runs) in the batch.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from distilnlu.errors import ConfigError

VARLEN = "distilnlu_varlen"


def segment_lengths(
    document_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> dict[str, Any]:
    """The varlen keyword arguments of a packed batch.

    A sequence starts at every row start, at every change of document id, and wherever the
    attention mask changes (padding is its own sequence, so no document attends to it).
    Returns ``cu_seq_lens_q`` / ``cu_seq_lens_k`` (``[S + 1]`` int32, starting at 0) and
    ``max_length_q`` / ``max_length_k`` (the longest sequence, a Python int).
    """
    rows, size = document_ids.shape
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    if attention_mask is not None:
        starts[:, 1:] |= attention_mask[:, 1:] != attention_mask[:, :-1]
    begin = torch.nonzero(starts.reshape(-1)).reshape(-1)
    end = torch.tensor([rows * size], device=begin.device)
    cumulative = torch.cat([begin, end]).to(torch.int32)
    longest = int((cumulative[1:] - cumulative[:-1]).max())  # one host sync per step
    return {
        "cu_seq_lens_q": cumulative,
        "cu_seq_lens_k": cumulative,
        "max_length_q": longest,
        "max_length_k": longest,
    }


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    """``[B, h, T, d]`` -> ``[B * T, h, d]``."""
    batch, heads, size, dim = tensor.shape
    return tensor.transpose(1, 2).reshape(batch * size, heads, dim)


def _nested_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor, scale: float | None
) -> torch.Tensor:
    """Per-sequence SDPA on ``[B * T, h, d]`` tokens split at ``offsets``; ``[B * T, h, d]``."""

    def nest(t: torch.Tensor) -> torch.Tensor:
        jagged = torch.nested.nested_tensor_from_jagged(t, offsets=offsets.to(torch.int64))
        return jagged.transpose(1, 2)  # [S, h, j, d]

    with warnings.catch_warnings():
        # torch warns that nested tensors are a prototype API, from inside its own SDPA.
        warnings.simplefilter("ignore", UserWarning)
        out = F.scaled_dot_product_attention(nest(q), nest(k), nest(v), scale=scale)
    return out.transpose(1, 2).values()


def varlen_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: ``query``/``key``/``value`` ``[B, h, T, d]``
    -> ``([B, T, h, d], None)``."""
    offsets = kwargs.pop("cu_seq_lens_q", None)
    if offsets is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if dropout:
        raise ConfigError("varlen attention has no attention dropout; set the model's dropout to 0")
    batch, heads, size, dim = query.shape
    q, k, v = _flat(query), _flat(key), _flat(value)
    if query.is_cuda:
        from torch.nn.attention.varlen import varlen_attn

        longest = kwargs["max_length_q"]
        out = varlen_attn(q, k, v, offsets, offsets, longest, longest, scale=scaling)
        assert isinstance(out, torch.Tensor)  # a tuple only when auxiliary outputs are asked
    else:
        out = _nested_sdpa(q, k, v, offsets, scaling)
    return out.reshape(batch, size, heads, dim), None


AttentionInterface.register(VARLEN, varlen_attention)
# An unpacked padded batch still needs its padding mask, built as for SDPA (transformers gives an
# implementation without a registered mask function no mask at all). A packed batch passes none.
AttentionMaskInterface.register(VARLEN, sdpa_mask)


def use_varlen(model: PreTrainedModel, trained: bool = True) -> PreTrainedModel:
    """Switch ``model`` (in place) to :data:`VARLEN` attention. A model to be ``trained`` must
    have no attention dropout (a frozen teacher runs in eval mode, without dropout)."""
    config = model.config
    dropout = float(getattr(config, "attention_probs_dropout_prob", 0.0) or 0.0)
    if trained and dropout:
        raise ConfigError(
            "training.attention: varlen needs attention dropout 0, the model has"
            f" attention_probs_dropout_prob={dropout}; set the"
            " model's dropout: 0 or training.attention: sdpa"
        )
    model.set_attn_implementation(VARLEN)
    return model


def training_attention(model: PreTrainedModel, kernel: str, trained: bool = True) -> None:
    """Apply ``training.attention`` to a model a stage trains (or runs, ``trained=False``)."""
    if kernel == "varlen":
        use_varlen(model, trained)
    elif kernel == "eager":
        model.set_attn_implementation("eager")


def saved_attention(model: PreTrainedModel) -> None:
    """Back to SDPA before saving: a saved folder must load in plain transformers, where
    :data:`VARLEN` is not registered, and with the kernel every other folder has."""
    if model.config._attn_implementation in (VARLEN, "eager"):
        model.set_attn_implementation("sdpa")
