"""The task-aware distillation objective: a student intent + slot model against a fine-tuned one.

Shapes: ``B`` batch, ``T`` sub-tokens, ``I`` intents, ``S`` slot tags, ``H`` hidden width.

The teacher's intent and slot scores come with each batch (scored once per utterance before
training, :mod:`distilnlu.data.task_distill`): the teacher is fixed and in eval mode, so scoring
it again every epoch would only cost time. Hidden-state matching needs the teacher's per-layer
states, which are too large to keep; with ``hidden_weight > 0`` the teacher encoder runs on each
batch, under ``torch.inference_mode``, its states cloned once so autograd may save them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from distilnlu.modeling.classifier import EncoderClassifier
from distilnlu.training.losses import HiddenStateLoss, TaskDistillLoss
from distilnlu.training.objectives import ClassificationObjective, EarlyStopping


class TaskDistillStudent(nn.Module):
    """What the optimizer trains: the student classifier (``inner``, what the stage saves) plus
    the hidden-state projections, whose loss is computed inside ``forward`` so that a DDP/FSDP
    wrapper sees every trainable parameter in its own forward call."""

    def __init__(self, student: EncoderClassifier, hidden_loss: HiddenStateLoss | None) -> None:
        super().__init__()
        self.inner = student
        self.hidden_loss = hidden_loss

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        teacher_hidden: tuple[torch.Tensor, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """``(intent_logits [B, I], slot_logits [B, T, S] or None, {"hidden": MSE} or {})``."""
        wants_states = teacher_hidden is not None and self.hidden_loss is not None
        intent, slots, states = self.inner.forward_states(input_ids, attention_mask, wants_states)
        extra: dict[str, torch.Tensor] = {}
        if wants_states and states is not None and teacher_hidden is not None:
            assert self.hidden_loss is not None
            extra["hidden"] = self.hidden_loss(states, teacher_hidden, attention_mask)
        return intent, slots, extra


class TaskDistillObjective(ClassificationObjective):
    """:class:`TaskDistillLoss` (+ ``hidden_weight`` · hidden MSE), early stopping on dev.

    Batches come from :func:`distilnlu.data.task_distill.collate_distill`. ``teacher`` is only
    needed for hidden-state matching (the soft targets are in the batch).
    """

    def __init__(
        self,
        loss: TaskDistillLoss,
        stopper: EarlyStopping,
        score: Callable[[dict], float],
        on_best: Callable[[int], None] | None = None,
        teacher: EncoderClassifier | None = None,
        hidden_weight: float = 0.0,
    ) -> None:
        super().__init__(loss.slot_weight, stopper, score, on_best)
        self.distill_loss, self.hidden_weight = loss, hidden_weight
        self.teacher = teacher.eval() if teacher is not None and hidden_weight > 0 else None

    def teacher_states(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...] | None:
        if self.teacher is None:
            return None
        self.teacher.to(batch["input_ids"].device)
        with torch.inference_mode():
            _, _, states = self.teacher.forward_states(
                batch["input_ids"], batch["attention_mask"], hidden_states=True
            )
        assert states is not None  # asked for
        return tuple(s.clone() for s in states)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        intent, slots, extra = model(
            batch["input_ids"], batch["attention_mask"], self.teacher_states(batch)
        )
        losses = self.distill_loss(
            intent,
            batch["teacher_intent"],
            batch["intent_labels"],
            slots,
            batch.get("teacher_slots"),
            batch.get("slot_labels"),
            batch.get("word_mask"),
        )
        if "hidden" in extra:
            losses["loss"] = losses["loss"] + self.hidden_weight * extra["hidden"]
            losses["hidden"] = extra["hidden"].detach()
        return losses
