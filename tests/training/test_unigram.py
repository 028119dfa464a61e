"""Output-bias initialisation at the log unigram of MLM labels; stable embedding init."""

import math

import torch

from distilnlu.data.masking import MaskingConfig
from distilnlu.modeling.presets import build_model, estimate_parameters
from distilnlu.training.objectives import MLMObjective
from distilnlu.training.unigram import init_output_bias, output_bias

V = 50


class Tok:
    mask_token_id, pad_token_id, all_special_ids = 4, 1, [0, 1, 2, 3, 4]

    def __len__(self) -> int:
        return V


def skewed_batches():
    gen = torch.Generator().manual_seed(0)
    while True:  # token 5 is ~half of all tokens, 6..49 share the rest
        ids = torch.where(torch.rand(8, 32, generator=gen) < 0.5, 5, 0)
        ids = torch.where(ids == 5, ids, torch.randint(6, V, (8, 32), generator=gen))
        yield ids


def test_bias_is_the_log_label_distribution():
    model = build_model("demo-student", V)
    objective = MLMObjective(Tok(), MaskingConfig())
    assert init_output_bias(model, objective, skewed_batches(), seed=0, num_batches=40)
    bias = output_bias(model).detach()
    assert abs(torch.logsumexp(bias.double(), 0).item()) < 1e-4  # a normalised log distribution
    # label 5 is ~half the labels; the 10% random replacements do not change labels
    assert abs(bias[5].exp().item() - 0.5) < 0.05
    assert bias[0].exp().item() < 1e-3  # never a label (special token): pseudo-count only
    # the forward pass uses that bias: a zero hidden state would predict the unigram
    logits = model.lm_head.decoder(torch.zeros(1, model.config.hidden_size))
    assert torch.allclose(logits[0], bias, atol=1e-6)


def test_stable_presets_untie_and_scale_embeddings():
    model = build_model("demo-student", 300)
    word = model.base_model.embeddings.word_embeddings.weight
    assert not model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight is not word
    assert 0.9 < word[5:].std().item() < 1.1
    assert torch.count_nonzero(word[1]) == 0  # the padding row stays zero
    counted = sum(p.numel() for p in model.parameters())
    assert estimate_parameters("demo-student", 300)["total"] == counted
    assert math.isclose(
        build_model("tiny", 300).base_model.embeddings.word_embeddings.weight.std().item(),
        0.02,
        rel_tol=0.2,
    )  # default presets keep HF's init
