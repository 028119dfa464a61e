"""Losses as small modules with documented shapes.

The LM head runs on masked positions only, so losses take ``[N, V]`` logits for the ``N`` masked
tokens of a batch rather than ``[B, T, V]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLMLoss(nn.Module):
    """Mean cross-entropy over masked tokens.

    Args:
        logits: ``[N, V]`` scores at the ``N`` masked positions.
        labels: ``[N]`` original token ids at those positions.

    Returns:
        Scalar mean CE; computed in fp32 for stability under mixed precision.
    """

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape[0] != labels.shape[0]:
            shapes = f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)}"
            raise ValueError(f"{shapes} differ in their first dimension")
        return F.cross_entropy(logits.float(), labels)
