"""An export-only re-statement of the pre-LayerNorm RoBERTa encoder + task heads.

Traced as is, HF's encoder brings its generic machinery into the ONNX graph: mask-format
conversions, position-id bookkeeping, per-layer shape arithmetic, and three separate Q/K/V
projections, each quantised on its own at int8. At batch 1 on one thread those small nodes are a
real share of the time. :class:`LeanClassifier` computes the same function with the same weights
(checked to 1e-5 in the tests, and on every export by the parity check) with Q, K and V in one
matrix multiply and the mask built once.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.roberta_prelayernorm.modeling_roberta_prelayernorm import (
    RobertaPreLayerNormLayer,
    RobertaPreLayerNormModel,
)

from distilnlu.modeling.classifier import EncoderClassifier


def supports_lean(model: EncoderClassifier) -> bool:
    """Only distilnlu's own architecture (any other encoder is traced as HF wrote it)."""
    config = model.encoder.config
    return (
        config.model_type == "roberta-prelayernorm"
        and config.hidden_act == "gelu"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
    )


class _Layer(nn.Module):
    def __init__(self, layer: RobertaPreLayerNormLayer, heads: int) -> None:
        super().__init__()
        attn = layer.attention
        self.heads = heads
        self.ln_attn, self.ln_ffn = attn.LayerNorm, layer.intermediate.LayerNorm
        q, k, v = attn.self.query, attn.self.key, attn.self.value
        self.qkv = nn.Linear(q.in_features, 3 * q.out_features)
        with torch.no_grad():
            self.qkv.weight.copy_(torch.cat([q.weight, k.weight, v.weight]))
            self.qkv.bias.copy_(torch.cat([q.bias, k.bias, v.bias]))
        self.out, self.ffn_in, self.ffn_out = (
            attn.output.dense,
            layer.intermediate.dense,
            (layer.output.dense),
        )

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, width = x.shape
        qkv = self.qkv(self.ln_attn(x)).view(b, t, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, T, head_dim]
        scores = q @ k.transpose(-1, -2) * (width // self.heads) ** -0.5 + bias
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, width)
        x = x + self.out(context)
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ln_ffn(x))))


class LeanClassifier(nn.Module):
    """``forward(input_ids [B, T], attention_mask [B, T]) -> (intent_logits [B, I],
    slot_logits [B, T, S])``, equal to the :class:`EncoderClassifier` it is built from (eval
    mode: no dropout)."""

    def __init__(self, model: EncoderClassifier) -> None:
        super().__init__()
        enc = model.encoder
        if not (supports_lean(model) and isinstance(enc, RobertaPreLayerNormModel)):
            raise ValueError("LeanClassifier takes pre-LayerNorm RoBERTa encoders only")
        emb = enc.embeddings
        self.pad = emb.padding_idx
        self.words, self.positions, self.emb_norm = (
            emb.word_embeddings,
            emb.position_embeddings,
            emb.LayerNorm,
        )
        self.token_type = nn.Parameter(emb.token_type_embeddings.weight[0].detach().clone())
        heads = enc.config.num_attention_heads
        # A ModuleList yields plain Modules; a RobertaPreLayerNormModel's layers are these.
        self.layers = nn.ModuleList(
            _Layer(cast(RobertaPreLayerNormLayer, layer), heads) for layer in enc.encoder.layer
        )
        self.final_norm = enc.LayerNorm
        self.pooling = model.pooling
        self.intent_head, self.slot_head = model.intent_head, model.slot_head
        self.eval()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # RoBERTa numbers positions from pad + 1 over non-pad *tokens* (not the attention mask)
        real = input_ids.ne(self.pad).to(torch.long)
        positions = torch.cumsum(real, dim=1) * real + self.pad
        x = self.emb_norm(self.words(input_ids) + self.positions(positions) + self.token_type)
        keep = attention_mask[:, None, None, :].to(x.dtype)  # [B, 1, 1, T]
        bias = (1.0 - keep) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        hidden = self.final_norm(x)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        slots = self.slot_head(hidden) if self.slot_head is not None else None
        return self.intent_head(pooled), slots
