"""TaskDistillLoss and the task-distill objective against explicit per-row reference loops."""

from __future__ import annotations

import pytest
import torch

from distilnlu.training.losses import HiddenStateLoss, TaskDistillLoss, _mean_ce
from distilnlu.training.objectives import EarlyStopping
from distilnlu.training.task_distill import TaskDistillObjective, TaskDistillStudent

B, T, N_INTENTS, S = 5, 7, 6, 4
TOL = 1e-6


# --------------------------------------------------------------------------- reference


def ref_ce(logits: torch.Tensor, label: int) -> torch.Tensor:
    """-log p(label) of one score vector."""
    return -torch.log_softmax(logits.double(), dim=-1)[label]


def ref_soft(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """T² · Σ_i softmax(teacher/T)_i · -log_softmax(student/T)_i of one score vector."""
    p = torch.softmax(teacher.double() / t, dim=-1)
    log_q = torch.log_softmax(student.double() / t, dim=-1)
    return -(p * log_q).sum() * t * t


def mean_or_zero(terms: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.stack(terms).mean() if terms else like.sum().double() * 0.0


def reference(
    intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask, *, hw, sw, tw, t
):
    """The documented loss, one row / one position at a time."""
    hard_intent = mean_or_zero(
        [ref_ce(intent[b], int(intent_labels[b])) for b in range(B) if intent_labels[b] != -100],
        intent,
    )
    soft_intent = torch.stack([ref_soft(intent[b], teacher_intent[b], t) for b in range(B)]).mean()
    out = {"hard_intent": hard_intent, "soft_intent": soft_intent}
    if slots is not None:
        hard, soft = [], []
        for b in range(slots.shape[0]):
            for pos in range(slots.shape[1]):
                if slot_labels[b, pos] != -100:
                    hard.append(ref_ce(slots[b, pos], int(slot_labels[b, pos])))
                if mask[b, pos]:
                    soft.append(ref_soft(slots[b, pos], teacher_slots[b, pos], t))
        out["hard_slots"] = mean_or_zero(hard, slots)
        out["soft_slots"] = mean_or_zero(soft, slots)
    hard_total = out["hard_intent"] + sw * out.get("hard_slots", 0.0)
    soft_total = out["soft_intent"] + sw * out.get("soft_slots", 0.0)
    out["loss"] = hw * hard_total + tw * soft_total
    return out


# --------------------------------------------------------------------------- inputs


def make_batch(seed: int, labeled_rows=(0, 2, 3)):
    """Random scores; rows not in ``labeled_rows`` are unlabeled (intent and slots -100).

    Each row has a few words: word starts carry a gold tag (labeled rows) and are in the word
    mask; continuation sub-tokens, specials and padding are -100 and outside the mask. One word
    of row 0 has an unknown gold tag (-100) but is still a word start (soft target only).
    """
    g = torch.Generator().manual_seed(seed)
    intent = torch.randn(B, N_INTENTS, generator=g, dtype=torch.float64) * 2
    teacher_intent = torch.randn(B, N_INTENTS, generator=g, dtype=torch.float64) * 2
    slots = torch.randn(B, T, S, generator=g, dtype=torch.float64) * 2
    teacher_slots = torch.randn(B, T, S, generator=g, dtype=torch.float64) * 2
    intent_labels = torch.full((B,), -100, dtype=torch.long)
    slot_labels = torch.full((B, T), -100, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.bool)
    # word starts per row: position 0 is <s>; rows have different lengths / sub-token splits
    starts = {0: [1, 2, 4], 1: [1, 3], 2: [1, 2, 3, 5], 3: [1], 4: [1, 2, 4, 5]}
    for b, positions in starts.items():
        mask[b, positions] = True
        if b in labeled_rows:
            intent_labels[b] = int(torch.randint(N_INTENTS, (1,), generator=g))
            for pos in positions:
                slot_labels[b, pos] = int(torch.randint(S, (1,), generator=g))
    if 0 in labeled_rows:
        slot_labels[0, 4] = -100  # a gold tag the vocabulary does not know
    # teacher scores off the word starts are garbage that must never be read
    teacher_slots[~mask] = 1e4
    return intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask


def run_both(batch, *, hw=1.0, sw=1.0, tw=1.0, t=1.0, slot_head=True):
    intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask = batch
    intent = intent.clone().requires_grad_(True)
    slots = slots.clone().requires_grad_(True) if slot_head else None
    loss = TaskDistillLoss(hard_weight=hw, soft_weight=tw, temperature=t, slot_weight=sw)
    slot_args = (slots, teacher_slots, slot_labels, mask) if slot_head else ()
    got = loss(intent, teacher_intent, intent_labels, *slot_args)
    want = reference(
        intent,
        teacher_intent,
        intent_labels,
        slots,
        teacher_slots,
        slot_labels,
        mask,
        hw=hw,
        sw=sw,
        tw=tw,
        t=t,
    )
    inputs = [intent] if slots is None else [intent, slots]
    return got, want, inputs


CASES = [
    pytest.param({"t": 1.0}, id="T1"),
    pytest.param({"t": 3.0}, id="T3"),
    pytest.param({"t": 3.0, "hw": 0.7, "tw": 1.9, "sw": 0.35}, id="T3-weights"),
    pytest.param({"t": 1.0, "hw": 2.5, "tw": 0.0, "sw": 4.0}, id="hard-only"),
    pytest.param({"t": 2.0, "hw": 0.0, "tw": 1.3, "sw": 0.5}, id="soft-only"),
]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_mixed_rows_match_reference(kwargs, seed):
    got, want, _ = run_both(make_batch(seed), **kwargs)
    assert set(got) == {"loss", "hard_intent", "hard_slots", "soft_intent", "soft_slots"}
    for key, value in want.items():
        assert got[key].dtype == torch.float32
        assert got[key].item() == pytest.approx(value.item(), abs=TOL, rel=TOL), key
    # the parts are reported detached; only the total carries the graph
    assert got["loss"].requires_grad
    assert not any(got[k].requires_grad for k in got if k != "loss")


@pytest.mark.parametrize("kwargs", CASES)
def test_gradients_match_reference(kwargs):
    got, want, inputs = run_both(make_batch(3), **kwargs)
    g_got = torch.autograd.grad(got["loss"], inputs)
    g_want = torch.autograd.grad(want["loss"], inputs)
    for a, b in zip(g_got, g_want, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=TOL, rtol=0), (a - b).abs().max()


def test_garbage_teacher_scores_off_the_words_are_never_read():
    batch = list(make_batch(0))
    got, _, _ = run_both(tuple(batch), t=3.0)
    batch[4] = batch[4].clone()
    batch[4][~batch[6]] = -7.0  # different garbage off the word mask
    again, _, _ = run_both(tuple(batch), t=3.0)
    assert again["loss"].item() == got["loss"].item()


def test_continuation_subtokens_do_not_count():
    """A -100 slot label outside the word mask changes nothing, wherever its student scores."""
    batch = list(make_batch(1))
    got, _, _ = run_both(tuple(batch), t=2.0, sw=0.5)
    batch[3] = batch[3].clone()
    off = ~batch[6] & (batch[5] == -100)
    batch[3][off] = torch.randn(int(off.sum()), S, dtype=torch.float64) * 50
    again, _, _ = run_both(tuple(batch), t=2.0, sw=0.5)
    assert again["loss"].item() == pytest.approx(got["loss"].item(), abs=TOL)


@pytest.mark.parametrize("t", [1.0, 3.0])
def test_no_labeled_row_gives_zero_hard_terms_and_stays_differentiable(t):
    got, want, inputs = run_both(make_batch(2, labeled_rows=()), t=t, hw=1.7, sw=0.4)
    assert got["hard_intent"].item() == 0.0 and got["hard_slots"].item() == 0.0
    assert got["soft_intent"].item() > 0 and got["soft_slots"].item() > 0
    assert got["loss"].item() == pytest.approx(want["loss"].item(), abs=TOL)
    g_got = torch.autograd.grad(got["loss"], inputs)
    g_want = torch.autograd.grad(want["loss"], inputs)
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a, b, atol=TOL, rtol=0)


def test_no_labeled_row_and_soft_weight_zero_still_backpropagates():
    """An all-unlabeled batch under a hard-only loss: loss 0, zero gradients, no crash."""
    got, _, inputs = run_both(make_batch(2, labeled_rows=()), tw=0.0)
    assert got["loss"].item() == 0.0 and got["loss"].requires_grad
    grads = torch.autograd.grad(got["loss"], inputs)
    assert all(g is not None and torch.count_nonzero(g) == 0 for g in grads)


def test_empty_word_mask_gives_zero_soft_slots():
    intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask = make_batch(0)
    slots = slots.clone().requires_grad_(True)
    got = TaskDistillLoss(temperature=2.0)(
        intent,
        teacher_intent,
        intent_labels,
        slots,
        teacher_slots,
        torch.full_like(slot_labels, -100),
        torch.zeros_like(mask),
    )
    assert got["soft_slots"].item() == 0.0 and got["hard_slots"].item() == 0.0
    (grad,) = torch.autograd.grad(got["loss"], [slots])
    assert torch.count_nonzero(grad) == 0


@pytest.mark.parametrize("t", [1.0, 3.0])
def test_no_slot_head(t):
    got, want, inputs = run_both(make_batch(4), t=t, hw=0.6, tw=1.4, sw=3.0, slot_head=False)
    assert set(got) == {"loss", "hard_intent", "soft_intent"}
    for key in got:
        assert got[key].item() == pytest.approx(want[key].item(), abs=TOL, rel=TOL), key
    (g_got,) = torch.autograd.grad(got["loss"], inputs)
    (g_want,) = torch.autograd.grad(want["loss"], inputs)
    assert torch.allclose(g_got, g_want, atol=TOL, rtol=0)


def test_slot_logits_without_targets_is_an_error():
    intent, teacher_intent, intent_labels, slots, _, slot_labels, mask = make_batch(0)
    with pytest.raises(ValueError, match="teacher_slots, slot_labels and word_mask"):
        TaskDistillLoss()(intent, teacher_intent, intent_labels, slots, None, slot_labels, mask)


def test_half_precision_scores_are_computed_in_fp32():
    intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask = make_batch(5)
    teacher_slots = teacher_slots.clone()
    teacher_slots[~mask] = 0.0  # fp16 cannot hold the 1e4 garbage exactly; irrelevant here
    args = (intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask)
    full = TaskDistillLoss(temperature=3.0)(
        *(a.float() if a.is_floating_point() else a for a in args)
    )
    half = TaskDistillLoss(temperature=3.0)(
        *(a.half() if a.is_floating_point() else a for a in args)
    )
    assert half["loss"].dtype == torch.float32
    assert half["loss"].item() == pytest.approx(full["loss"].item(), rel=1e-2)


def test_mean_ce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=g, requires_grad=True)
    labels = torch.tensor([1, -100, 4, 0, -100, 2])
    want = torch.stack([ref_ce(logits[i], int(labels[i])) for i in (0, 2, 3, 5)]).mean()
    assert _mean_ce(logits, labels).item() == pytest.approx(want.item(), abs=TOL)
    none = _mean_ce(logits, torch.full((6,), -100))
    assert none.item() == 0.0 and none.dtype == torch.float32 and none.requires_grad
    (grad,) = torch.autograd.grad(none, [logits])
    assert torch.count_nonzero(grad) == 0


# --------------------------------------------------------------------------- objective


class _Scores(torch.nn.Module):
    """A stand-in student: fixed scores, one trainable offset, and per-layer states."""

    def __init__(self, intent, slots, layers: int = 2) -> None:
        super().__init__()
        self.intent, self.slots, self.layers = intent, slots, layers
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward_states(self, input_ids, attention_mask, hidden_states=False):
        states = None
        if hidden_states:
            base = input_ids.float().unsqueeze(-1).expand(*input_ids.shape, 3)
            states = tuple(base * (k + 1) + self.offset for k in range(self.layers + 1))
        return self.intent + self.offset, self.slots + self.offset, states


def _objective_batch():
    intent, teacher_intent, intent_labels, slots, teacher_slots, slot_labels, mask = make_batch(0)
    batch = {
        "input_ids": torch.arange(B * T).reshape(B, T) % 11,
        "attention_mask": torch.ones(B, T, dtype=torch.long),
        "intent_labels": intent_labels,
        "slot_labels": slot_labels,
        "teacher_intent": teacher_intent.float(),
        "teacher_slots": teacher_slots.float(),
        "word_mask": mask,
    }
    return batch, intent.float(), slots.float()


def test_objective_without_hidden_matching_is_the_task_loss():
    batch, intent, slots = _objective_batch()
    student = TaskDistillStudent(_Scores(intent, slots), None)  # type: ignore[arg-type]
    loss = TaskDistillLoss(0.5, 2.0, 3.0, 0.25)
    objective = TaskDistillObjective(loss, EarlyStopping(3), score=lambda d: 0.0)
    assert objective.teacher is None
    got = objective(student, batch)
    want = loss(
        intent,
        batch["teacher_intent"],
        batch["intent_labels"],
        slots,
        batch["teacher_slots"],
        batch["slot_labels"],
        batch["word_mask"],
    )
    assert "hidden" not in got
    assert got["loss"].item() == pytest.approx(want["loss"].item(), abs=TOL)


def test_objective_adds_weighted_hidden_mse_against_the_teacher():
    batch, intent, slots = _objective_batch()
    teacher = _Scores(intent, slots)
    with torch.no_grad():
        teacher.offset.fill_(0.5)
    student = TaskDistillStudent(
        _Scores(intent, slots),  # type: ignore[arg-type]
        HiddenStateLoss(3, 3, [1, 2]),
    )
    loss = TaskDistillLoss(temperature=2.0)
    objective = TaskDistillObjective(
        loss,
        EarlyStopping(3),
        score=lambda d: 0.0,
        teacher=teacher,  # type: ignore[arg-type]
        hidden_weight=0.3,
    )
    got = objective(student, batch)
    # every state differs from the teacher's by the 0.5 offset: MSE 0.25 per matched layer
    assert got["hidden"].item() == pytest.approx(3 * 0.25, abs=TOL)
    base = TaskDistillObjective(loss, EarlyStopping(3), score=lambda d: 0.0)(student, batch)
    assert got["loss"].item() == pytest.approx(base["loss"].item() + 0.3 * 0.75, abs=1e-5)
    got["loss"].backward()  # teacher states came from inference mode: cloned, so this works
    assert student.inner.offset.grad is not None
    assert teacher.offset.grad is None


def test_objective_drops_the_teacher_when_hidden_weight_is_zero():
    _, intent, slots = _objective_batch()
    teacher = _Scores(intent, slots)
    objective = TaskDistillObjective(
        TaskDistillLoss(),
        EarlyStopping(3),
        score=lambda d: 0.0,
        teacher=teacher,  # type: ignore[arg-type]
        hidden_weight=0.0,
    )
    assert objective.teacher is None and objective.teacher_states({}) is None
