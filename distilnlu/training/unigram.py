"""Start a fresh masked LM's output bias at the log unigram distribution of its MLM labels.

Why: a fresh model's first job is to predict token frequencies. If the output bias has to learn
them (Adam moves it by ~lr per step, so that takes thousands of steps), the encoder writes a
shared "frequency" vector into every position instead; the positions collapse onto it and
attention cannot learn (the MLM "unigram plateau", docs/models.md). Starting the bias at the
answer removes that pressure. The counts come from a separate pass over the stage's own stream,
so the training data order is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING

import torch
from torch import nn

from distilnlu.training.loop import batch_seed

if TYPE_CHECKING:
    from distilnlu.training.objectives import Objective


def output_bias(model: nn.Module) -> nn.Parameter | None:
    """The LM decoder's bias parameter, or None if the model has none."""
    get_head = getattr(model, "get_output_embeddings", None)  # HF models have it
    head = get_head() if get_head is not None else None
    bias = getattr(head, "bias", None)
    return bias if isinstance(bias, nn.Parameter) else None


def init_output_bias(
    model: nn.Module,
    objective: Objective[torch.Tensor],
    batches: Iterator[torch.Tensor],
    seed: int,
    num_batches: int = 50,
) -> bool:
    """Set the bias to ``log p(token)`` over the labels of ``num_batches`` prepared batches.

    ``objective.prepare`` draws the masks, so the counts follow the 80/10/10 label distribution.
    Unseen tokens get a pseudo-count of 0.1. Returns False (and changes nothing) when the model
    has no output bias or the batches hold no labels.
    """
    bias = output_bias(model)
    if bias is None:
        return False
    counts = torch.zeros(bias.shape[0], dtype=torch.float64)
    for index, ids in enumerate(islice(batches, num_batches)):
        labels = objective.prepare(ids, batch_seed(seed, index))["labels"]
        labels = labels[labels != -100]
        counts += torch.bincount(labels, minlength=counts.shape[0])[: counts.shape[0]].double()
    if counts.sum() == 0:
        return False
    log_p = (counts + 0.1).log() - (counts + 0.1).sum().log()
    with torch.no_grad():
        bias.copy_(log_p.to(bias.dtype))
    return True
