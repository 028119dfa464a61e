"""MLM masking: rates, special tokens, whole words, determinism, config validation."""

from __future__ import annotations

import pydantic
import pytest
import torch

from distilnlu.data.masking import (
    IGNORE_INDEX,
    NOT_SELECTED,
    TO_KEEP,
    TO_MASK,
    TO_RANDOM,
    MaskingConfig,
    draw_categories,
    mask_tokens,
    random_candidates,
    special_tokens_mask,
)

VOCAB = 1000
BOS, PAD, EOS, UNK, MASK = 0, 1, 2, 3, 4
SPECIALS = [BOS, PAD, EOS, UNK, MASK]


def _batch(seed: int = 0, batch: int = 300, length: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids with <s> ... </s> and right padding of random length; returns (ids, maskable)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=g)
    lengths = torch.randint(length * 3 // 4, length + 1, (batch,), generator=g)
    for row, n in enumerate(lengths.tolist()):
        ids[row, 0] = BOS
        ids[row, n - 1] = EOS
        ids[row, n:] = PAD
    return ids, ~special_tokens_mask(ids, SPECIALS)


def _mask(ids, maskable, config=None, seed=0, word_start=None):
    return mask_tokens(
        ids,
        maskable=maskable,
        mask_token_id=MASK,
        random_token_ids=random_candidates(VOCAB, SPECIALS),
        config=config or MaskingConfig(),
        generator=torch.Generator().manual_seed(seed),
        word_start=word_start,
    )


def test_helpers():
    ids = torch.tensor([[0, 7, 4, 9, 2, 1]])
    assert special_tokens_mask(ids, SPECIALS).tolist() == [[True, False, True, False, True, True]]
    assert not special_tokens_mask(ids, []).any()
    candidates = random_candidates(10, SPECIALS)
    assert candidates.tolist() == [5, 6, 7, 8, 9]
    assert candidates.dtype == torch.long
    with pytest.raises(ValueError):
        random_candidates(3, [0, 1, 2])


def test_rates_over_100k_tokens():
    ids, maskable = _batch()
    n_maskable = int(maskable.sum())
    assert n_maskable == 135_113

    masked, labels = _mask(ids, maskable)
    selected = labels != IGNORE_INDEX
    assert not (selected & ~maskable).any(), "special tokens and padding are never selected"
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(masked[~selected], ids[~selected])
    assert int(selected.sum()) == 20_336  # 15.05 % of the maskable tokens (mlm_probability 0.15)

    # Categories come from the same internal decision mask_tokens uses (same generator state),
    # so a random replacement that happens to equal the original still counts as "random".
    category, _ = draw_categories(
        maskable, config=MaskingConfig(), generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(category != NOT_SELECTED, selected)
    n_selected = int(selected.sum())
    to_mask, to_random, to_keep = (category == c for c in (TO_MASK, TO_RANDOM, TO_KEEP))
    # 79.8 / 10.2 / 9.9 % of the selected tokens (mask_ratio 0.8, random_ratio 0.1).
    assert (int(to_mask.sum()), int(to_random.sum()), int(to_keep.sum())) == (16_236, 2_081, 2_019)
    assert n_selected == 20_336

    assert (masked[to_mask] == MASK).all()
    assert torch.equal(masked[to_keep], ids[to_keep])
    replaced = masked[to_random]
    assert not torch.isin(replaced, torch.tensor(SPECIALS)).any(), "random ids are non-special"
    # With 995 candidates a coincidental "replacement by itself" is rare: 1 of the 2,081.
    assert int((replaced == ids[to_random]).sum()) == 1
    # Observable categories agree with the internal ones.
    observed_mask = masked == MASK
    assert torch.equal(observed_mask & selected, to_mask)


def test_random_replacement_uses_the_whole_candidate_pool():
    ids, maskable = _batch(seed=3)
    config = MaskingConfig(mlm_probability=1.0, mask_ratio=0.0, random_ratio=1.0)
    masked, labels = _mask(ids, maskable, config=config)
    assert torch.equal(labels != IGNORE_INDEX, maskable)
    values = masked[maskable]
    assert (int(values.min()), int(values.max())) == (5, VOCAB - 1)
    counts = torch.bincount(values, minlength=VOCAB)[5:].float()
    assert int(counts.min()) == 89  # every candidate is drawn
    assert round(float(counts.std() / counts.mean()), 4) == 0.0861  # roughly uniform


def test_custom_ratios_and_extremes():
    ids, maskable = _batch(seed=1, batch=50, length=256)
    masked, labels = _mask(ids, maskable, MaskingConfig(mlm_probability=0.0))
    assert (labels == IGNORE_INDEX).all() and torch.equal(masked, ids)

    config = MaskingConfig(mlm_probability=0.5, mask_ratio=1.0, random_ratio=0.0)
    masked, labels = _mask(ids, maskable, config)
    selected = labels != IGNORE_INDEX
    assert (int(selected.sum()), int(maskable.sum())) == (5_460, 11_019)  # 49.6 %
    assert (masked[selected] == MASK).all()

    config = MaskingConfig(mlm_probability=0.3, mask_ratio=0.0, random_ratio=0.0)
    masked, labels = _mask(ids, maskable, config)
    assert torch.equal(masked, ids) and int((labels != IGNORE_INDEX).sum()) == 3_234


def test_same_seed_same_masks_different_seed_different():
    ids, maskable = _batch(seed=2, batch=8, length=128)
    a = _mask(ids, maskable, seed=11)
    b = _mask(ids, maskable, seed=11)
    c = _mask(ids, maskable, seed=12)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_generator_state_advances_and_input_is_untouched():
    ids, maskable = _batch(seed=2, batch=8, length=128)
    original = ids.clone()
    g = torch.Generator().manual_seed(5)
    kwargs = dict(
        maskable=maskable,
        mask_token_id=MASK,
        random_token_ids=random_candidates(VOCAB, SPECIALS),
        config=MaskingConfig(),
        generator=g,
    )
    first = mask_tokens(ids, **kwargs)
    second = mask_tokens(ids, **kwargs)
    assert torch.equal(ids, original)
    assert not torch.equal(first[1], second[1])


def _word_starts(seed: int, shape: tuple[int, int]) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) < 0.45  # words of ~2.2 tokens on average


def test_whole_word_masking():
    ids, maskable = _batch(seed=4)
    word_start = _word_starts(4, ids.shape)
    config = MaskingConfig(whole_word=True)
    masked, labels = _mask(ids, maskable, config, word_start=word_start)
    selected = labels != IGNORE_INDEX
    assert not (selected & ~maskable).any()
    assert (int(selected.sum()), int(maskable.sum())) == (20_112, 134_105)  # 15.0 %

    # Every word (a start token and the following non-start maskable tokens) is all-or-nothing.
    n_words = 0
    for row in range(0, ids.shape[0], 10):
        current: list[bool] = []
        for t in range(ids.shape[1]):
            if not maskable[row, t] or word_start[row, t]:
                if current:
                    assert all(current) or not any(current)
                    n_words += 1
                current = []
            if maskable[row, t]:
                current.append(bool(selected[row, t]))
        if current:
            assert all(current) or not any(current)
            n_words += 1
    assert n_words == 6_090

    # Some selected words have several tokens, and the 80/10/10 split still holds per token.
    multi = selected[:, 1:] & selected[:, :-1] & ~word_start[:, 1:]
    assert int(multi.sum()) == 10_964
    assert int((masked[selected] == MASK).sum()) == 16_062  # 79.9 % of the 20,112 selected


def test_whole_word_needs_word_start():
    ids, maskable = _batch(batch=2, length=16)
    with pytest.raises(ValueError, match="word_start"):
        _mask(ids, maskable, MaskingConfig(whole_word=True))
    with pytest.raises(ValueError, match="word_start"):
        _mask(ids, maskable, MaskingConfig(whole_word=True), word_start=torch.ones(2, 3).bool())


def test_shape_errors():
    ids, maskable = _batch(batch=2, length=16)
    with pytest.raises(ValueError):
        _mask(ids[0], maskable[0])
    with pytest.raises(ValueError):
        _mask(ids, maskable[:, :5])


def test_config_validation():
    assert MaskingConfig().model_dump() == {
        "mlm_probability": 0.15,
        "mask_ratio": 0.8,
        "random_ratio": 0.1,
        "whole_word": False,
    }
    for bad in (
        {"mlm_probability": 1.5},
        {"mlm_probability": -0.1},
        {"mask_ratio": 1.2},
        {"random_ratio": -0.01},
        {"mask_ratio": 0.8, "random_ratio": 0.3},
        {"unknown": 1},
    ):
        with pytest.raises(pydantic.ValidationError):
            MaskingConfig(**bad)
    MaskingConfig(mask_ratio=0.9, random_ratio=0.1)  # exactly 1 is fine
    for name, field in MaskingConfig.model_fields.items():
        assert field.description, f"{name} needs a description"
