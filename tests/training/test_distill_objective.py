"""DistillObjective on tiny random models: losses, gradients, teacher-logit cache."""

import torch

from distilnlu.config import DistillLossConfig
from distilnlu.data.masking import MaskingConfig
from distilnlu.modeling.presets import build_model
from distilnlu.training.distill import DistillObjective, DistillStudent
from distilnlu.training.losses import HiddenStateLoss, uniform_layer_map
from distilnlu.training.schedule import Phase, TeacherSchedule

V = 120


class Tok:
    mask_token_id, pad_token_id, all_special_ids = 4, 1, [0, 1, 2, 3, 4]

    def __len__(self) -> int:
        return V


def make(loss=None, top_k=0):
    torch.manual_seed(0)
    teacher = build_model("tiny-64", V).eval().requires_grad_(False)
    calls = []
    teacher.base_model.register_forward_hook(lambda *_: calls.append(1))
    loss = loss or DistillLossConfig()
    hidden = None
    if loss.hidden_weight:
        hidden = HiddenStateLoss(32, 64, uniform_layer_map(2, 2))
    student = DistillStudent(build_model("tiny", V), hidden)
    objective = DistillObjective(
        Tok(),
        MaskingConfig(),
        loss,
        TeacherSchedule([Phase("t")]),
        lambda ref, device: teacher,
        cache_top_k=top_k,
    )
    return objective, student, calls


def batch(seed):
    ids = torch.randint(5, V, (4, 16), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, -1] = 0, 2
    return ids


def test_losses_and_gradients_reach_student_and_projections_only():
    objective, student, _ = make(DistillLossConfig(hidden_weight=1.0))
    out = objective(student, objective.prepare(batch(0), 7))
    assert set(out) == {"loss", "mlm", "soft", "hidden"}
    expected = out["mlm"] + out["soft"] + out["hidden"]
    assert torch.allclose(out["loss"], expected)
    out["loss"].backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    teacher = objective.teacher(torch.device("cpu"))
    assert all(p.grad is None for p in teacher.parameters())


def test_top_k_cache_calls_the_teacher_once_per_distinct_batch():
    objective, student, calls = make(top_k=V)  # k = V: cached targets are exact
    exact, _, _ = make()
    for epoch in range(3):
        for seed in (0, 1):
            prepared = objective.prepare(batch(seed), batch_seed=epoch)  # seed ignored: static
            cached = objective(student, prepared)["soft"]
            uncached = exact(student, {k: v for k, v in prepared.items() if k != "cache_key"})
            assert abs(cached.item() - uncached["soft"].item()) < 1e-3  # fp16 cache
    assert len(calls) == 2
    first, again = objective.prepare(batch(0), 1), objective.prepare(batch(0), 2)
    assert torch.equal(first["labels"], again["labels"])  # same batch, same masks
