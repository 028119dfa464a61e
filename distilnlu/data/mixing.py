"""Per-language temperature mixing of document streams (DESIGN.md §3 "Sources").

Multilingual corpora are mixed by language with temperature sampling, as in XLM-R / AlexaTM:
language *i* with *n_i* units of text (bytes, documents, ...) out of *N* is drawn with probability
``p_i ∝ (n_i / N) ** alpha``. ``alpha = 1`` keeps the natural proportions, ``alpha = 0`` is
uniform, the default 0.3 up-samples small languages.

:func:`mix_languages` turns one restartable stream per language into a single infinite,
seed-deterministic stream: each draw picks a language by weight and takes its next document; a
language whose stream runs out starts a new epoch of it.

:func:`mix_by_text_share` mixes a stage's corpora (``data: {domain: 0.8, public: 0.2}``) so that
the weights are shares of the *text*, not of the documents: an assistant utterance is ~9 tokens and
a Wikipedia article thousands, so drawing documents 80/20 would give the articles over 99% of the
tokens.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import logging
import math
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final, Literal

from distilnlu.data.paths import resolve_paths
from distilnlu.data.source_config import HF_PREFIX, SYNTHETIC_PREFIX, Document, SourceConfig
from distilnlu.errors import DataError

__all__ = [
    "SYNTHETIC_BYTES_PER_DOC",
    "mix_by_text_share",
    "mix_languages",
    "source_size",
    "temperature_weights",
]

logger = logging.getLogger(__name__)


class _End(enum.Enum):
    """End-of-stream sentinel of ``next(iterator, _END)``, typed so that ``is _END`` narrows."""

    END = enum.auto()


_END: Final = _End.END

SYNTHETIC_BYTES_PER_DOC = 60
"""Assumed size of one synthetic document, so synthetic sources can be weighed against files."""


def temperature_weights(sizes: Mapping[str, float], alpha: float = 0.3) -> dict[str, float]:
    """Sampling probabilities ``p_i ∝ (n_i / N) ** alpha``, normalised to sum to 1.

    ``sizes`` maps a language to its amount of text (any positive unit, the same for all).
    ``alpha = 1``: proportional to size; ``alpha = 0``: uniform. Raises DataError when ``sizes``
    is empty or a size is not a positive finite number, ValueError for a negative ``alpha``.

    >>> temperature_weights({"en": 3, "de": 1}, alpha=1.0)
    {'en': 0.75, 'de': 0.25}
    """
    if not sizes:
        raise DataError("cannot compute language weights: no languages given")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    bad = {lang: n for lang, n in sizes.items() if not (math.isfinite(n) and n > 0)}
    if bad:
        raise DataError(
            "cannot compute language weights: every language needs a positive amount of text, "
            f"got {bad}"
        )
    total = math.fsum(sizes.values())
    # In log space, so tiny shares raised to alpha neither underflow nor lose precision.
    logs = {lang: alpha * (math.log(n) - math.log(total)) for lang, n in sizes.items()}
    top = max(logs.values())
    unnormalised = {lang: math.exp(value - top) for lang, value in logs.items()}
    norm = math.fsum(unnormalised.values())
    return {lang: value / norm for lang, value in unnormalised.items()}


def source_size(source: SourceConfig, root: Path | str | None = None) -> float:
    """A cheap size estimate of a source, for :func:`temperature_weights`.

    File sources: total bytes of the resolved files (``filter`` and ``max_docs`` are ignored;
    compressed files count compressed). Synthetic sources: ``num_docs * 60``. ``hf:`` sources
    cannot be sized without downloading them and count as 1.0 (a warning says so); give such
    languages explicit weights instead.
    """
    if source.path.startswith(HF_PREFIX) or source.format == "hf":
        logger.warning(
            "size of %s is unknown without downloading it; counting it as 1.0 for language "
            "weights (set explicit weights if that matters)",
            source.path,
        )
        return 1.0
    if source.path.startswith(SYNTHETIC_PREFIX) or source.format == "synthetic":
        return float(source.num_docs * SYNTHETIC_BYTES_PER_DOC)
    return float(sum(path.stat().st_size for path in resolve_paths(source.path, root)))


def mix_languages(
    streams: Mapping[str, Callable[[], Iterator[Document]]],
    weights: Mapping[str, float],
    seed: int,
) -> Iterator[Document]:
    """An infinite stream mixing per-language streams by weight, deterministic given ``seed``.

    At each draw a language is chosen with ``random.Random(seed)`` according to ``weights``
    (which need not sum to 1; a weight of 0 means never) and its next document is taken. A
    language's factory is called when it is first drawn and again whenever its stream ends (a
    new epoch). A stream that yields nothing at all raises DataError, as it could never supply a
    document.
    """
    _check_weights(streams, weights)
    languages = sorted(streams)  # independent of the mappings' insertion order
    cumulative = list(itertools.accumulate(weights[lang] for lang in languages))
    rng = random.Random(seed)
    last = len(languages) - 1

    def choose() -> str:
        draw = rng.random() * cumulative[-1]
        return languages[min(bisect.bisect_right(cumulative, draw), last)]

    return _mix(streams, choose)


def mix_by_text_share(
    streams: Mapping[str, Callable[[], Iterator[Document]]], weights: Mapping[str, float]
) -> Iterator[Document]:
    """An infinite stream in which each stream's share of the characters follows ``weights``.

    Deterministic: the next document comes from the stream furthest below its share (ties by
    name), so at any point every share is within one document of its target. Streams restart
    when they end (epochs), as in :func:`mix_languages`.
    """
    _check_weights(streams, weights)
    names = sorted(name for name in streams if weights[name] > 0)
    emitted = dict.fromkeys(names, 0)

    def choose() -> str:
        return min(names, key=lambda name: (emitted[name] / weights[name], name))

    def count(name: str, document: Document) -> None:
        emitted[name] += max(len(document.text), 1)

    return _mix(streams, choose, count)


def _check_weights(
    streams: Mapping[str, Callable[[], Iterator[Document]]], weights: Mapping[str, float]
) -> None:
    if not streams:
        raise DataError("no language streams to mix")
    if set(weights) != set(streams):
        missing = sorted(set(streams) - set(weights))
        extra = sorted(set(weights) - set(streams))
        raise ValueError(
            f"weights and streams must name the same languages (no weight for {missing}, "
            f"no stream for {extra})"
        )
    for lang, weight in weights.items():
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight of {lang!r} must be a finite number >= 0, got {weight!r}")
    if sum(weights.values()) <= 0:
        raise ValueError("at least one language weight must be positive")


def _mix(
    streams: Mapping[str, Callable[[], Iterator[Document]]],
    choose: Callable[[], str],
    on_document: Callable[[str, Document], None] | None = None,
) -> Iterator[Document]:
    iterators: dict[str, Iterator[Document]] = {}
    epochs: dict[str, int] = dict.fromkeys(streams, 0)
    document: Document | Literal[_End.END]
    try:
        while True:
            lang = choose()
            iterator = iterators.get(lang)
            document = next(iterator, _END) if iterator is not None else _END
            if document is _END:
                if iterator is not None:
                    _close(iterator)
                epochs[lang] += 1
                if epochs[lang] > 1:
                    logger.debug("stream %r ended, starting epoch %d", lang, epochs[lang])
                iterator = iter(streams[lang]())
                iterators[lang] = iterator
                document = next(iterator, _END)
                if document is _END:
                    raise DataError(f"the document stream {lang!r} yielded nothing")
            if on_document is not None:
                on_document(lang, document)
            yield document
    finally:
        for iterator in iterators.values():
            _close(iterator)


def _close(iterator: Iterator[Document]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
