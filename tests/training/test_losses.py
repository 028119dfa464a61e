import pytest
import torch
import torch.nn.functional as F

from distilnlu.training.losses import MaskedLMLoss


def test_masked_lm_loss_matches_full_logits_reference():
    torch.manual_seed(0)
    full = torch.randn(3, 7, 11)  # [B, T, V]
    labels = torch.full((3, 7), -100)
    labels[0, 1], labels[1, 4], labels[2, 0], labels[2, 6] = 3, 5, 0, 10
    reference = F.cross_entropy(full.view(-1, 11), labels.view(-1), ignore_index=-100)
    positions = labels != -100
    ours = MaskedLMLoss()(full[positions], labels[positions])
    assert torch.allclose(ours, reference, atol=1e-6)


def test_masked_lm_loss_rejects_shape_mismatch():
    try:
        MaskedLMLoss()(torch.zeros(3, 5), torch.zeros(2, dtype=torch.long))
    except ValueError as exc:
        assert "differ" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_masked_lm_loss_is_fp32_under_bf16_logits():
    logits = torch.randn(4, 9).to(torch.bfloat16)
    loss = MaskedLMLoss()(logits, torch.tensor([1, 2, 3, 4]))
    assert loss.dtype == torch.float32


def test_intent_slot_loss_matches_a_plain_reference():
    from distilnlu.training.losses import IntentSlotLoss

    torch.manual_seed(0)
    intent_logits, slot_logits = torch.randn(3, 4), torch.randn(3, 5, 6)
    intent_labels = torch.tensor([0, 3, 1])
    slot_labels = torch.full((3, 5), -100)
    slot_labels[0, 1], slot_labels[0, 2], slot_labels[1, 1], slot_labels[2, 3] = 2, 0, 5, 1
    out = IntentSlotLoss(slot_weight=0.5)(intent_logits, intent_labels, slot_logits, slot_labels)

    def nll(scores: torch.Tensor, gold: int) -> float:
        return float(-(scores[gold] - torch.logsumexp(scores, 0)))

    intent = sum(nll(intent_logits[i], int(intent_labels[i])) for i in range(3)) / 3
    pairs = [(b, t) for b in range(3) for t in range(5) if slot_labels[b, t] != -100]
    slots = sum(nll(slot_logits[b, t], int(slot_labels[b, t])) for b, t in pairs) / len(pairs)
    assert out["intent"].item() == pytest.approx(intent, rel=1e-5)
    assert out["slots"].item() == pytest.approx(slots, rel=1e-5)
    assert out["loss"].item() == pytest.approx(intent + 0.5 * slots, rel=1e-5)


def test_intent_slot_loss_without_slot_labels_and_for_pairs():
    from distilnlu.training.losses import IntentSlotLoss

    intent_logits = torch.randn(2, 3, requires_grad=True)
    slot_logits = torch.randn(2, 4, 5, requires_grad=True)
    out = IntentSlotLoss()(
        intent_logits, torch.tensor([0, 1]), slot_logits, torch.full((2, 4), -100)
    )
    assert out["slots"].item() == 0.0 and torch.isfinite(out["loss"])
    out["loss"].backward()  # still differentiable: a slot-free batch trains the intent head
    pair = IntentSlotLoss()(intent_logits, torch.tensor([2, 1]))
    assert set(pair) == {"loss", "intent"}
    with pytest.raises(ValueError, match="slot_labels"):
        IntentSlotLoss()(intent_logits, torch.tensor([0, 1]), slot_logits, torch.zeros(2, 3))
