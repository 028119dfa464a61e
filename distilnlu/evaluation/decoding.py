"""Valid BIO slot tags from per-word slot logits: a constrained Viterbi decoder.

A per-word argmax can emit ``I-x`` right after ``O`` or after another type's tag. The slot
metric (:func:`~distilnlu.evaluation.metrics.chunks`, the conlleval reading) reads such an
orphan ``I-x`` as opening a slot, so invalid sequences cost slot F1 and show up as broken slots
in ``predict`` and ``serve``. :class:`BIODecoder` instead returns the most probable *valid*
sequence under the model's independent per-word tag distributions: ``I-x`` only after ``B-x``
or ``I-x``, never first; everything else is allowed.

Optionally the path score also weighs in a :class:`TagPrior`: the log-probabilities of the first
tag and of each tag bigram in the training data, times a weight chosen on dev
(:func:`tune_prior`). The tagger scores each word on its own; the prior adds what the training
data says about tag sequences (a CRF's transition scores, estimated by counting instead of
learned). On MASSIVE it mostly removes spurious one-word slots (docs/finetuning.md).

The decoder and the prior's form are :mod:`distilnlu.modeling.nlu_parse`'s (the file every
fine-tuned folder carries, so a folder decodes without distilnlu exactly as distilnlu does);
counting the prior and tuning its weight, which only training needs, are here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from distilnlu.modeling.nlu_parse import BIODecoder, SlotPrior

__all__ = ["PRIOR_WEIGHTS", "BIODecoder", "TagPrior", "tune_prior"]

PRIOR_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
"""The prior weights :func:`tune_prior` tries: 0 (no prior) to 1 (the prior as a full model)."""


class TagPrior(SlotPrior):
    """Tag statistics of a training set (:class:`~distilnlu.modeling.nlu_parse.SlotPrior`: how
    often each tag starts an utterance and follows each other tag, and the weight of their
    add-one-smoothed log-probabilities in decoding), counted by :meth:`count`."""

    @classmethod
    def count(cls, sequences: Iterable[Sequence[int]], n_tags: int) -> TagPrior:
        """Counts over tag-id sequences (ids in ``range(n_tags)``; empty sequences skipped)."""
        start = np.zeros(n_tags, dtype=np.int64)
        bigrams = np.zeros((n_tags, n_tags), dtype=np.int64)
        for ids in sequences:
            if len(ids):
                start[ids[0]] += 1
                for a, b in itertools.pairwise(ids):
                    bigrams[a, b] += 1
        return cls(start, bigrams)


def tune_prior(
    prior: TagPrior,
    tags: Sequence[str],
    scores: Sequence[np.ndarray],
    starts: Sequence[Sequence[int]],
    metric: Callable[[list[list[str]]], float],
    weights: Sequence[float] = PRIOR_WEIGHTS,
) -> tuple[TagPrior, dict[str, float]]:
    """The prior with the weight of ``weights`` whose decoded tags score best under ``metric``
    (held-out utterances: sub-token ``scores`` ``[T_i, S]`` and word ``starts`` per utterance;
    ``metric`` maps the tags of every utterance to a score, e.g. dev slot F1), the smallest
    weight on a tie; and the score of each weight."""
    results: dict[str, float] = {}
    best_weight, best_score = 0.0, -math.inf
    for weight in weights:
        decoder = BIODecoder(tags, prior.with_weight(weight))
        predicted = [
            [tags[t] if t >= 0 else "O" for t in decoder.decode_words(s, w)]
            for s, w in zip(scores, starts, strict=True)
        ]
        value = metric(predicted)
        results[str(weight)] = value
        if value > best_score:
            best_weight, best_score = weight, value
    return prior.with_weight(best_weight), results
