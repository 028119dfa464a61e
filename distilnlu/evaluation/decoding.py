"""Valid BIO slot tags from per-word slot logits: a constrained Viterbi decoder.

A per-word argmax can emit ``I-x`` right after ``O`` or after another type's tag. The slot
metric (:func:`~distilnlu.evaluation.metrics.chunks`, the conlleval reading) reads such an
orphan ``I-x`` as opening a slot, so invalid sequences cost slot F1 and show up as broken slots
in ``predict`` and ``serve``. :class:`BIODecoder` instead returns the most probable *valid*
sequence under the model's independent per-word tag distributions: ``I-x`` only after ``B-x``
or ``I-x``, never first; everything else is allowed.

numpy only, so that the deployment path (ONNX backends) needs no torch for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["BIODecoder"]


def _inside_type(tag: str) -> str | None:
    """The ``x`` of an ``I-x`` tag; None for every other tag (those are unconstrained)."""
    return tag[2:] if tag.startswith("I-") and len(tag) > 2 else None


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    # float64 so that sums over a sentence compare exactly enough to break near-ties sensibly.
    x = scores.astype(np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


class BIODecoder:
    """Most probable valid BIO tag sequence for ``[n_words, n_tags]`` logits over ``tags``.

    Tag ids are positions in ``tags`` (``LabelVocab.slot_tags``).
    """

    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = list(tags)
        allowed_start, allowed = self._rules(self.tags)
        # Additive masks (0 or -inf), computed once: a disallowed step makes a path -inf.
        self.start = np.where(allowed_start, 0.0, -np.inf)
        self.transitions = np.where(allowed, 0.0, -np.inf)  # [previous, next]

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
        steps = (self.transitions[a, b] for a, b in itertools.pairwise(ids))
        return bool(self.start[ids[0]] == 0.0 and all(s == 0.0 for s in steps))

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
