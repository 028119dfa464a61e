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
