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

numpy only, so that the deployment path (ONNX backends) needs no torch for it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PRIOR_WEIGHTS", "BIODecoder", "TagPrior", "tune_prior"]

PRIOR_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
"""The prior weights :func:`tune_prior` tries: 0 (no prior) to 1 (the prior as a full model)."""


def _inside_type(tag: str) -> str | None:
    """The ``x`` of an ``I-x`` tag; None for every other tag (those are unconstrained)."""
    return tag[2:] if tag.startswith("I-") and len(tag) > 2 else None


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    # float64 so that sums over a sentence compare exactly enough to break near-ties sensibly.
    x = scores.astype(np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@dataclass(frozen=True)
class TagPrior:
    """Tag statistics of a training set: how often each tag starts an utterance
    (``start_counts`` ``[S]``) and follows each other tag (``bigram_counts`` ``[previous,
    next]``); ``weight`` scales their add-one-smoothed log-probabilities in decoding."""

    start_counts: np.ndarray
    bigram_counts: np.ndarray
    weight: float = 0.0

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

    @property
    def n_tags(self) -> int:
        return len(self.start_counts)

    def log_start(self) -> np.ndarray:
        smoothed = self.start_counts + 1.0
        return np.log(smoothed / smoothed.sum())

    def log_transitions(self) -> np.ndarray:
        smoothed = self.bigram_counts + 1.0
        return np.log(smoothed / smoothed.sum(1, keepdims=True))

    def with_weight(self, weight: float) -> TagPrior:
        return dataclasses.replace(self, weight=float(weight))

    def to_json(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "start_counts": self.start_counts.tolist(),
            "bigram_counts": self.bigram_counts.tolist(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], n_tags: int) -> TagPrior:
        """Read :meth:`to_json`'s form; ValueError if it is malformed or not over ``n_tags``."""
        try:
            weight = float(d["weight"])
            start = np.asarray(d["start_counts"], dtype=np.int64)
            bigrams = np.asarray(d["bigram_counts"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed slot prior ({type(exc).__name__}: {exc})") from None
        if start.shape != (n_tags,) or bigrams.shape != (n_tags, n_tags) or weight < 0:
            raise ValueError(
                f"the slot prior is over {start.shape} / {bigrams.shape} tags with weight"
                f" {weight}; the labels have {n_tags} slot tags"
            )
        return cls(start, bigrams, weight)


class BIODecoder:
    """Most probable valid BIO tag sequence for ``[n_words, n_tags]`` logits over ``tags``,
    with a :class:`TagPrior` weighed in when one with a positive weight is given.

    Tag ids are positions in ``tags`` (``LabelVocab.slot_tags``).
    """

    def __init__(self, tags: Sequence[str], prior: TagPrior | None = None) -> None:
        self.tags = list(tags)
        self.allowed_start, self.allowed = self._rules(self.tags)
        # Additive scores, computed once: a disallowed step is -inf, so it ends a path.
        self.start = np.where(self.allowed_start, 0.0, -np.inf)
        self.transitions = np.where(self.allowed, 0.0, -np.inf)  # [previous, next]
        if prior is not None and prior.weight > 0:
            if prior.n_tags != len(self.tags):
                raise ValueError(
                    f"the slot prior is over {prior.n_tags} tags, the decoder {len(self.tags)}"
                )
            self.start = self.start + prior.weight * prior.log_start()
            self.transitions = self.transitions + prior.weight * prior.log_transitions()

    @staticmethod
    def _rules(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Which tags may start a sequence ``[n]``, and may follow which ``[previous, next]``."""
        inside = [_inside_type(t) for t in tags]
        allowed_start = np.array([x is None for x in inside], dtype=bool)
        allowed = np.ones((len(tags), len(tags)), dtype=bool)
        for nxt, type_ in enumerate(inside):
            if type_ is not None:
                allowed[:, nxt] = [prev in (f"B-{type_}", f"I-{type_}") for prev in tags]
        return allowed_start, allowed

    def is_valid(self, ids: Sequence[int]) -> bool:
        """Whether the tag ids form a sequence this decoder may return."""
        if not ids:
            return True
        steps = (self.allowed[a, b] for a, b in itertools.pairwise(ids))
        return bool(self.allowed_start[ids[0]] and all(steps))

    def decode(self, scores: np.ndarray) -> list[int]:
        """Tag ids of the most probable valid sequence for ``[n_words, n_tags]`` logits."""
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != len(self.tags):
            raise ValueError(
                f"expected scores of shape [n_words, {len(self.tags)}], got {list(scores.shape)}"
            )
        if len(scores) == 0:
            return []
        log_probs = _log_softmax(scores)
        best, back = self._forward(log_probs)
        if not np.isfinite(best.max()):
            raise ValueError(f"no valid BIO sequence exists over the tags {self.tags}")
        return self._backtrack(int(best.argmax()), back)

    def _forward(self, log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best path score ending in each tag after the last word, and the back-pointers
        ``[n_words - 1, n_tags]`` (the best previous tag for each word after the first)."""
        best = log_probs[0] + self.start
        back = np.empty((len(log_probs) - 1, len(self.tags)), dtype=np.int64)
        for t in range(1, len(log_probs)):
            candidates = best[:, None] + self.transitions  # [previous, next]
            back[t - 1] = candidates.argmax(0)
            best = candidates.max(0) + log_probs[t]
        return best, back

    @staticmethod
    def _backtrack(last: int, back: np.ndarray) -> list[int]:
        path = [last]
        for pointers in back[::-1]:
            path.append(int(pointers[path[-1]]))
        return path[::-1]

    def decode_words(self, scores: np.ndarray, starts: Sequence[int]) -> list[int]:
        """Tag ids per word from sub-token logits ``[n_tokens, n_tags]``: decoded over the rows
        ``starts`` (each word's first sub-token), ``-1`` where a start is ``-1`` (truncated).

        Truncated words are the last ones, so the kept words are one contiguous sentence.
        """
        kept = [s for s in starts if s >= 0]
        decoded = iter(self.decode(np.asarray(scores)[kept]))
        return [next(decoded) if s >= 0 else -1 for s in starts]

    def decode_batch(self, scores: np.ndarray, starts: Sequence[Sequence[int]]) -> list[list[int]]:
        """:meth:`decode_words` for each row of ``[B, n_tokens, n_tags]`` logits."""
        return [self.decode_words(scores[row], s) for row, s in enumerate(starts)]


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
