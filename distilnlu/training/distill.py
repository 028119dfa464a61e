"""The distillation objective: MLM CE + soft CE against a teacher schedule (+ hidden, attention).

Shapes: ``B`` batch, ``T`` sequence length, ``N`` masked tokens in the batch, ``V`` vocabulary,
``K`` cached teacher logits per token.

Both models run their LM heads on the ``N`` masked rows only. The teacher runs under
``torch.inference_mode`` in the student's precision; its outputs are cloned once, outside
inference mode, because autograd may not save inference tensors for the backward pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import PreTrainedModel

from distilnlu.config import DistillLossConfig
from distilnlu.data.masking import MaskingConfig
from distilnlu.errors import ModelError
from distilnlu.modeling.masked_lm import masked_lm_forward
from distilnlu.training.losses import (
    AttentionKLLoss,
    HiddenStateLoss,
    MaskedLMLoss,
    SoftCrossEntropyLoss,
    mlm_and_soft_ce,
)
from distilnlu.training.objectives import Event, MLMObjective, Objective, TrainedModule
from distilnlu.training.schedule import TeacherSchedule

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class DistillStudent(TrainedModule):
    """What the optimizer trains: the student plus the hidden-state projections.

    The matching losses are computed inside ``forward`` so that a DDP/FSDP wrapper sees every
    trainable parameter used in its own forward call.
    """

    def __init__(
        self,
        student: PreTrainedModel,
        hidden_loss: HiddenStateLoss | None = None,
        attention_loss: AttentionKLLoss | None = None,
    ) -> None:
        super().__init__()
        self.inner = student
        self.hidden_loss = hidden_loss
        self.attention_loss = attention_loss

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor,
        teacher_hidden: tuple[torch.Tensor, ...] | None = None,
        teacher_attentions: tuple[torch.Tensor, ...] | None = None,
        document_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Student logits ``[N, V]`` at ``positions`` and the matching losses asked for."""
        out = masked_lm_forward(
            self.inner,
            input_ids,
            attention_mask,
            positions,
            output_hidden_states=teacher_hidden is not None,
            output_attentions=teacher_attentions is not None,
            document_ids=document_ids,
        )
        extra: dict[str, torch.Tensor] = {}
        if teacher_hidden is not None and self.hidden_loss is not None:
            extra["hidden"] = self.hidden_loss(out.hidden_states, teacher_hidden, attention_mask)
        if teacher_attentions is not None and self.attention_loss is not None:
            extra["attention"] = self.attention_loss(
                out.attentions, teacher_attentions, attention_mask
            )
        return out.logits, extra


def content_key(input_ids: torch.Tensor) -> int:
    """A stable 63-bit key of a batch's token ids (cache key and mask seed of fixed batches)."""
    digest = hashlib.blake2b(input_ids.cpu().numpy().tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _cloned(states: tuple[torch.Tensor, ...] | None, what: str) -> tuple[torch.Tensor, ...]:
    """Copies of the teacher's per-layer ``states``, which were asked for."""
    if states is None:
        raise ModelError(f"the teacher returned no {what} although they were asked for")
    return tuple(s.clone() for s in states)


class DistillObjective(Objective[torch.Tensor]):
    """Distillation from the active teacher of ``schedule``.

    Args:
        tokenizer: the student's (and every teacher's) tokenizer.
        load_teacher: builds a teacher for inference from its reference, on the given device.
        cache_top_k: > 0 caches the teacher's top-k logits per distinct batch; masks are then
            drawn from the batch content, so a repeated batch gets the same masks (static
            masking) and the cache stays valid.
        monitor: eval corpus whose loss tells the schedule that the student has converged.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        masking: MaskingConfig,
        loss: DistillLossConfig,
        schedule: TeacherSchedule,
        load_teacher: Callable[[str, torch.device], PreTrainedModel],
        cache_top_k: int = 0,
        monitor: str | None = None,
        isolate_documents: bool = False,
    ) -> None:
        self.monitor = monitor
        self.mlm = MLMObjective(tokenizer, masking, isolate_documents)
        self.weights = loss
        self.schedule = schedule
        self.load_teacher = load_teacher
        self.ce = MaskedLMLoss()
        self.soft = SoftCrossEntropyLoss(loss.temperature)
        self.cache_top_k = cache_top_k
        self.cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._teacher: PreTrainedModel | None = None
        self._teacher_index = -1

    # ------------------------------------------------------------------ loop hooks

    def prepare(self, input_ids: torch.Tensor, batch_seed: int) -> dict[str, torch.Tensor]:
        if not self.cache_top_k:
            return self.mlm.prepare(input_ids, batch_seed)
        key = content_key(input_ids)
        batch = self.mlm.prepare(input_ids, key)
        batch["cache_key"] = torch.tensor(key)
        return batch

    def after_step(self, step: int) -> Event | None:
        switch = self.schedule.after_step(step)
        return Event({"teacher_switch": switch.__dict__}) if switch else None

    def after_eval(self, step: int, evaluation: dict[str, Any]) -> Event | None:
        if self.monitor is None or self.monitor not in evaluation:
            return None
        switch = self.schedule.observe(step, float(evaluation[self.monitor]["loss"]))
        return Event({"teacher_switch": switch.__dict__}) if switch else None

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state["schedule"])

    # ------------------------------------------------------------------ the loss

    def teacher(self, device: torch.device) -> PreTrainedModel:
        """The active teacher; the previous one is released when the schedule moves on."""
        if self._teacher_index != self.schedule.index:
            self._teacher = None  # free the old teacher's memory before loading the next
            self._teacher = self.load_teacher(self.schedule.current.teacher, device)
            self._teacher_index = self.schedule.index
        assert self._teacher is not None
        return self._teacher

    def release_teacher(self) -> None:
        """Drop the teacher and the cache (end of stage)."""
        self._teacher, self._teacher_index = None, -1
        self.cache.clear()

    def _teacher_outputs(
        self,
        batch: dict[str, torch.Tensor],
        positions: torch.Tensor,
        want_hidden: bool,
        want_attn: bool,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        teacher = self.teacher(batch["input_ids"].device)
        with torch.inference_mode():
            out = masked_lm_forward(
                teacher,
                batch["input_ids"],
                batch["attention_mask"],
                positions,
                output_hidden_states=want_hidden,
                output_attentions=want_attn,
                document_ids=batch.get("document_ids"),
            )
        # Clone outside inference mode: autograd must be able to save these for backward.
        hidden = _cloned(out.hidden_states, "hidden states") if want_hidden else None
        attentions = _cloned(out.attentions, "attentions") if want_attn else None
        return out.logits, hidden, attentions

    def _cached_targets(
        self, batch: dict[str, torch.Tensor], positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (self.schedule.index, int(batch["cache_key"]))
        if key not in self.cache:
            logits, _, _ = self._teacher_outputs(batch, positions, False, False)
            values, indices = logits.float().topk(self.cache_top_k, dim=-1)
            self.cache[key] = (values.half(), indices)
        values, indices = self.cache[key]
        return values.clone(), indices.clone()

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        w = self.weights
        positions = batch["labels"] != -100
        want_hidden, want_attn = w.hidden_weight > 0, w.attention_weight > 0
        indices = None
        if self.cache_top_k:
            t_logits, indices = self._cached_targets(batch, positions)
            t_hidden = t_attn = None
        else:
            t_logits, t_hidden, t_attn = self._teacher_outputs(
                batch, positions, want_hidden, want_attn
            )
        logits, extra = model(
            batch["input_ids"],
            batch["attention_mask"],
            positions,
            t_hidden,
            t_attn,
            batch.get("document_ids"),
        )
        labels = batch["labels"][positions]
        if indices is None and w.temperature == 1.0:
            mlm, soft = mlm_and_soft_ce(logits, labels, t_logits)  # one softmax pass, fused grad
        else:
            mlm, soft = self.ce(logits, labels), self.soft(logits, t_logits, indices)
        loss = w.mlm_weight * mlm + w.soft_weight * soft
        out = {"mlm": mlm.detach(), "soft": soft.detach()}
        if "hidden" in extra:
            loss = loss + w.hidden_weight * extra["hidden"]
            out["hidden"] = extra["hidden"].detach()
        if "attention" in extra:
            loss = loss + w.attention_weight * extra["attention"]
            out["attention"] = extra["attention"].detach()
        return {"loss": loss, **out}
