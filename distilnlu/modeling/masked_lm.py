"""Masked-LM logits at masked positions only (DESIGN.md §5 "the LM head runs on masked positions").

A masked-LM forward normally projects every position onto the vocabulary: ``[B, T, V]`` logits,
of which MLM uses ~15%. For the model families listed in :data:`EFFICIENT_HEADS` we run the
encoder (``model.base_model``), gather the hidden states of the masked positions and apply the LM
head to those ``N`` rows only, which saves most of the vocabulary projection's FLOPs and memory
(``V`` is 30k-250k). Any other ``AutoModelForMaskedLM`` takes the plain full forward and the
logits are indexed afterwards, so results are the same on both paths.

The efficient path calls the encoder and the head as sub-modules, which a DDP/FSDP wrapper's
forward would not see, so wrapped models (DDP, FSDP, ``torch.compile``) take the full-forward path:
always correct, but without the saving.

Packed blocks of isolated documents (``training.packing: isolated``) come with ``document_ids``
``[B, T]``; :func:`document_inputs` turns them into a block-diagonal attention mask and positions
that restart at every document, so each document is encoded exactly as it would be alone. A
model switched to varlen attention (:mod:`distilnlu.modeling.varlen`) gets no mask, only the
documents' boundaries.

Shapes: ``B`` batch, ``T`` sequence length, ``H`` hidden size, ``V`` vocabulary, ``N`` number of
selected positions.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from distilnlu.errors import ModelError
from distilnlu.modeling.varlen import VARLEN, segment_lengths

EFFICIENT_HEADS: dict[str, str] = {
    # model_type -> attribute holding the MLM head; for these the masked-LM forward is exactly
    # ``head(model.base_model(...)[0])``.
    "roberta": "lm_head",
    "roberta-prelayernorm": "lm_head",
    "xlm-roberta": "lm_head",
    "xlm-roberta-xl": "lm_head",
    "camembert": "lm_head",
    "data2vec-text": "lm_head",
    "mpnet": "lm_head",
    "bert": "cls",
    "ernie": "cls",
    "megatron-bert": "cls",
    "roformer": "cls",
    "deberta": "cls",
    "deberta-v2": "cls",
}


@dataclass
class MaskedLMResult:
    """What :func:`masked_lm_forward` returns.

    Attributes:
        logits: ``[N, V]`` logits at the selected positions, row-major order.
        hidden_states: per-layer hidden states (embeddings first), each ``[B, T, H]``, when asked
            for with ``output_hidden_states=True``; otherwise None.
    """

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def _is_fsdp(model: nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch built without distributed support
        return False
    return isinstance(model, FSDPModule)


def lm_head(model: nn.Module) -> nn.Module | None:
    """The MLM head module usable on gathered hidden states, or None if the model is not known.

    Known: the model types in :data:`EFFICIENT_HEADS` (RoBERTa family incl.
    ``RobertaPreLayerNormForMaskedLM`` and XLM-R, which use ``lm_head``; BERT family, which uses
    ``cls``), when the model actually has that attribute. A wrapped model (DDP, FSDP,
    ``torch.compile``) gets None, because calling its sub-modules directly would bypass the
    wrapper's forward (gradient sync, parameter gathering).
    """
    if not isinstance(model, PreTrainedModel) or _is_fsdp(model):
        # Wrappers (DDP, FSDP, torch.compile) must see the forward call: take the full path.
        return None
    config = getattr(model, "config", None)
    attribute = EFFICIENT_HEADS.get(getattr(config, "model_type", None) or "")
    if attribute is None:
        return None
    head = getattr(model, attribute, None)
    if not isinstance(head, nn.Module):
        return None
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        return None
    return head


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP (``.module``) or ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def position_offset(model: nn.Module) -> int:
    """The position id a model gives the first token of a sequence it numbers itself.

    RoBERTa-family embeddings count from ``padding_idx + 1``; BERT-style ones from 0.
    """
    embeddings = getattr(getattr(_unwrap(model), "base_model", None), "embeddings", None)
    if embeddings is not None and hasattr(embeddings, "create_position_ids_from_input_ids"):
        return int(embeddings.padding_idx) + 1
    return 0


def document_positions(model: nn.Module, document_ids: torch.Tensor) -> torch.Tensor:
    """Position ids ``[B, T]`` restarting at :func:`position_offset` where a document starts."""
    size = document_ids.shape[1]
    index = torch.arange(size, device=document_ids.device).expand_as(document_ids)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    first = torch.cummax(torch.where(starts, index, torch.zeros_like(index)), dim=1).values
    return index - first + position_offset(model)


def document_inputs(
    model: nn.Module, document_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-diagonal 4-D attention mask ``[B, 1, T, T]`` and position ids ``[B, T]``.

    Token ``i`` may attend to token ``j`` when both belong to the same document (and ``j`` is not
    padding); positions restart at :func:`position_offset` where a document starts. The mask is
    boolean (True: attend) for SDPA and additive in the model's dtype for eager attention, which
    adds it to the scores.
    """
    if document_ids.dim() != 2 or (
        attention_mask is not None and document_ids.shape != attention_mask.shape
    ):
        raise ValueError(
            f"document_ids must be [B, T] like input_ids, got shape {tuple(document_ids.shape)}"
        )
    size = document_ids.shape[1]
    positions = document_positions(model, document_ids)
    allowed = document_ids[:, :, None] == document_ids[:, None, :]
    if attention_mask is not None:
        allowed &= attention_mask.bool()[:, None, :]
    # Every query keeps itself, so no row is fully masked (that would give NaN in softmax).
    allowed |= torch.eye(size, dtype=torch.bool, device=allowed.device)
    config = getattr(_unwrap(model), "config", None)
    if getattr(config, "_attn_implementation", None) == "eager":
        dtype = next(model.parameters()).dtype
        additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return additive.masked_fill(~allowed, torch.finfo(dtype).min)[:, None], positions
    return allowed[:, None], positions


@functools.cache
def _takes_position_ids(model_class: type[nn.Module]) -> bool:
    # Cached per class: this is asked on every training step.
    return "position_ids" in inspect.signature(model_class.forward).parameters


def _model_inputs(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    document_ids: torch.Tensor | None,
) -> dict[str, Any]:
    """Keyword inputs of the encoder: plain, or with the per-document mask and positions."""
    if document_ids is None:
        return {"input_ids": input_ids, "attention_mask": attention_mask}
    # mypy checks a class object against Hashable through the class's instance ``__hash__``
    # (unbound, so the signature does not match); class objects are hashable.
    if not _takes_position_ids(type(_unwrap(model))):  # type: ignore[arg-type]
        raise ModelError(
            f"{type(_unwrap(model)).__name__} takes no position_ids, so packed documents cannot"
            " be isolated; set training.packing: concatenated"
        )
    config = getattr(_unwrap(model), "config", None)
    if getattr(config, "_attn_implementation", None) == VARLEN:
        # No mask at all: the documents' boundaries go to the varlen kernel (modeling/varlen.py).
        positions = document_positions(model, document_ids)
        lengths = segment_lengths(document_ids, attention_mask)
        plain = {"input_ids": input_ids, "attention_mask": None, "position_ids": positions}
        return plain | lengths
    mask, positions = document_inputs(model, document_ids, attention_mask)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}


def _check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)}, "
            f"expected {tuple(input_ids.shape)}"
        )


def encoder_hidden(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    document_ids: torch.Tensor | None = None,
) -> BaseModelOutput:
    """Run the encoder of a masked LM (no LM head).

    Returns a :class:`BaseModelOutput` with ``last_hidden_state`` [B, T, H] (the encoder's final
    output, i.e. what the LM head consumes) and, if asked, ``hidden_states`` (embeddings first,
    then one [B, T, H] per layer). ``document_ids`` [B, T]: see :func:`document_inputs`.
    """
    _check_inputs(input_ids, attention_mask)
    inputs = _model_inputs(model, input_ids, attention_mask, document_ids)
    base = model.base_model
    if base is model:
        # No separate encoder sub-module: take the last hidden state from a full forward.
        out = model(
            **inputs,
            output_hidden_states=True,
            output_attentions=output_attentions,
            return_dict=True,
        )
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is None:
            hidden = out.hidden_states[-1]
        return BaseModelOutput(
            last_hidden_state=hidden,
            hidden_states=out.hidden_states if output_hidden_states else None,
            attentions=getattr(out, "attentions", None),
        )
    out = base(
        **inputs,
        output_hidden_states=output_hidden_states,
        output_attentions=output_attentions,
        return_dict=True,
    )
    return BaseModelOutput(
        last_hidden_state=out[0],
        hidden_states=getattr(out, "hidden_states", None) if output_hidden_states else None,
        attentions=getattr(out, "attentions", None),
    )


def masked_lm_forward(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor,
    *,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    document_ids: torch.Tensor | None = None,
) -> MaskedLMResult:
    """Logits at ``positions`` [B, T] (bool) and, if asked, the encoder's hidden states.

    The LM head runs on the ``N = positions.sum()`` selected rows only when :func:`lm_head` knows
    the model; otherwise a full forward is indexed. Rows come in row-major (batch, then time)
    order, matching ``labels[positions]``. ``document_ids`` [B, T] (packed isolated documents)
    restricts attention and restarts positions per document (:func:`document_inputs`).
    """
    _check_inputs(input_ids, attention_mask)
    if positions.shape != input_ids.shape:
        raise ValueError(
            f"positions has shape {tuple(positions.shape)}, expected {tuple(input_ids.shape)}"
        )
    positions = positions.to(device=input_ids.device, dtype=torch.bool)
    head = lm_head(model)
    if head is not None:
        enc = encoder_hidden(
            model, input_ids, attention_mask, output_hidden_states, output_attentions, document_ids
        )
        hidden = enc.last_hidden_state
        assert hidden is not None  # HF types every output field Optional; encoder_hidden sets it
        selected = hidden[positions]  # [N, H]
        return MaskedLMResult(
            logits=head(selected), hidden_states=enc.hidden_states, attentions=enc.attentions
        )
    out = model(
        **_model_inputs(model, input_ids, attention_mask, document_ids),
        output_hidden_states=output_hidden_states,
        output_attentions=output_attentions,
        return_dict=True,
    )
    return MaskedLMResult(
        logits=out.logits[positions],
        hidden_states=out.hidden_states if output_hidden_states else None,
        attentions=getattr(out, "attentions", None) if output_attentions else None,
    )


def masked_lm_logits(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor,
    document_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits [N, V] at ``positions`` [B, T] == True (N = positions.sum()), row-major order.

    Same values as ``model(input_ids, attention_mask).logits[positions]``; see
    :func:`masked_lm_forward` for how the vocabulary projection is limited to the N rows.
    """
    return masked_lm_forward(
        model, input_ids, attention_mask, positions, document_ids=document_ids
    ).logits
