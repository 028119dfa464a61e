"""Losses as small modules with documented shapes.

The LM head runs on masked positions only, so losses take ``[N, V]`` logits for the ``N`` masked
tokens of a batch rather than ``[B, T, V]``.
"""

from __future__ import annotations

from typing import Any

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


def _check_same_vocabulary(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} differ; do teacher and student share a tokenizer?"
        )


class SoftCrossEntropyLoss(nn.Module):
    """Cross-entropy of the student against the teacher's softened distribution.

    ``T² · mean_N Σ_V softmax(t/T) · -log_softmax(s/T)``; the ``T²`` keeps gradient magnitudes
    comparable across temperatures (Hinton et al., 2015).

    Args:
        student_logits: ``[N, V]`` student scores at the ``N`` masked positions.
        teacher_logits: ``[N, V]`` teacher scores at the same positions, or ``[N, K]`` top-k
            scores when ``teacher_indices`` is given.
        teacher_indices: optional ``[N, K]`` vocabulary ids of cached top-k teacher scores; the
            teacher distribution is then renormalised over those K ids (the tail is dropped).

    Returns:
        Scalar, computed in fp32.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        teacher_indices: torch.Tensor | None = None,
    ) -> torch.Tensor:
        t = self.temperature
        log_q = F.log_softmax(student_logits.float() / t, dim=-1)
        if teacher_indices is not None:
            log_q = log_q.gather(-1, teacher_indices)
        else:
            _check_same_vocabulary(student_logits, teacher_logits)
        p = F.softmax(teacher_logits.float() / t, dim=-1)
        return -(p * log_q).sum(-1).mean() * t * t


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer matched to each student layer, spread evenly, last to last.

    Student layer ``l`` (1-based) maps to teacher layer ``round(l · L_t / L_s)``; e.g. 2 student
    layers and 6 teacher layers give ``[3, 6]`` (TinyBERT's uniform strategy).
    """
    if student_layers < 1 or teacher_layers < 1:
        raise ValueError("both models need at least one layer")
    ratio = teacher_layers / student_layers
    return [round(layer * ratio) for layer in range(1, student_layers + 1)]


class HiddenStateLoss(nn.Module):
    """TinyBERT-style hidden-state matching: ``Σ_l MSE(W_l · h_s(l), h_t(m(l)))``.

    Args (forward):
        student_hidden: per-layer student states ``[B, T, H_s]``, embeddings first (``L_s + 1``).
        teacher_hidden: per-layer teacher states ``[B, T, H_t]``, embeddings first.
        attention_mask: ``[B, T]``, 1 for real tokens; padding does not count.

    ``layer_map[l-1]`` is the teacher layer (1-based) matched to student layer ``l``; the
    embedding outputs are matched too (0 → 0). ``W_l`` is a learned ``H_s → H_t`` projection when
    the widths differ, the identity otherwise. The MSE is a mean over real tokens and hidden
    units, summed over matched layers.
    """

    def __init__(self, student_width: int, teacher_width: int, layer_map: list[int]) -> None:
        super().__init__()
        self.layer_map = [0, *layer_map]
        self.teacher_width = teacher_width
        same = student_width == teacher_width
        self.projections = nn.ModuleList(
            nn.Identity() if same else nn.Linear(student_width, teacher_width)
            for _ in self.layer_map
        )

    def forward(
        self,
        student_hidden: tuple[torch.Tensor, ...] | list[torch.Tensor],
        teacher_hidden: tuple[torch.Tensor, ...] | list[torch.Tensor],
        attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        if len(student_hidden) != len(self.layer_map):
            raise ValueError(
                f"expected {len(self.layer_map)} student hidden states (embeddings + "
                f"{len(self.layer_map) - 1} layers), got {len(student_hidden)}"
            )
        if max(self.layer_map) >= len(teacher_hidden):
            raise ValueError(
                f"layer map {self.layer_map[1:]} needs teacher layer {max(self.layer_map)}, but"
                f" the teacher has {len(teacher_hidden) - 1}"
            )
        mask = attention_mask.bool()
        total = student_hidden[0].new_zeros((), dtype=torch.float32)
        pairs = zip(self.projections, student_hidden, self.layer_map, strict=True)
        for proj, h_s, t_index in pairs:
            projected = proj(h_s)[mask].float()  # [n_tokens, H_t]
            total = total + F.mse_loss(projected, teacher_hidden[t_index][mask].float())
        return total


class AttentionKLLoss(nn.Module):
    """KL(teacher ‖ student) between attention distributions of matched layers.

    Args (forward):
        student_attentions: per-layer ``[B, heads, T, T]`` attention probabilities.
        teacher_attentions: per-layer ``[B, heads, T, T]``, same head count.
        attention_mask: ``[B, T]``; only rows of real query tokens count.

    ``layer_map[l-1]`` is the teacher layer (1-based) for student layer ``l``. Returns the mean
    over query rows and heads of ``Σ_key p_t log(p_t / p_s)``, summed over matched layers.
    """

    def __init__(self, layer_map: list[int], eps: float = 1e-8) -> None:
        super().__init__()
        self.layer_map = list(layer_map)
        self.eps = eps

    def forward(
        self,
        student_attentions: tuple[torch.Tensor, ...] | list[torch.Tensor],
        teacher_attentions: tuple[torch.Tensor, ...] | list[torch.Tensor],
        attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        rows = attention_mask.bool()  # [B, T]
        total = student_attentions[0].new_zeros((), dtype=torch.float32)
        for a_s, t_index in zip(student_attentions, self.layer_map, strict=True):
            a_t = teacher_attentions[t_index - 1]
            if a_s.shape != a_t.shape:
                raise ValueError(
                    f"attention shapes differ: student {tuple(a_s.shape)}, teacher "
                    f"{tuple(a_t.shape)}; attention KL needs equal head counts"
                )
            p_t = a_t.float().clamp_min(self.eps)
            kl = (p_t * (p_t.log() - a_s.float().clamp_min(self.eps).log())).sum(-1)  # [B,h,T]
            total = total + kl.permute(0, 2, 1)[rows].mean()
        return total


class _MLMAndSoftCE(torch.autograd.Function):
    """CE(labels) and soft-CE(teacher) at T = 1 from one log-softmax, with a closed-form grad.

    ``d/ds [a·CE + b·softCE] = ((a + b)·softmax(s) - a·onehot - b·p) / N``: the backward pass is
    two in-place passes over ``[N, V]`` instead of autograd's chain through log-softmax, gather,
    product and sum for each term (the vocabulary-sized tensors dominate a distill step's
    cost once the teacher's forward pass is paid).

    ``ctx`` is typed ``Any``: autograd hands in a backward node that carries ``saved_tensors`` and
    the attributes set here, which torch's ``FunctionCtx`` type does not declare.
    """

    @staticmethod
    def forward(
        ctx: Any, logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        log_q = F.log_softmax(logits.float(), dim=-1)
        p = F.softmax(teacher_logits.float(), dim=-1)
        n = logits.shape[0]
        mlm = -log_q.gather(1, labels[:, None]).sum() / n
        soft = -(p * log_q).sum() / n
        ctx.save_for_backward(log_q, p, labels)
        ctx.in_dtype = logits.dtype
        return mlm, soft

    @staticmethod
    def backward(
        ctx: Any, g_mlm: torch.Tensor, g_soft: torch.Tensor
    ) -> tuple[torch.Tensor, None, None]:
        log_q, p, labels = ctx.saved_tensors
        n = log_q.shape[0]
        grad = log_q.exp_().mul_(g_mlm + g_soft).sub_(p.mul_(g_soft))  # reuses saved buffers
        grad[torch.arange(n, device=grad.device), labels] -= g_mlm
        return grad.div_(n).to(ctx.in_dtype), None, None


def mlm_and_soft_ce(
    student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MaskedLMLoss, SoftCrossEntropyLoss(T=1))`` of ``[N, V]`` logits, fused (same values).

    Args:
        student_logits: ``[N, V]``; labels: ``[N]``; teacher_logits: ``[N, V]``.
    """
    _check_same_vocabulary(student_logits, teacher_logits)
    return _MLMAndSoftCE.apply(student_logits, labels, teacher_logits)


class IntentSlotLoss(nn.Module):
    """Joint intent + slot loss: ``CE(intent) + slot_weight · CE(slots)`` (DESIGN.md §5).

    Args:
        intent_logits: ``[B, I]`` sentence scores.
        intent_labels: ``[B]`` gold intent ids.
        slot_logits: ``[B, T, S]`` per-token scores, or ``None`` (pair classification).
        slot_labels: ``[B, T]`` gold tag ids at the first sub-token of each word, ``-100``
            elsewhere (other sub-tokens, specials, padding).

    Returns:
        ``{"loss", "intent", "slots"}`` scalars (fp32); ``slots`` is the mean over labelled
        tokens of the whole batch, so long utterances weigh more, as in token classification.
    """

    def __init__(self, slot_weight: float = 1.0) -> None:
        super().__init__()
        self.slot_weight = slot_weight

    def forward(
        self,
        intent_logits: torch.Tensor,
        intent_labels: torch.Tensor,
        slot_logits: torch.Tensor | None = None,
        slot_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        intent = F.cross_entropy(intent_logits.float(), intent_labels)
        if slot_logits is None:
            return {"loss": intent, "intent": intent.detach()}
        if slot_labels is None or slot_labels.shape != slot_logits.shape[:2]:
            raise ValueError(
                f"slot_labels must be [B, T] = {tuple(slot_logits.shape[:2])}, got"
                f" {None if slot_labels is None else tuple(slot_labels.shape)}"
            )
        if (slot_labels != -100).any():
            slots = F.cross_entropy(
                slot_logits.flatten(0, 1).float(), slot_labels.flatten(), ignore_index=-100
            )
        else:  # a batch of slot-free utterances still trains the intent head
            slots = slot_logits.sum() * 0.0
        loss = intent + self.slot_weight * slots
        return {"loss": loss, "intent": intent.detach(), "slots": slots.detach()}


class TaskDistillLoss(nn.Module):
    """Task-aware distillation: hard CE on the labeled rows plus soft CE against the teacher.

    ``hard_weight · (CE(intent) + slot_weight · CE(slots))`` over the rows and words that have
    gold labels, plus ``soft_weight · (SCE(intent) + slot_weight · SCE(slots))`` (T²-scaled
    soft CE, :class:`SoftCrossEntropyLoss`) over every row and every word's first sub-token, so
    unlabeled utterances teach through the teacher alone.

    Args (forward):
        intent_logits: ``[B, I]`` student scores; ``teacher_intent``: ``[B, I]`` teacher scores.
        intent_labels: ``[B]`` gold ids, ``-100`` for an unlabeled row.
        slot_logits: ``[B, T, S]`` student scores per sub-token (None: no slot head).
        teacher_slots: ``[B, T, S]`` teacher scores; only ``word_mask`` positions are read.
        slot_labels: ``[B, T]`` gold tag ids at first sub-tokens, ``-100`` elsewhere.
        word_mask: ``[B, T]`` bool, True at the first sub-token of every (kept) word.

    Returns:
        ``{"loss", "hard_intent", "hard_slots", "soft_intent", "soft_slots"}`` fp32 scalars (the
        slot terms only with a slot head); a term with no rows to average over is 0.
    """

    def __init__(
        self,
        hard_weight: float = 1.0,
        soft_weight: float = 1.0,
        temperature: float = 1.0,
        slot_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.hard_weight, self.soft_weight, self.slot_weight = hard_weight, soft_weight, slot_weight
        self.soft = SoftCrossEntropyLoss(temperature)

    def forward(
        self,
        intent_logits: torch.Tensor,
        teacher_intent: torch.Tensor,
        intent_labels: torch.Tensor,
        slot_logits: torch.Tensor | None = None,
        teacher_slots: torch.Tensor | None = None,
        slot_labels: torch.Tensor | None = None,
        word_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        out = {
            "hard_intent": _mean_ce(intent_logits, intent_labels),
            "soft_intent": self.soft(intent_logits, teacher_intent),
        }
        if slot_logits is not None:
            if teacher_slots is None or slot_labels is None or word_mask is None:
                raise ValueError("slot logits need teacher_slots, slot_labels and word_mask")
            out["hard_slots"] = _mean_ce(slot_logits.flatten(0, 1), slot_labels.flatten())
            words = word_mask.bool()
            out["soft_slots"] = (
                self.soft(slot_logits[words], teacher_slots[words])
                if words.any()
                else slot_logits.sum() * 0.0
            )
        hard = out["hard_intent"] + self.slot_weight * out.get("hard_slots", 0.0)
        soft = out["soft_intent"] + self.slot_weight * out.get("soft_slots", 0.0)
        loss = self.hard_weight * hard + self.soft_weight * soft
        return {"loss": loss, **{k: v.detach() for k, v in out.items()}}


def _mean_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over the labels that are not ``-100``; 0 (with a gradient path) when none are."""
    if (labels != -100).any():
        return F.cross_entropy(logits.float(), labels, ignore_index=-100)
    return logits.sum().float() * 0.0
