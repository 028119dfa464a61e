"""Text in, intent and slots out: what ``predict`` and the HTTP service run.

Utterances are split into words on whitespace, as the training data is; each word's tag is read
on its first sub-token (as in training), and BIO tags become slots with *character* offsets into
the original text, so a caller can highlight them without re-tokenising.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilnlu.data.finetune import first_subtokens
from distilnlu.data.labeled import LabelVocab
from distilnlu.deploy.backends import RunFn, load_backend, resolve_backend
from distilnlu.deploy.texts import MAX_CHARS, check_text
from distilnlu.errors import ModelError
from distilnlu.evaluation.decoding import BIODecoder, TagPrior
from distilnlu.evaluation.metrics import chunks
from distilnlu.modeling.classifier import read_nlu_config, read_slot_prior
from distilnlu.tasks import task_named
from distilnlu.tokenization import load_tokenizer

_WORD = re.compile(r"\S+")
DEFAULT_MAX_LENGTH = 128


@dataclass(frozen=True)
class Words:
    """An utterance's words and their ``[start, end)`` character offsets."""

    words: list[str]
    offsets: list[tuple[int, int]]


def split_words(text: str) -> Words:
    found = list(_WORD.finditer(text))
    return Words([m.group() for m in found], [m.span() for m in found])


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


def _private_fast_tokenizer(tokenizer: Any, max_length: int) -> Any:
    """A copy of a fast tokenizer's Rust tokenizer, truncating at ``max_length``, no padding
    (``None`` for slow tokenizers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    fast = Tokenizer.from_str(backend.to_str())
    fast.enable_truncation(max_length)
    fast.no_padding()
    return fast


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


class Parser:
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
        prior: TagPrior | None = None,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self.run, self.tokenizer, self.labels = run, tokenizer, labels
        self.max_length, self.backend, self.name = max_length, backend, name
        self.max_chars = max_chars
        self.prior = prior
        self._fast = _private_fast_tokenizer(tokenizer, max_length)
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
        rows = self._tokenize([w.words for w in split])
        width = max(len(ids) for ids, _ in rows)
        input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        starts = []
        for row, ((ids, word_ids), words) in enumerate(zip(rows, split, strict=True)):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
            starts.append(first_subtokens(word_ids, len(words.words)))
        return input_ids, mask, starts

    def _tokenize(self, words: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        """Token ids and word ids per utterance, truncated to ``max_length`` like training.

        Fast tokenizers are called directly (a private copy with its own truncation setting):
        the ``transformers`` wrapper costs more than the tokenisation itself at batch 1, and
        batch 1 is what a live request is.
        """
        if self._fast is not None:
            return [
                (e.ids, e.word_ids) for e in self._fast.encode_batch(words, is_pretokenized=True)
            ]
        enc = self.tokenizer(
            words, is_split_into_words=True, truncation=True, max_length=self.max_length
        )
        return [(ids, enc.word_ids(i)) for i, ids in enumerate(enc["input_ids"])]

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
            _softmax(intent_logits.astype(np.float64)),
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
        results = []
        for row, (text, words) in enumerate(zip(texts, split, strict=True)):
            best = int(out.probs[row].argmax())
            results.append(
                {
                    "text": text,
                    "intent": self.labels.intents[best],
                    "confidence": round(float(out.probs[row, best]), 4),
                    "slots": slots_from_tags(text, words.offsets, out.tags[row]),
                    "truncated": out.truncated[row],
                }
            )
        return results


def slots_from_tags(
    text: str, offsets: Sequence[tuple[int, int]], tags: Sequence[str]
) -> list[dict[str, Any]]:
    """BIO tags (one per word) to slots with character offsets, in text order.

    Chunks are read exactly as the slot metric reads them (:func:`chunks`: an ``I-`` tag with no
    ``B-`` opens a slot), so what is shown is what is scored.
    """
    found = sorted(chunks(tags), key=lambda c: c[1])
    out = []
    for type_, first, end in found:
        start, stop = offsets[first][0], offsets[end - 1][1]
        out.append({"type": type_, "value": text[start:stop], "start": start, "end": stop})
    return out
