"""Text in, intent and slots out, for a fine-tuned distilnlu intent + slot model, *without*
distilnlu: what ``distilnlu predict`` answers, from any model call.

distilnlu saves this file verbatim into every fine-tuned model folder (and ``distilnlu export``
refreshes it next to ``model.onnx``), so that a folder can be used with numpy and a tokenizer
alone. It must therefore import nothing but the standard library and numpy: ``tokenizers`` is
imported only by :meth:`NLUParser.from_folder`, and the model call is any callable
``(input_ids [B, T] int64, attention_mask [B, T] int64) -> (intent_logits [B, I], slot_logits
[B, T, S])`` on numpy arrays: an ``onnxruntime`` session on ``model.onnx``, or the transformers
model of ``modeling_nlu.py`` (the same folder).

distilnlu's own ``Parser`` (``predict``, ``serve``), its evaluation decoding and its slot
metric are built on this very module, so that what it answers is what distilnlu answers, bit for
bit. What it does, step by step:

1. words are the runs of non-whitespace characters, with their character offsets;
2. the words are tokenised pre-split (``is_pretokenized``), with special tokens, truncated at
   ``max_length`` sub-tokens (``nlu_config.json``, 128 when absent), right-padded per batch;
3. intent: softmax (float64) over the intent logits, the best one, its probability rounded to 4
   decimals;
4. slots: each word is read on its *first* sub-token; the most probable valid BIO sequence over
   those rows (``I-x`` only after ``B-x`` or ``I-x``), with the tag-bigram prior of
   ``nlu_config.json`` (``slot_prior``) weighed in when its weight is positive;
5. BIO tags become slots ``{type, value, start, end}`` with character offsets, read as the slot
   metric (seqeval, conlleval) reads chunks.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "BIODecoder",
    "NLUParser",
    "SlotPrior",
    "WordEncoder",
    "answer",
    "check_text",
    "chunks",
    "first_subtokens",
    "json_kind",
    "slots_from_chunks",
    "slots_from_tags",
    "softmax",
    "split_tag",
    "split_words",
]

WORD = re.compile(r"\S+")
MAX_CHARS = 1000
"""The longest text accepted by default, in characters (``serve --max-chars`` changes it)."""
DEFAULT_MAX_LENGTH = 128  # sub-tokens, when nlu_config.json names none
BATCH_SIZE = 32  # texts per model call: distilnlu predict's default --batch-size

RunFn = Callable[[np.ndarray, np.ndarray], Sequence[Any]]


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of ``text`` (runs of non-whitespace) and their ``[start, end)`` offsets."""
    found = list(WORD.finditer(text))
    return [m.group() for m in found], [m.span() for m in found]


_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string"}


def json_kind(value: Any) -> str:
    """A JSON value's type, in JSON's words."""
    return _KINDS.get(type(value), "list" if isinstance(value, list) else "object")


def _unencodable(text: str, where: str) -> str | None:
    """Why ``text`` cannot be UTF-8, or None. Surrogates U+DC80-U+DCFF are what Python's
    ``surrogateescape`` makes of undecodable bytes, so those name the original byte."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        if 0xDC80 <= code <= 0xDCFF:
            byte = code - 0xDC00
            return f"{where} is not valid UTF-8 (byte 0x{byte:02x} at character {exc.start})"
        return (
            f"{where} is not valid Unicode text: it holds a lone surrogate U+{code:04X} at"
            f" character {exc.start}"
        )
    return None


def check_text(text: Any, where: str = "the text", max_chars: int = MAX_CHARS) -> str:
    """``text`` itself if it can be parsed; else a ValueError naming ``where`` (``"text 3"``).

    Refused: not a string; not writable as UTF-8 (a lone surrogate, which JSON allows and Python
    makes of undecodable bytes: the tokenizer raises on it, and the answer, which echoes the
    text, could not be encoded either); empty or only whitespace (no word to tag); longer than
    ``max_chars`` characters. Checking before the model call keeps one bad text from failing the
    texts batched with it.
    """
    if not isinstance(text, str):
        raise ValueError(f"{where} must be a string, not a {json_kind(text)}")
    problem = _unencodable(text, where)
    if problem:
        raise ValueError(problem)
    if not text.strip():
        raise ValueError(f"{where} is empty or only whitespace: there is nothing to parse")
    if len(text) > max_chars:
        raise ValueError(f"{where} is {len(text)} characters long; the limit is {max_chars}")
    return text


def first_subtokens(word_ids: Sequence[int | None], n_words: int) -> list[int]:
    """Position of each word's first sub-token (``-1``: truncated away), from a tokenizer's
    word ids; where slot labels go in training and where tags are read in decoding."""
    starts = [-1] * n_words
    previous = None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            starts[word] = position
        previous = word
    return starts


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in ``x``'s dtype (intents: float64)."""
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    # float64 so that sums over a sentence compare exactly enough to break near-ties sensibly.
    x = scores.astype(np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


P = TypeVar("P", bound="SlotPrior")


@dataclass(frozen=True)
class SlotPrior:
    """``nlu_config.json``'s ``slot_prior``: how often each tag started a training utterance
    (``start_counts`` ``[S]``) and followed each other tag (``bigram_counts`` ``[previous,
    next]``); ``weight`` scales their add-one-smoothed log-probabilities in decoding."""

    start_counts: np.ndarray
    bigram_counts: np.ndarray
    weight: float = 0.0

    @property
    def n_tags(self) -> int:
        return len(self.start_counts)

    def with_weight(self: P, weight: float) -> P:
        return dataclasses.replace(self, weight=float(weight))

    def to_json(self) -> dict[str, Any]:
        """The form ``nlu_config.json`` holds, read back by :meth:`from_json`."""
        return {
            "weight": self.weight,
            "start_counts": self.start_counts.tolist(),
            "bigram_counts": self.bigram_counts.tolist(),
        }

    @classmethod
    def from_json(cls: type[P], d: Mapping[str, Any], n_tags: int) -> P:
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

    def log_start(self) -> np.ndarray:
        smoothed = self.start_counts + 1.0
        return np.log(smoothed / smoothed.sum())

    def log_transitions(self) -> np.ndarray:
        smoothed = self.bigram_counts + 1.0
        return np.log(smoothed / smoothed.sum(1, keepdims=True))


class BIODecoder:
    """The most probable *valid* BIO tag sequence (constrained Viterbi) for ``[n_words,
    n_tags]`` logits over ``tags``, with a :class:`SlotPrior` weighed in when its weight is
    positive. A per-word argmax could emit ``I-x`` after ``O``, which reads as a broken slot:
    valid is ``I-x`` only after ``B-x`` or ``I-x``, never first; everything else is allowed.
    Tag ids are positions in ``tags``."""

    def __init__(self, tags: Sequence[str], prior: SlotPrior | None = None) -> None:
        self.tags = list(tags)
        inside = [t[2:] if t.startswith("I-") and len(t) > 2 else None for t in self.tags]
        # Which tags may start a sequence [n], and may follow which [previous, next].
        self.allowed_start = np.array([x is None for x in inside], dtype=bool)
        self.allowed = np.ones((len(self.tags), len(self.tags)), dtype=bool)
        for nxt, type_ in enumerate(inside):
            if type_ is not None:
                self.allowed[:, nxt] = [prev in (f"B-{type_}", f"I-{type_}") for prev in self.tags]
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

    def is_valid(self, ids: Sequence[int]) -> bool:
        """Whether the tag ids form a sequence this decoder may return."""
        if not ids:
            return True
        steps = (self.allowed[a, b] for a, b in itertools.pairwise(ids))
        return bool(self.allowed_start[ids[0]] and all(steps))

    def decode(self, scores: np.ndarray) -> list[int]:
        """Tag ids of the best valid sequence for ``[n_words, n_tags]`` logits."""
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != len(self.tags):
            raise ValueError(
                f"expected scores of shape [n_words, {len(self.tags)}], got {list(scores.shape)}"
            )
        if len(scores) == 0:
            return []
        log_probs = _log_softmax(scores)
        best = log_probs[0] + self.start
        back = np.empty((len(log_probs) - 1, len(self.tags)), dtype=np.int64)
        for t in range(1, len(log_probs)):
            candidates = best[:, None] + self.transitions  # [previous, next]
            back[t - 1] = candidates.argmax(0)
            best = candidates.max(0) + log_probs[t]
        if not np.isfinite(best.max()):
            raise ValueError(f"no valid BIO sequence exists over the tags {self.tags}")
        path = [int(best.argmax())]
        for pointers in back[::-1]:
            path.append(int(pointers[path[-1]]))
        return path[::-1]

    def decode_words(self, scores: np.ndarray, starts: Sequence[int]) -> list[int]:
        """Tag ids per word from sub-token logits ``[n_tokens, n_tags]``, decoded over the rows
        ``starts``; ``-1`` for a truncated word (start ``-1``; those are the last words)."""
        kept = [s for s in starts if s >= 0]
        decoded = iter(self.decode(np.asarray(scores)[kept]))
        return [next(decoded) if s >= 0 else -1 for s in starts]

    def decode_batch(self, scores: np.ndarray, starts: Sequence[Sequence[int]]) -> list[list[int]]:
        """:meth:`decode_words` for each row of ``[B, n_tokens, n_tags]`` logits."""
        return [self.decode_words(scores[row], s) for row, s in enumerate(starts)]


def split_tag(tag: str) -> tuple[str, str]:
    """``(prefix, type)`` as seqeval reads a tag in its default mode: the first character is the
    prefix whatever it is, the type what follows the first "-" after it (all of the rest when
    there is none; "_" for no type, as for "O"). ValueError for an empty tag."""
    if not tag:
        raise ValueError("empty slot tag")
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def chunks(
    tags: Iterable[str], split: Callable[[str], tuple[str, str]] = split_tag
) -> list[tuple[str, int, int]]:
    """Slot chunks ``(type, start, end_exclusive)``, in order of their end, exactly as seqeval's
    ``get_entities`` reads them (``I-x`` with no ``B-x`` before it opens a chunk); ``split``
    reads each tag (:func:`split_tag`)."""
    found = []
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # the sentinel "O" closes a trailing chunk
        prefix, type_ = split(tag)
        # seqeval's end_of_chunk, then its start_of_chunk, condition for condition.
        if (
            prev in ("E", "S")
            or (prev in ("B", "I") and prefix in ("B", "S", "O"))
            or (prev not in ("O", ".") and prev_type != type_)
        ):
            found.append((prev_type, begin, i))
        if (
            prefix in ("B", "S")
            or (prev in ("E", "S", "O") and prefix in ("E", "I"))
            or (prefix not in ("O", ".") and prev_type != type_)
        ):
            begin = i
        prev, prev_type = prefix, type_
    return found


def slots_from_chunks(
    text: str, offsets: Sequence[tuple[int, int]], found: Iterable[tuple[str, int, int]]
) -> list[dict[str, Any]]:
    """Word chunks (:func:`chunks`) to ``{type, value, start, end}`` slots with character
    offsets into ``text``, in text order."""
    out = []
    for type_, first, end in sorted(found, key=lambda c: c[1]):
        start, stop = offsets[first][0], offsets[end - 1][1]
        out.append({"type": type_, "value": text[start:stop], "start": start, "end": stop})
    return out


def slots_from_tags(
    text: str, offsets: Sequence[tuple[int, int]], tags: Sequence[str]
) -> list[dict[str, Any]]:
    """BIO tags (one per word) to ``{type, value, start, end}`` slots, in text order, read as
    the slot metric reads them, so that what is shown is what is scored."""
    return slots_from_chunks(text, offsets, chunks(tags))


def answer(
    text: str, intents: Sequence[str], probs: np.ndarray, slots: list[dict[str, Any]], cut: bool
) -> dict[str, Any]:
    """One text's answer: the most probable intent of ``probs`` ``[I]``, its probability rounded
    to 4 decimals, the slots, and whether words were truncated away (``cut``)."""
    best = int(probs.argmax())
    return {
        "text": text,
        "intent": intents[best],
        "confidence": round(float(probs[best]), 4),
        "slots": slots,
        "truncated": cut,
    }


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _pad_id(tokenizer: Any, folder: Path | None = None) -> int:
    """The padding id: the tokenizer's own, else the pad token of the folder's
    ``tokenizer_config.json``, else ``config.json``'s ``pad_token_id``, else 0. (Padded positions
    are masked out, so the value only has to be a valid id.)"""
    own = getattr(tokenizer, "pad_token_id", None)
    if isinstance(own, int):
        return own
    if folder is not None:
        for name, key in (("tokenizer_config.json", "pad_token"), ("config.json", "pad_token_id")):
            value = _read_json(folder / name).get(key) if (folder / name).is_file() else None
            if isinstance(value, dict):  # an AddedToken written out
                value = value.get("content")
            if isinstance(value, str) and hasattr(tokenizer, "token_to_id"):
                value = tokenizer.token_to_id(value)
            if isinstance(value, int):
                return value
    return 0


class WordEncoder:
    """Pre-split words to model inputs, as training tokenised them: with special tokens,
    truncated at ``max_length`` sub-tokens, right-padded with ``pad_id`` per batch.

    A fast tokenizer's Rust core is called directly, on a private copy with its own truncation
    and no padding: the ``transformers`` wrapper costs more than the tokenisation itself at batch
    1, and batch 1 is what a live request is. A slow one is called through transformers.
    """

    def __init__(self, tokenizer: Any, max_length: int, pad_id: int) -> None:
        self.tokenizer, self.max_length, self.pad_id = tokenizer, max_length, pad_id
        core = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self._fast = None
        if hasattr(core, "encode_batch") and hasattr(core, "to_str"):
            self._fast = type(core).from_str(core.to_str())
            self._fast.enable_truncation(max_length)
            self._fast.no_padding()

    def _tokenize(self, words: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        """Token ids and word ids per utterance."""
        if self._fast is not None:
            return [
                (e.ids, e.word_ids) for e in self._fast.encode_batch(words, is_pretokenized=True)
            ]
        enc = self.tokenizer(
            words, is_split_into_words=True, truncation=True, max_length=self.max_length
        )
        return [(ids, enc.word_ids(i)) for i, ids in enumerate(enc["input_ids"])]

    def encode_words(
        self, words: Sequence[list[str]]
    ) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """``input_ids`` / ``attention_mask`` ``[B, T]`` int64 (right-padded) and each word's
        first sub-token position (-1: truncated away)."""
        rows = self._tokenize(list(words))
        width = max(len(ids) for ids, _ in rows)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        starts = []
        for row, ((ids, word_ids), text_words) in enumerate(zip(rows, words, strict=True)):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
            starts.append(first_subtokens(word_ids, len(text_words)))
        return input_ids, mask, starts


class NLUParser(WordEncoder):
    """Tokenizer + labels + decoding of a fine-tuned folder; ``parse(texts, run)`` answers as
    ``distilnlu predict`` does, one dict per text: ``{"text", "intent", "confidence", "slots":
    [{"type", "value", "start", "end"}], "truncated"}``.

    ``tokenizer``: a ``tokenizers.Tokenizer`` (``tokenizer.json``) or a transformers tokenizer.
    """

    def __init__(
        self,
        tokenizer: Any,
        intents: Sequence[str],
        slot_tags: Sequence[str],
        *,
        prior: SlotPrior | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        pad_id: int | None = None,
        max_chars: int = MAX_CHARS,
    ) -> None:
        if not slot_tags:
            raise ValueError("this is not an intent + slot model (it has no slot tags)")
        super().__init__(tokenizer, max_length, _pad_id(tokenizer) if pad_id is None else pad_id)
        self.intents, self.slot_tags = list(intents), list(slot_tags)
        self.max_chars = max_chars
        self.decoder = BIODecoder(self.slot_tags, prior)

    encode = WordEncoder.encode_words  # its name in the first copies of this file

    @classmethod
    def from_folder(cls, folder: str | Path, tokenizer: Any = None) -> NLUParser:
        """The parser of a fine-tuned folder: ``labels.json``, ``nlu_config.json`` (max_length,
        slot_prior) and ``tokenizer.json`` (read with ``tokenizers`` unless one is given)."""
        folder = Path(folder)
        if tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        labels = _read_json(folder / "labels.json")
        settings = _read_json(folder / "nlu_config.json")
        return cls.from_settings(tokenizer, labels, settings, _pad_id(tokenizer, folder))

    @classmethod
    def from_settings(
        cls,
        tokenizer: Any,
        labels: Mapping[str, Any],
        settings: Mapping[str, Any],
        pad_id: int | None = None,
    ) -> NLUParser:
        """From the contents of ``labels.json`` and ``nlu_config.json``."""
        if settings.get("task", "intent_slot") != "intent_slot":
            raise ValueError(
                f"this is a {settings['task']!r} model; parsing takes intent + slot models"
            )
        tags = labels["slot_tags"]
        raw = settings.get("slot_prior")
        return cls(
            tokenizer,
            labels["intents"],
            tags,
            prior=None if raw is None else SlotPrior.from_json(raw, len(tags)),
            max_length=int(settings.get("max_length", DEFAULT_MAX_LENGTH)),
            pad_id=pad_id,
        )

    def parse(
        self, texts: Sequence[str], run: RunFn, batch_size: int = BATCH_SIZE
    ) -> list[dict[str, Any]]:
        """One answer per text, in order; ``batch_size`` texts per ``run`` call (1 for a
        ``model.int8.onnx`` from an export before static int8, whose answers depend on the batch).
        ValueError for a text distilnlu refuses (see :func:`check_text`)."""
        for i, text in enumerate(texts):
            check_text(text, f"text {i}", self.max_chars)
        results: list[dict[str, Any]] = []
        for begin in range(0, len(texts), batch_size):
            results += self._parse_batch(texts[begin : begin + batch_size], run)
        return results

    def _parse_batch(self, texts: Sequence[str], run: RunFn) -> list[dict[str, Any]]:
        split = [split_words(t) for t in texts]
        input_ids, mask, starts = self.encode_words([words for words, _ in split])
        outputs = run(input_ids, mask)
        intent_logits, slot_logits = np.asarray(outputs[0]), np.asarray(outputs[1])
        probs = softmax(intent_logits.astype(np.float64))
        tag_ids = self.decoder.decode_batch(slot_logits, starts)
        results = []
        for row, (text, (_, offsets)) in enumerate(zip(texts, split, strict=True)):
            tags = [self.slot_tags[t] if t >= 0 else "O" for t in tag_ids[row]]
            slots = slots_from_tags(text, offsets, tags)
            results.append(answer(text, self.intents, probs[row], slots, -1 in starts[row]))
        return results
