"""Distillation losses against straightforward references (full logits, then gather)."""

import math

import pytest
import torch
import torch.nn.functional as F

from distilnlu.training.losses import (
    AttentionKLLoss,
    HiddenStateLoss,
    SoftCrossEntropyLoss,
    uniform_layer_map,
)

B, T, V = 3, 7, 11


def masked_setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    teacher = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 3
    positions = torch.rand(B, T, generator=g) < 0.4
    positions[0, 0] = True
    return student, teacher, positions


def reference_soft_ce(student, teacher, positions, t):
    """Loop over every position of the full [B, T, V] logits; keep the masked ones."""
    terms = []
    for b in range(B):
        for i in range(T):
            if positions[b, i]:
                p = [math.exp(x / t) for x in teacher[b, i].tolist()]
                z = sum(p)
                log_q = torch.log_softmax(student[b, i] / t, dim=-1).tolist()
                terms.append(-sum(pk / z * lq for pk, lq in zip(p, log_q, strict=True)))
    return sum(terms) / len(terms) * t * t


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_soft_ce_matches_reference(temperature):
    student, teacher, positions = masked_setup()
    got = SoftCrossEntropyLoss(temperature)(student[positions], teacher[positions])
    want = reference_soft_ce(student, teacher, positions, temperature)
    assert abs(got.item() - want) < 1e-6


def test_soft_ce_is_minimised_by_the_teacher_distribution():
    _, teacher, positions = masked_setup()
    loss = SoftCrossEntropyLoss(1.0)
    at_teacher = loss(teacher[positions], teacher[positions])
    entropy = -(F.softmax(teacher[positions], -1) * F.log_softmax(teacher[positions], -1))
    assert abs(at_teacher.item() - entropy.sum(-1).mean().item()) < 1e-6  # fp32 inside
    student = teacher[positions].clone().requires_grad_(True)
    loss(student, teacher[positions]).backward()
    assert student.grad.abs().max() < 1e-6  # the gradient vanishes at the optimum


def test_soft_ce_top_k_renormalises_over_the_cached_ids():
    student, teacher, positions = masked_setup(1)
    s, t = student[positions], teacher[positions]
    values, indices = t.topk(4, dim=-1)
    got = SoftCrossEntropyLoss(2.0)(s, values, indices)
    p = F.softmax(values / 2.0, -1)
    log_q = F.log_softmax(s / 2.0, -1).gather(-1, indices)
    want = -(p * log_q).sum(-1).mean() * 4.0
    assert abs(got.item() - want.item()) < 1e-6
    # with k = V the cache is exact
    v_all, i_all = t.topk(V, dim=-1)
    assert abs(SoftCrossEntropyLoss()(s, v_all, i_all) - SoftCrossEntropyLoss()(s, t)) < 1e-6


def test_soft_ce_rejects_mismatched_vocabularies():
    with pytest.raises(ValueError, match="share a tokenizer"):
        SoftCrossEntropyLoss()(torch.zeros(2, 5), torch.zeros(2, 6))


@pytest.mark.parametrize(
    ("student", "teacher", "expected"),
    [(2, 4, [2, 4]), (3, 6, [2, 4, 6]), (4, 4, [1, 2, 3, 4]), (3, 4, [1, 3, 4]), (1, 12, [12])],
)
def test_uniform_layer_map(student, teacher, expected):
    assert uniform_layer_map(student, teacher) == expected


def hidden_states(layers, width, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, T, width, generator=g) for _ in range(layers + 1))


def test_hidden_loss_different_widths_and_depths_matches_a_loop():
    student, teacher = hidden_states(2, 8, 0), hidden_states(6, 12, 1)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 4:] = 0
    loss = HiddenStateLoss(8, 12, layer_map=[3, 6])
    got = loss(student, teacher, mask)
    want = 0.0
    for proj, s_layer, t_layer in zip(loss.projections, [0, 1, 2], [0, 3, 6], strict=True):
        diffs = []
        for b in range(B):
            for i in range(T):
                if mask[b, i]:
                    diffs.append((proj(student[s_layer][b, i]) - teacher[t_layer][b, i]) ** 2)
        want = want + torch.stack(diffs).mean()
    assert abs(got.item() - want.item()) < 1e-5
    got.backward()
    assert all(p.grad is not None for p in loss.projections.parameters())


def test_hidden_loss_same_width_uses_identity_and_is_zero_on_equal_states():
    states = hidden_states(2, 8, 3)
    loss = HiddenStateLoss(8, 8, layer_map=[1, 2])
    assert not list(loss.parameters())
    assert loss(states, states, torch.ones(B, T)).item() == 0.0
    with pytest.raises(ValueError, match="teacher layer 5"):
        HiddenStateLoss(8, 8, layer_map=[1, 5])(states, states, torch.ones(B, T))


def test_attention_kl_matches_reference_and_ignores_padding_rows():
    g = torch.Generator().manual_seed(0)
    heads = 2
    s_att = [torch.softmax(torch.randn(B, heads, T, T, generator=g), -1) for _ in range(2)]
    t_att = [torch.softmax(torch.randn(B, heads, T, T, generator=g), -1) for _ in range(4)]
    mask = torch.ones(B, T)
    mask[2, 5:] = 0
    got = AttentionKLLoss([2, 4])(s_att, t_att, mask)
    want = 0.0
    for s, t in zip(s_att, [t_att[1], t_att[3]], strict=True):
        rows = [
            F.kl_div(s[b, h, i].log(), t[b, h, i], reduction="sum")
            for b in range(B)
            for h in range(heads)
            for i in range(T)
            if mask[b, i]
        ]
        want += torch.stack(rows).mean().item()
    assert abs(got.item() - want) < 1e-5
    assert AttentionKLLoss([1, 2])(s_att, s_att, mask).abs().item() < 1e-6


def test_fused_mlm_and_soft_ce_matches_the_two_modules_in_value_and_gradient():
    from distilnlu.training.losses import MaskedLMLoss, mlm_and_soft_ce

    student, teacher, positions = masked_setup(2)
    labels = torch.randint(
        0, V, (int(positions.sum()),), generator=torch.Generator().manual_seed(3)
    )
    s1 = student[positions].float().clone().requires_grad_(True)
    s2 = s1.detach().clone().requires_grad_(True)
    mlm, soft = mlm_and_soft_ce(s1, labels, teacher[positions].float())
    (0.7 * mlm + 1.3 * soft).backward()
    ref_mlm = MaskedLMLoss()(s2, labels)
    ref_soft = SoftCrossEntropyLoss(1.0)(s2, teacher[positions].float())
    (0.7 * ref_mlm + 1.3 * ref_soft).backward()
    assert abs(mlm.item() - ref_mlm.item()) < 1e-6 and abs(soft.item() - ref_soft.item()) < 1e-6
    assert torch.allclose(s1.grad, s2.grad, atol=1e-6)
