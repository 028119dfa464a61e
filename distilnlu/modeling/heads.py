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

Shapes: ``B`` batch, ``T`` sequence length, ``H`` hidden size, ``V`` vocabulary, ``N`` number of
selected positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

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
) -> BaseModelOutput:
    """Run the encoder of a masked LM (no LM head).

    Returns a :class:`BaseModelOutput` with ``last_hidden_state`` [B, T, H] (the encoder's final
    output, i.e. what the LM head consumes) and, if asked, ``hidden_states`` (embeddings first,
    then one [B, T, H] per layer).
    """
    _check_inputs(input_ids, attention_mask)
    base = model.base_model
    if base is model:
        # No separate encoder sub-module: take the last hidden state from a full forward.
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
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
        input_ids=input_ids,
        attention_mask=attention_mask,
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
) -> MaskedLMResult:
    """Logits at ``positions`` [B, T] (bool) and, if asked, the encoder's hidden states.

    The LM head runs on the ``N = positions.sum()`` selected rows only when :func:`lm_head` knows
    the model; otherwise a full forward is indexed. Rows come in row-major (batch, then time)
    order, matching ``labels[positions]``.
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
            model, input_ids, attention_mask, output_hidden_states, output_attentions
        )
        selected = enc.last_hidden_state[positions]  # [N, H]
        return MaskedLMResult(
            logits=head(selected), hidden_states=enc.hidden_states, attentions=enc.attentions
        )
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
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
) -> torch.Tensor:
    """Logits [N, V] at ``positions`` [B, T] == True (N = positions.sum()), row-major order.

    Same values as ``model(input_ids, attention_mask).logits[positions]``; see
    :func:`masked_lm_forward` for how the vocabulary projection is limited to the N rows.
    """
    return masked_lm_forward(model, input_ids, attention_mask, positions).logits
