"""Run a fine-tuned model over labeled examples: predictions, metrics, latency (DESIGN.md §6).

Used during training (dev evaluation for early stopping) and after it (test sets, report), so
both see the same numbers.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from distilnlu.data.examples import NLUExample, PairExample
from distilnlu.data.finetune import Encoded, encode_nlu, encode_pairs, eval_batches
from distilnlu.data.labeled import LabelVocab
from distilnlu.evaluation.decoding import BIODecoder, TagPrior
from distilnlu.evaluation.metrics import nlu_metrics, pair_accuracy

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class Classifier(Protocol):
    """What scoring needs of a fine-tuned model: label maps and ``(intent_logits [B, I],
    slot_logits [B, T, S] or None)`` from ``(input_ids, attention_mask)``.
    :class:`~distilnlu.modeling.classifier.EncoderClassifier` is one."""

    labels: LabelVocab
    slot_prior: TagPrior | None
    training: bool

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@contextmanager
def no_grad_eval(model: nn.Module | Classifier) -> Iterator[torch.device]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


def score_items(
    model: Classifier, items: Sequence[Encoded], batch_size: int, pad_id: int
) -> tuple[list[int], list[float], list[np.ndarray] | None]:
    """Per item: predicted intent id, its probability and, for a slot model, the slot logits
    ``[T_i, S]`` of the item's own sub-tokens (None for a model without slots)."""
    intents: list[int] = [0] * len(items)
    confidence: list[float] = [0.0] * len(items)
    slots: list[np.ndarray] = [np.zeros((0, 0))] * len(items)
    has_slots = False
    with no_grad_eval(model) as device:
        for indices, batch in eval_batches(items, batch_size, pad_id):
            intent_logits, slot_logits = model(
                batch["input_ids"].to(device), batch["attention_mask"].to(device)
            )
            best = intent_logits.float().softmax(-1).max(-1)
            if slot_logits is not None:
                has_slots = True
                scores = slot_logits.float().cpu().numpy()
                for row, i in enumerate(indices):
                    slots[i] = scores[row, : len(items[i].input_ids)]
            for row, i in enumerate(indices):
                intents[i] = int(best.indices[row])
                confidence[i] = float(best.values[row])
    return intents, confidence, slots if has_slots else None


def predict(
    model: Classifier, items: Sequence[Encoded], batch_size: int, pad_id: int
) -> tuple[list[int], list[float], list[list[int]]]:
    """Per item: predicted intent id, its probability, and a tag id per word (-1: truncated).

    Tags are the most probable valid BIO sequence (:class:`BIODecoder`, with the model's slot
    prior if it has one), not a per-word argmax.
    """
    intents, confidence, slots = score_items(model, items, batch_size, pad_id)
    if slots is None:
        return intents, confidence, [[] for _ in items]
    # Constrained decoding, not argmax: only valid BIO reaches the metric.
    decoder = BIODecoder(model.labels.slot_tags, model.slot_prior)
    tags = [decoder.decode_words(s, it.word_starts) for s, it in zip(slots, items, strict=True)]
    return intents, confidence, tags


def _majority(values: Sequence[str]) -> str:
    return Counter(values).most_common(1)[0][0] if values else ""


def evaluate_nlu(
    model: Classifier,
    examples: Sequence[NLUExample],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    batch_size: int = 64,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Intent accuracy, slot P/R/F1, exact match, SemER on ``examples``; and the predictions.

    Gold labels the model has never seen simply count as errors.
    """
    labels = model.labels
    items = encode_nlu(examples, tokenizer, labels, max_length)
    intent_ids, confidence, tag_ids = predict(model, items, batch_size, tokenizer.pad_token_id)
    pred_intents = [labels.intents[i] for i in intent_ids]
    pred_tags = [[labels.slot_tags[t] if t >= 0 else "O" for t in row] for row in tag_ids]
    metrics: dict[str, Any] = nlu_metrics(
        [ex.intent for ex in examples], pred_intents, [list(ex.tags) for ex in examples], pred_tags
    )
    metrics["language"] = _majority([ex.locale for ex in examples])
    predictions = [
        {
            "id": ex.id,
            "text": ex.text,
            "intent": ex.intent,
            "predicted_intent": pi,
            "confidence": round(c, 4),
            "tags": list(ex.tags),
            "predicted_tags": pt,
        }
        for ex, pi, c, pt in zip(examples, pred_intents, confidence, pred_tags, strict=True)
    ]
    return metrics, predictions


def evaluate_pairs(
    model: Classifier,
    examples: Sequence[PairExample],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    batch_size: int = 64,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pair accuracy (overall and per language) and the predictions."""
    labels = model.labels
    items = encode_pairs(examples, tokenizer, labels, max_length)
    ids, confidence, _ = predict(model, items, batch_size, tokenizer.pad_token_id)
    predicted = [labels.intents[i] for i in ids]
    result = pair_accuracy(
        [ex.label for ex in examples], predicted, [ex.language for ex in examples]
    )
    metrics = {"accuracy": result["accuracy"], "n": result["n"]}
    metrics["language"] = _majority([ex.language for ex in examples])
    predictions = [
        {"id": ex.id, "label": ex.label, "predicted": p, "confidence": round(c, 4)}
        for ex, p, c in zip(examples, predicted, confidence, strict=True)
    ]
    return metrics, predictions


def latency_ms(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str | tuple[str, str]],
    max_length: int,
    warmup: int = 5,
) -> dict[str, float]:
    """p50/p99 milliseconds per utterance (or pair) at batch 1 on one CPU thread, tokenisation
    included."""
    if not texts:
        return {}
    with torch_threads(1), no_grad_eval(model) as device:

        def call(text: str | tuple[str, str]) -> None:
            args = text if isinstance(text, tuple) else (text,)
            enc = tokenizer(*args, truncation=True, max_length=max_length, return_tensors="pt")
            model(enc["input_ids"].to(device), enc["attention_mask"].to(device))

        return latency_summary(time_calls(call, texts, warmup))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run PyTorch on ``threads`` intra-op threads inside the block, then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_calls(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 10) -> list[float]:
    """Milliseconds of ``fn(item)`` for each item, after ``warmup`` untimed calls on the first
    items (the first calls pay for allocations, caches and lazy initialisation)."""
    for item in list(items[:warmup]):
        fn(item)
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def latency_summary(times_ms: Sequence[float]) -> dict[str, float]:
    """``p50``/``p99`` (ms, 3 decimals) and ``n`` of per-call times."""
    times = list(times_ms)
    if not times:
        raise ValueError("no timings to summarise")
    cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
    return {"p50": round(statistics.median(times), 3), "p99": round(cuts[98], 3), "n": len(times)}
