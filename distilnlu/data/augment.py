"""TinyBERT-style augmentation: new utterances whose words a masked LM chose.

Each variant of an utterance picks words with probability ``word_prob`` (at least one), masks
each picked word as one ``<mask>``, and replaces it with a word drawn uniformly from the masked
LM's ``top_k`` single-token whole-word predictions at that position (the original word and
special tokens excluded). The draws come from a generator seeded by (seed, utterance, copy), so
the same recipe makes the same variants in any batch order, on resume too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from distilnlu.tokenization import word_start_table

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from distilnlu.supervised_config import AugmentConfig

Words = list[str]


class Augmenter:
    """Makes variants of pre-split utterances with one masked LM (eval mode, no gradients)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        cfg: AugmentConfig,
        max_length: int,
    ) -> None:
        self.model, self.tokenizer, self.cfg, self.max_length = model, tokenizer, cfg, max_length
        allowed = word_start_table(tokenizer)
        allowed[torch.tensor(sorted(set(tokenizer.all_special_ids)))] = False
        self.words = [str(tokenizer.decode([i])).strip() for i in range(len(tokenizer))]
        allowed &= torch.tensor([bool(w) and " " not in w for w in self.words])
        self.blocked = ~allowed  # [V]: never proposed

    def pick(self, words: Sequence[str], rng: random.Random) -> list[int]:
        """Indices of the words a variant replaces (at least one)."""
        chosen = [i for i in range(len(words)) if rng.random() < self.cfg.word_prob]
        return chosen or [rng.randrange(len(words))]

    def variants(self, texts: Sequence[Words], batch_size: int = 64) -> list[Words]:
        """``cfg.copies`` variants of every utterance, in order (copies of one text together)."""
        jobs = [(i, c) for i in range(len(texts)) for c in range(self.cfg.copies) if texts[i]]
        out: list[Words] = []
        for start in range(0, len(jobs), batch_size):
            out.extend(self._batch([(texts[i], i, c) for i, c in jobs[start : start + batch_size]]))
        return out

    def _batch(self, jobs: Sequence[tuple[Words, int, int]]) -> list[Words]:
        rows, picked, rngs = [], [], []
        for words, index, copy in jobs:
            rng = random.Random(f"{self.cfg.seed}:{index}:{copy}")
            chosen = self.pick(words, rng)
            rows.append(self._masked_ids(words, set(chosen)))
            picked.append(chosen)
            rngs.append(rng)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        for row, r in enumerate(rows):
            ids[row, : len(r)] = torch.tensor(r)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids.to(device),
                attention_mask=(ids != self.tokenizer.pad_token_id).to(device),
            ).logits
        logits = logits.float().masked_fill(self.blocked.to(device), -float("inf"))
        out = []
        for row, ((words, _, _), chosen, rng) in enumerate(zip(jobs, picked, rngs, strict=True)):
            positions = (ids[row] == self.tokenizer.mask_token_id).nonzero().flatten().tolist()
            new = list(words)
            for word_index, position in zip(chosen, positions, strict=False):
                new[word_index] = self._draw(logits[row, position], words[word_index], rng)
            out.append(new)
        return out

    def _masked_ids(self, words: Sequence[str], chosen: set[int]) -> list[int]:
        """``<s> … </s>`` ids with each chosen word's sub-tokens replaced by one ``<mask>``;
        chosen words cut off by ``max_length`` stay as they are."""
        enc = self.tokenizer(
            list(words), is_split_into_words=True, truncation=True, max_length=self.max_length
        )
        ids: list[int] = []
        previous = None
        for token, word in zip(enc["input_ids"], enc.word_ids(), strict=True):
            if word is not None and word in chosen:
                if word != previous:
                    ids.append(self.tokenizer.mask_token_id)
            else:
                ids.append(token)
            previous = word
        return ids

    def _draw(self, scores: torch.Tensor, original: str, rng: random.Random) -> str:
        """A word drawn uniformly from the ``top_k`` best predictions other than ``original``."""
        best = scores.topk(self.cfg.top_k + 1).indices.tolist()
        candidates = [
            self.words[i]
            for i in best
            if scores[i] > -float("inf") and self.words[i].lower() != original.lower()
        ][: self.cfg.top_k]
        return rng.choice(candidates) if candidates else original
