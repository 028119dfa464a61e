"""MLMObjective: masks per batch seed; document ids for isolated packing."""

import pytest
import torch

from distilnlu.data.masking import MaskingConfig
from distilnlu.modeling.presets import build_model
from distilnlu.training.objectives import MLMObjective

BOS, PAD, EOS, MASK = 0, 1, 2, 4


class Tok:
    bos_token_id, pad_token_id, eos_token_id, mask_token_id = BOS, PAD, EOS, MASK
    all_special_ids = (0, 1, 2, 3, 4)

    def __len__(self) -> int:
        return 50


def _blocks() -> torch.Tensor:
    # Two documents per row, each framed <s> … </s> (what pack(isolate=True) writes).
    row = [BOS, 7, 8, 9, 10, EOS, BOS, 11, 12, 13, 14, 15, EOS]
    return torch.tensor([row, row[6:] + row[:6]])


def test_isolated_batches_carry_document_ids_from_the_unmasked_ids():
    batch = MLMObjective(Tok(), MaskingConfig(), isolate_documents=True).prepare(_blocks(), 3)
    assert batch["document_ids"].tolist() == [[1] * 6 + [2] * 7, [1] * 7 + [2] * 6]
    plain = MLMObjective(Tok(), MaskingConfig()).prepare(_blocks(), 3)
    assert "document_ids" not in plain
    assert torch.equal(plain["input_ids"], batch["input_ids"])  # same masks either way


def test_isolation_changes_the_loss_of_a_packed_batch():
    torch.manual_seed(0)
    model = build_model("tiny", 50).eval()
    with torch.no_grad():  # weights large enough that the logits depend on the context
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    masking = MaskingConfig(mlm_probability=0.5)
    isolated = MLMObjective(Tok(), masking, isolate_documents=True)
    batch = isolated.prepare(_blocks(), 1)
    with torch.no_grad():
        apart = isolated(model, batch)["loss"]
        mixed = {k: v for k, v in batch.items() if k != "document_ids"}
        together = MLMObjective(Tok(), masking)(model, mixed)["loss"]
    assert torch.isfinite(apart) and abs(apart.item() - together.item()) > 1e-4
    # Seeded weights and masks: the exact losses (isolated vs cross-document attention).
    assert apart.item() == pytest.approx(4.892135143280029, rel=1e-5)
    assert together.item() == pytest.approx(4.896580219268799, rel=1e-5)
