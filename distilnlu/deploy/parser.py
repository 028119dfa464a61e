"""Text in, intent and slots out: what ``predict`` and the HTTP service run.

Utterances are split into words on whitespace, as the training data is; each word's tag is read
on its first sub-token (as in training), and BIO tags become slots with *character* offsets into
the original text, so a caller can highlight them without re-tokenising.

Each step is :mod:`distilnlu.modeling.nlu_parse`'s, the file every fine-tuned folder carries, so
that a folder used without distilnlu answers as this parser does; here are the model backends,
distilnlu's errors and the raw outputs that export's parity checks compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilnlu.data.labeled import LabelVocab
from distilnlu.deploy.backends import RunFn, load_backend, resolve_backend
from distilnlu.deploy.texts import MAX_CHARS, check_text
from distilnlu.errors import ModelError
from distilnlu.evaluation.metrics import chunks
from distilnlu.modeling import nlu_parse
from distilnlu.modeling.classifier import read_nlu_config, read_slot_prior
from distilnlu.modeling.nlu_parse import (
    DEFAULT_MAX_LENGTH,
    BIODecoder,
    SlotPrior,
    WordEncoder,
    answer,
    slots_from_chunks,
    softmax,
)
from distilnlu.tasks import task_named
from distilnlu.tokenization import load_tokenizer


@dataclass(frozen=True)
class Words:
    """An utterance's words and their ``[start, end)`` character offsets."""

    words: list[str]
    offsets: list[tuple[int, int]]


def split_words(text: str) -> Words:
    """The words of ``text``: :func:`distilnlu.modeling.nlu_parse.split_words`."""
    return Words(*nlu_parse.split_words(text))


@dataclass(frozen=True)
class Tagged:
    """One batch through the model: intent probabilities ``[B, I]``, one tag per word (``O`` for
    words cut off by ``max_length``, flagged in ``truncated``), and the raw logits with the
    ``attention_mask`` ``[B, T]`` they were computed under (for parity checks)."""

    probs: np.ndarray
    tags: list[list[str]]
    truncated: list[bool]
    intent_logits: np.ndarray
    slot_logits: np.ndarray | None
    mask: np.ndarray


class Parser(WordEncoder):
    """A fine-tuned intent + slot model behind ``parse(texts) -> [result, ...]``.

    A result is ``{"text", "intent", "confidence", "slots": [{"type", "value", "start", "end"}],
    "truncated"}``; ``truncated`` says words past ``max_length`` sub-tokens were not tagged.
    ``parse`` refuses texts :func:`~distilnlu.deploy.texts.check_text` refuses (longer than
    ``max_chars``, among others) with a :class:`~distilnlu.errors.DataError`.
    """

    def __init__(
        self,
        run: RunFn,
        tokenizer: Any,
        labels: LabelVocab,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        backend: str = "torch",
        name: str = "",
        prior: SlotPrior | None = None,
        max_chars: int = MAX_CHARS,
    ) -> None:
        super().__init__(tokenizer, max_length, tokenizer.pad_token_id)
        self.run, self.labels = run, labels
        self.backend, self.name = backend, name
        self.max_chars = max_chars
        self.prior = prior
        # Built once, not per call; the model's slot prior, as evaluation decodes with it.
        self.decoder = BIODecoder(labels.slot_tags, prior)

    @classmethod
    def load(
        cls,
        folder: str | Path,
        backend: str = "auto",
        threads: int | None = None,
        max_chars: int = MAX_CHARS,
    ) -> Parser:
        """The model of ``folder``; its tokenizer is checked to be real and to fit the model's
        vocabulary (:func:`~distilnlu.tokenization.load_tokenizer`)."""
        folder = Path(folder)
        settings = read_nlu_config(folder)
        if not task_named(settings["task"]).has_slots:
            raise ModelError(
                f"{folder} is a {settings['task']!r} model; predict and serve take intent + slot"
                " models (evaluate it with `distilnlu evaluate`)"
            )
        chosen = resolve_backend(folder, backend)
        labels = LabelVocab.load(folder)
        tokenizer = load_tokenizer(folder)  # before the model: a folder without one fails fast
        return cls(
            load_backend(folder, chosen, threads),
            tokenizer,
            labels,
            max_length=int(settings.get("max_length", DEFAULT_MAX_LENGTH)),
            backend=chosen,
            name=folder.name,
            prior=read_slot_prior(folder, settings, len(labels.slot_tags)),
            max_chars=max_chars,
        )

    def encode(self, split: Sequence[Words]) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """``input_ids``/``attention_mask`` ``[B, T]`` (right-padded) and, per text, each
        word's first sub-token position (-1: truncated away)."""
        return self.encode_words([w.words for w in split])

    def tag_words(self, split: Sequence[Words]) -> Tagged:
        """Run the model on split utterances; see :class:`Tagged`."""
        ids, mask, starts = self.encode(split)
        intent_logits, slot_logits = self.run(ids, mask)
        # Constrained decoding, not argmax: what is served is valid BIO, as evaluation scores.
        tag_ids = (
            self.decoder.decode_batch(slot_logits, starts)
            if slot_logits is not None
            else [[-1] * len(row) for row in starts]
        )
        tags = [[self.labels.slot_tags[t] if t >= 0 else "O" for t in row] for row in tag_ids]
        return Tagged(
            softmax(intent_logits.astype(np.float64)),
            tags,
            [-1 in row for row in starts],
            intent_logits,
            slot_logits,
            mask,
        )

    def parse(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        if not texts:
            return []
        for i, text in enumerate(texts):
            check_text(text, f"text {i}", self.max_chars)
        split = [split_words(t) for t in texts]
        out = self.tag_words(split)
        return [
            answer(
                text,
                self.labels.intents,
                out.probs[row],
                slots_from_tags(text, words.offsets, out.tags[row]),
                out.truncated[row],
            )
            for row, (text, words) in enumerate(zip(texts, split, strict=True))
        ]


def slots_from_tags(
    text: str, offsets: Sequence[tuple[int, int]], tags: Sequence[str]
) -> list[dict[str, Any]]:
    """BIO tags (one per word) to slots with character offsets, in text order.

    Chunks are read exactly as the slot metric reads them (:func:`chunks`: an ``I-`` tag with no
    ``B-`` opens a slot, and a tag that is not BIO warns as it does), so what is shown is what
    is scored.
    """
    return slots_from_chunks(text, offsets, chunks(tags))
