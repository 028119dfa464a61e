"""Downstream NLU metrics (DESIGN.md §6): intent + slots, sentence pairs, and comparisons.

Pure, deterministic Python shared by training-time evaluation and reports:

- **Slot chunks** follow seqeval's default (non-strict, conlleval-compatible) mode exactly, see
  :func:`chunks`; **slot precision / recall / F1** are micro-averaged over the chunks of the whole
  corpus and equal ``seqeval.metrics.{precision,recall,f1}_score(gold, pred)``, see
  :func:`slot_prf`.
- **Intent accuracy**; **exact match** (intent right *and* the set of slot chunks identical).
- **Semantic error rate** (SemER) = (substitutions + deletions + insertions + intent errors) /
  (reference slots + 1 per utterance), summed over the corpus before dividing, see
  :func:`semer_counts` for how chunks are matched.
- **Pair accuracy** overall and per language.
- **Relative error change** versus a baseline model, as the AlexaTM paper reports it.
- **Spearman** rank correlation, for LM metrics against downstream accuracy across checkpoints.

Corpus-level functions take parallel sequences (one entry per utterance) and raise ``ValueError``
when their lengths differ or when they are empty, since a rate over no examples would otherwise
read as 0 (seqeval itself raises on an empty corpus).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from distilnlu.modeling.nlu_parse import chunks as read_chunks
from distilnlu.modeling.nlu_parse import split_tag

T = TypeVar("T")

Chunk = tuple[str, int, int]

# Tags seqeval accepts without warning: the bare prefixes and the four prefixed forms.
_BARE_TAGS = frozenset({"O", "B", "I", "E", "S"})
_PREFIXES = ("B-", "I-", "E-", "S-")


def _check_same_length(**columns: Sequence[Any]) -> int:
    """Length shared by all ``columns``; ``ValueError`` naming them when they differ."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"inputs must have the same length, got {shown}")
    return next(iter(lengths.values()))


def _check_not_empty(n: int, what: str) -> None:
    if n == 0:
        raise ValueError(f"{what} of an empty corpus is undefined")


def _check_tag_lengths(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    _check_same_length(gold_tags=gold, pred_tags=pred)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(
                f"utterance {i}: gold has {len(g)} slot tags but prediction has {len(p)}"
            )


def _check_utterances(
    gold_intents: Sequence[str],
    pred_intents: Sequence[str],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    what: str,
) -> int:
    """Equal lengths, not empty, and per-utterance tag lengths equal; returns the count."""
    n = _check_same_length(
        gold_intents=gold_intents,
        pred_intents=pred_intents,
        gold_tags=gold_tags,
        pred_tags=pred_tags,
    )
    _check_not_empty(n, what)
    _check_tag_lengths(gold_tags, pred_tags)
    return n


def _split_tag(tag: str) -> tuple[str, str]:
    """``(prefix, type)`` as seqeval parses a tag in its default (prefix) mode
    (:func:`~distilnlu.modeling.nlu_parse.split_tag`), warning as seqeval does when the tag is
    not ``O`` or B-/I-/E-/S-<type>."""
    # An empty tag raises (seqeval dies with an IndexError on it: there is no score to agree with).
    prefix_type = split_tag(tag)
    if tag not in _BARE_TAGS and not tag.startswith(_PREFIXES):
        warnings.warn(
            f"slot tag {tag!r} is not 'O' or B-/I-/E-/S-<type>; scoring it as seqeval does",
            UserWarning,
            stacklevel=4,  # the caller of chunks() or slot_prf()
        )
    return prefix_type


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Slot chunks ``(type, start, end_exclusive)`` of one tag sequence, in order of their end.

    The result is exactly ``seqeval.metrics.sequence_labeling.get_entities(list(tags))`` (seqeval
    1.2.2, default mode) with ``end + 1`` in place of the inclusive end, for every sequence of
    non-empty strings. For IOB2 that is the conlleval reading:

    - ``B-x`` starts a chunk of type ``x``; ``I-x`` continues a chunk of type ``x``;
    - ``I-x`` after ``O`` or after a chunk of another type starts a new chunk (it is not dropped);
    - ``B-x`` right after an ``x`` chunk starts a second one; a chunk still open at the end counts.

    seqeval also reads IOBES (``E-x`` closes a chunk, ``S-x`` is a one-tag chunk), and so does
    this. Other tags are **not** read as ``O``: seqeval takes the first character as the prefix and
    what follows its first ``-`` (all of the rest when there is none) as the type, so ``PER`` opens
    a chunk of type ``ER`` that behaves much like an ``I-`` chunk, and a bare ``B`` or ``I`` has
    type ``_``. Such tags are scored that way here too, so that numbers stay comparable with
    seqeval, and each distinct one raises a ``UserWarning`` (seqeval warns as well). An empty tag
    raises ``ValueError`` (seqeval fails on it).

    The loop is :func:`distilnlu.modeling.nlu_parse.chunks`, the one a fine-tuned folder carries,
    so that the slots a folder shows without distilnlu are the chunks scored here.
    """
    return read_chunks(tags, _split_tag)


def slot_prf(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over the slot chunks of all utterances.

    Keys ``"precision"``, ``"recall"``, ``"f1"``. A chunk is right when a gold chunk has the same
    type, start and end. Equal to seqeval's ``precision_score`` / ``recall_score`` / ``f1_score``
    with their defaults: precision with no predicted chunks, recall with no gold chunks, and F1
    when precision + recall is 0 are ``0.0`` (not NaN), as seqeval's default
    ``zero_division="warn"`` gives, though without its warning. ``ValueError`` for an empty corpus,
    when ``gold`` and ``pred`` hold different numbers of utterances, or naming utterance ``i`` when
    ``gold[i]`` and ``pred[i]`` differ in length.
    """
    _check_tag_lengths(gold, pred)
    _check_not_empty(len(gold), "slot precision/recall/F1")
    # seqeval joins the utterances with an "O" between them and reads the stream once. Doing the
    # same (rather than summing per-utterance chunks) keeps it exact even for the odd typeless tags
    # whose reading depends on whether a sequence starts fresh or after an "O".
    gold_chunks = read_chunks((tag for tags in gold for tag in [*tags, "O"]), _split_tag)
    pred_chunks = read_chunks((tag for tags in pred for tag in [*tags, "O"]), _split_tag)
    # Chunk ends strictly increase along a stream, so the lists hold no duplicates.
    tp = len(set(gold_chunks) & set(pred_chunks))
    precision = tp / len(pred_chunks) if pred_chunks else 0.0
    recall = tp / len(gold_chunks) if gold_chunks else 0.0
    # The same expression as seqeval's, so the floats agree to the last bit.
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def intent_accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Fraction of utterances whose predicted intent equals the gold one (string equality)."""
    n = _check_same_length(gold_intents=gold, pred_intents=pred)
    _check_not_empty(n, "intent accuracy")
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / n


def exact_match(
    gold_intents: Sequence[str],
    pred_intents: Sequence[str],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
) -> float:
    """Fraction of utterances with the right intent and exactly the gold set of slot chunks.

    Chunks are compared, not tags, so ``I-x`` where the gold has ``B-x`` at the start of a chunk
    (the same chunk under the conlleval reading) still matches.
    """
    n = _check_utterances(gold_intents, pred_intents, gold_tags, pred_tags, "exact match")
    right = sum(
        gi == pi and set(chunks(gt)) == set(chunks(pt))
        for gi, pi, gt, pt in zip(gold_intents, pred_intents, gold_tags, pred_tags, strict=True)
    )
    return right / n


def semer_counts(
    gold_intent: str,
    pred_intent: str,
    gold_tags: Sequence[str],
    pred_tags: Sequence[str],
) -> dict[str, int]:
    """Error counts of one utterance for the semantic error rate.

    Slots are the :func:`chunks` of the tag sequences, matched type by type:

    1. a gold and a predicted chunk with the same type, start and end are correct;
    2. the remaining gold and predicted chunks of one type are paired in order of position, each
       pair a **substitution** (right slot type, wrong value, i.e. wrong span);
    3. gold chunks left unpaired are **deletions**, predicted ones left unpaired **insertions**.

    So per type, with ``g`` gold and ``p`` predicted chunks not correct: ``min(g, p)``
    substitutions, ``g - min(g, p)`` deletions and ``p - min(g, p)`` insertions. A chunk with the
    right span but the wrong type is a deletion plus an insertion. ``intent_errors`` is 1 when the
    intents differ; ``reference`` is the number of gold chunks + 1 (the intent). Returns the keys
    ``"substitutions"``, ``"deletions"``, ``"insertions"``, ``"intent_errors"``, ``"reference"``;
    ``ValueError`` when the tag sequences differ in length.
    """
    if len(gold_tags) != len(pred_tags):
        raise ValueError(f"gold has {len(gold_tags)} slot tags but prediction has {len(pred_tags)}")
    gold_chunks, pred_chunks = chunks(gold_tags), chunks(pred_tags)
    correct = set(gold_chunks) & set(pred_chunks)
    gold_left = Counter(c[0] for c in gold_chunks if c not in correct)
    pred_left = Counter(c[0] for c in pred_chunks if c not in correct)
    substitutions = sum(min(n, pred_left[t]) for t, n in gold_left.items())
    return {
        "substitutions": substitutions,
        "deletions": gold_left.total() - substitutions,
        "insertions": pred_left.total() - substitutions,
        "intent_errors": int(gold_intent != pred_intent),
        "reference": len(gold_chunks) + 1,
    }


def semantic_error_rate(
    gold_intents: Sequence[str],
    pred_intents: Sequence[str],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
) -> float:
    """Corpus SemER: all errors over all reference items (not a mean of per-utterance rates).

    ``sum(S + D + I + intent_errors) / sum(reference)`` with the counts of :func:`semer_counts`.
    It can exceed 1 when a model inserts many slots.
    """
    _check_utterances(gold_intents, pred_intents, gold_tags, pred_tags, "semantic error rate")
    errors = reference = 0
    for gi, pi, gt, pt in zip(gold_intents, pred_intents, gold_tags, pred_tags, strict=True):
        counts = semer_counts(gi, pi, gt, pt)
        reference += counts.pop("reference")
        errors += sum(counts.values())
    return errors / reference


def nlu_metrics(
    gold_intents: Sequence[str],
    pred_intents: Sequence[str],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
) -> dict[str, float | int]:
    """All intent + slot metrics of one corpus.

    Keys ``"intent_accuracy"``, ``"slot_precision"``, ``"slot_recall"``, ``"slot_f1"``,
    ``"exact_match"``, ``"semer"`` (fractions) and ``"n"`` (number of utterances). ``ValueError``
    on empty input or inputs of different lengths.
    """
    n = _check_utterances(gold_intents, pred_intents, gold_tags, pred_tags, "NLU metrics")
    prf = slot_prf(gold_tags, pred_tags)
    return {
        "intent_accuracy": intent_accuracy(gold_intents, pred_intents),
        "slot_precision": prf["precision"],
        "slot_recall": prf["recall"],
        "slot_f1": prf["f1"],
        "exact_match": exact_match(gold_intents, pred_intents, gold_tags, pred_tags),
        "semer": semantic_error_rate(gold_intents, pred_intents, gold_tags, pred_tags),
        "n": n,
    }


def pair_accuracy(
    gold: Sequence[str], pred: Sequence[str], languages: Sequence[str]
) -> dict[str, Any]:
    """Sentence-pair accuracy overall and per language.

    Returns ``{"accuracy": a, "n": N, "by_language": {language: {"accuracy": a, "n": n}}}`` with
    the languages in sorted order. The overall accuracy is over all pairs (so languages weigh by
    their size), not a mean of the per-language ones. ``ValueError`` on empty or unequal inputs.
    """
    n = _check_same_length(gold=gold, pred=pred, languages=languages)
    _check_not_empty(n, "pair accuracy")
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for g, p, language in zip(gold, pred, languages, strict=True):
        total[language] += 1
        right[language] += g == p
    return {
        "accuracy": right.total() / n,
        "n": n,
        "by_language": {
            language: {"accuracy": right[language] / total[language], "n": total[language]}
            for language in sorted(total)
        },
    }


def relative_error_change(value: float, baseline: float, *, higher_is_better: bool = True) -> float:
    """Relative change of the error versus a baseline model, as a fraction.

    For accuracy-like metrics (``higher_is_better``, values in [0, 1]) the error is ``1 - value``;
    for error-like ones (SemER) it is the value itself. The result is
    ``(error - baseline_error) / baseline_error``: ``-0.10`` means 10% fewer errors than the
    baseline (better), ``+0.10`` 10% more. E.g. exact match 0.80 against 0.75 is error 0.20
    against 0.25, so ``-0.20``. NaN when the baseline error is 0, where a relative change is
    undefined (reports show it as n/a); a NaN input gives NaN. ``ValueError`` for an accuracy
    outside [0, 1] (a percentage passed by mistake) or a negative error.
    """
    for name, v in (("value", value), ("baseline", baseline)):
        if math.isnan(v):
            return math.nan
        if higher_is_better and not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1] for an accuracy, got {v}")
        if not higher_is_better and v < 0.0:
            raise ValueError(f"{name} must be a non-negative error, got {v}")
    error, base_error = (1.0 - value, 1.0 - baseline) if higher_is_better else (value, baseline)
    if base_error == 0.0:
        return math.nan
    return (error - base_error) / base_error


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        rank = (start + end) / 2 + 1
        for k in range(start, end + 1):
            ranks[order[k]] = rank
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson correlation of the average ranks (ties share a rank).

    Pairs where either value is NaN are dropped first (a checkpoint missing one of the metrics
    says nothing about the relation; this is ``scipy.stats.spearmanr(..., nan_policy="omit")``).
    NaN when fewer than 2 pairs remain or when either side is constant (the correlation is
    undefined). ``ValueError`` when ``x`` and ``y`` differ in length.
    """
    _check_same_length(x=x, y=y)
    pairs = [
        (float(a), float(b))
        for a, b in zip(x, y, strict=True)
        if not (math.isnan(a) or math.isnan(b))
    ]
    if len(pairs) < 2:
        return math.nan
    rx = _average_ranks([a for a, _ in pairs])
    ry = _average_ranks([b for _, b in pairs])
    mean = (len(pairs) + 1) / 2  # the mean of average ranks is always (n + 1) / 2
    dx = [r - mean for r in rx]
    dy = [r - mean for r in ry]
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    if sxx == 0.0 or syy == 0.0:
        return math.nan
    rho = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, rho))  # rounding can step just past ±1


def by_group(groups: Sequence[str], **columns: Sequence[T]) -> dict[str, dict[str, list[T]]]:
    """Split parallel ``columns`` by ``groups`` (e.g. locale), keeping the input order within each.

    Groups come out in sorted order, so a per-locale table reads::

        {locale: nlu_metrics(**cols) for locale, cols in by_group(
            locales, gold_intents=gi, pred_intents=pi, gold_tags=gt, pred_tags=pt).items()}

    ``ValueError`` when a column's length differs from ``groups``'.
    """
    _check_same_length(groups=groups, **columns)
    out: dict[str, dict[str, list[T]]] = {}
    for i, group in enumerate(groups):
        split = out.setdefault(group, {name: [] for name in columns})
        for name, values in columns.items():
            split[name].append(values[i])
    return dict(sorted(out.items()))
