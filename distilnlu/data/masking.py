"""Dynamic masked-LM masking (DESIGN.md §3 "Masking").

Of the maskable tokens (not special, not padding) each is *selected* with probability
``mlm_probability``; a selected token becomes ``<mask>`` with probability ``mask_ratio``, a random
non-special token with probability ``random_ratio`` and stays unchanged otherwise (BERT's 80/10/10).
With ``whole_word`` the selection is made per word (a word-start token and the non-start tokens
after it), so a word is either masked in all its sub-tokens or not at all; the expected token rate
is still ``mlm_probability``. The 80/10/10 decision is then made per token, as in BERT's
whole-word-masking release.

All randomness comes from an explicit :class:`torch.Generator`, and the number and shapes of the
draws depend only on the batch shape, so the same generator state always gives the same masks: the
training loop seeds one generator per batch, which makes resume exact.

Shapes: ``B`` batch, ``T`` sequence length, ``K`` number of random-replacement candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic
import torch

IGNORE_INDEX = -100
"""Label value at positions that are not predicted (PyTorch's cross-entropy default)."""

# Category codes returned by :func:`draw_categories`.
NOT_SELECTED = 0
TO_MASK = 1
TO_RANDOM = 2
TO_KEEP = 3


class MaskingConfig(pydantic.BaseModel):
    """How tokens are chosen and corrupted for the masked-LM objective."""

    model_config = pydantic.ConfigDict(extra="forbid")

    mlm_probability: float = pydantic.Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Probability that a maskable token (or, with whole_word, a word) is selected "
        "for prediction.",
    )
    mask_ratio: float = pydantic.Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Share of selected tokens replaced by the mask token.",
    )
    random_ratio: float = pydantic.Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Share of selected tokens replaced by a random non-special token; the rest "
        "(1 - mask_ratio - random_ratio) stay unchanged.",
    )
    whole_word: bool = pydantic.Field(
        False,
        description="Select whole words (all sub-tokens of a word together) instead of single "
        "tokens. Needs word-start information from the tokenizer.",
    )

    @pydantic.model_validator(mode="after")
    def _ratios_fit(self) -> MaskingConfig:
        if self.mask_ratio + self.random_ratio > 1.0 + 1e-9:
            raise ValueError(
                f"mask_ratio + random_ratio must be <= 1, got {self.mask_ratio} + "
                f"{self.random_ratio} = {self.mask_ratio + self.random_ratio}"
            )
        return self


def special_tokens_mask(input_ids: torch.Tensor, special_ids: Sequence[int]) -> torch.Tensor:
    """True where ``input_ids`` (any shape) holds one of ``special_ids``."""
    special = torch.as_tensor(list(special_ids), dtype=input_ids.dtype, device=input_ids.device)
    if special.numel() == 0:
        return torch.zeros_like(input_ids, dtype=torch.bool)
    return torch.isin(input_ids, special)


def random_candidates(vocab_size: int, special_ids: Sequence[int]) -> torch.Tensor:
    """Ids ``0 .. vocab_size-1`` without the special ones: the pool for random replacement [K]."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    keep = torch.ones(vocab_size, dtype=torch.bool)
    specials = [i for i in special_ids if 0 <= i < vocab_size]
    if specials:
        keep[torch.tensor(specials, dtype=torch.long)] = False
    candidates = torch.arange(vocab_size, dtype=torch.long)[keep]
    if candidates.numel() == 0:
        raise ValueError("every id in the vocabulary is special: no random-replacement candidates")
    return candidates


def _word_index(maskable: torch.Tensor, word_start: torch.Tensor) -> torch.Tensor:
    """Index of the word each token belongs to, counted per row from 0 [B, T].

    A word starts at a maskable token that is marked as a word start or that follows a
    non-maskable token (a special token or padding ends any word). Non-maskable positions get the
    index of the preceding word; callers ignore them.
    """
    prev_maskable = torch.zeros_like(maskable)
    prev_maskable[:, 1:] = maskable[:, :-1]
    starts = maskable & (word_start | ~prev_maskable)
    return (starts.long().cumsum(dim=1) - 1).clamp_min(0)


def draw_categories(
    maskable: torch.Tensor,
    *,
    config: MaskingConfig,
    generator: torch.Generator,
    word_start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decide what happens at each position.

    Returns ``(category [B, T], candidate_draw [B, T])`` on the generator's device, where category
    is one of ``NOT_SELECTED``, ``TO_MASK``, ``TO_RANDOM``, ``TO_KEEP`` and ``candidate_draw`` is a
    uniform number in ``[0, 1)`` per position used to pick the random replacement. The draws are
    always ``3 * B * T`` uniform numbers in the same order, whatever the content of the batch.
    """
    if maskable.dim() != 2:
        raise ValueError(f"expected [B, T] tensors, got shape {tuple(maskable.shape)}")
    device = generator.device
    maskable = maskable.to(device=device, dtype=torch.bool)
    shape = maskable.shape

    select_u = torch.rand(shape, generator=generator, device=device)
    category_u = torch.rand(shape, generator=generator, device=device)
    # float64 so that picking one of K candidates stays uniform for vocabularies of 250k+.
    candidate_u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)

    if config.whole_word:
        if word_start is None:
            raise ValueError("whole-word masking needs word_start [B, T]")
        if word_start.shape != shape:
            raise ValueError(
                f"word_start has shape {tuple(word_start.shape)}, expected {tuple(shape)}"
            )
        word_idx = _word_index(maskable, word_start.to(device=device, dtype=torch.bool))
        # One draw per word: the draw at column j is used for the row's j-th word.
        select_u = torch.gather(select_u, 1, word_idx)

    selected = maskable & (select_u < config.mlm_probability)
    category = torch.full(shape, NOT_SELECTED, dtype=torch.long, device=device)
    to_mask = category_u < config.mask_ratio
    to_random = ~to_mask & (category_u < config.mask_ratio + config.random_ratio)
    category[selected & to_mask] = TO_MASK
    category[selected & to_random] = TO_RANDOM
    category[selected & ~to_mask & ~to_random] = TO_KEEP
    return category, candidate_u


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    maskable: torch.Tensor,
    mask_token_id: int,
    random_token_ids: torch.Tensor,
    config: MaskingConfig,
    generator: torch.Generator,
    word_start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch for the MLM objective.

    Args:
        input_ids: token ids [B, T].
        maskable: [B, T], False at special tokens and padding; those are never selected.
        mask_token_id: id of the mask token.
        random_token_ids: [K] candidate ids for random replacement (non-special vocabulary).
        config: rates; see :class:`MaskingConfig`.
        generator: source of all randomness (its device decides where the draws happen; the
            result is moved to ``input_ids.device``).
        word_start: [B, T], True where a token begins a word; required when
            ``config.whole_word``.

    Returns:
        ``(masked_ids [B, T], labels [B, T])``; labels hold the original id at selected positions
        and ``IGNORE_INDEX`` (-100) elsewhere.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    if maskable.shape != input_ids.shape:
        raise ValueError(
            f"maskable has shape {tuple(maskable.shape)}, expected {tuple(input_ids.shape)}"
        )
    category, candidate_u = draw_categories(
        maskable, config=config, generator=generator, word_start=word_start
    )
    device = input_ids.device
    category = category.to(device)

    masked = input_ids.clone()
    labels = torch.where(
        category != NOT_SELECTED, input_ids, torch.full_like(input_ids, IGNORE_INDEX)
    )
    masked[category == TO_MASK] = mask_token_id

    to_random = category == TO_RANDOM
    if bool(to_random.any()):
        candidates = random_token_ids.to(device=device, dtype=input_ids.dtype).reshape(-1)
        if candidates.numel() == 0:
            raise ValueError("random_token_ids is empty but random replacement was requested")
        k = candidates.numel()
        pick = (candidate_u.to(device) * k).long().clamp_(max=k - 1)  # uniform in 0 .. K-1
        masked[to_random] = candidates[pick[to_random]]
    return masked, labels
