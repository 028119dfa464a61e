"""Built-in deterministic demo data (DESIGN.md §3 "Built-in demo data").

Three kinds of text, generated on the fly (no files, no network), deterministic given ``(n, seed)``:

* ``public``: written-form "public" documents in an encyclopedic / news style, 1-3 sentences each,
  with capitals, punctuation, digits, dates ("March 3, 2021"), times ("7:30 pm"), percentages,
  currency ("$12.50") and ordinals ("the 3rd"). The vocabulary partly overlaps the assistant domain
  (cities, weekdays, artists, songs, weather, food, people's names).
* ``domain``: unlabeled virtual-assistant utterances in spoken (ASR) form: lower case, numbers as
  words, no punctuation except apostrophes ("wake me up at seven thirty am tomorrow").
* ``labeled``: the same utterance distribution with labels:
  ``{"text", "intent", "scenario", "slots": [{"start", "end", "type"}]}``, character spans into
  ``text`` (end exclusive) covering exactly the slot value words, sorted and non-overlapping.

Utterances come from per-intent templates with alternatives, optional politeness ("can you",
"please"), a wake word ("olly"), disfluencies ("uh", a repeated word) and slot values drawn from
lists large enough that memorisation is not enough. A small share (:data:`AMBIGUOUS_RATE`) of
utterances use a phrasing shared by a confusable intent pair (e.g. ``alarm_set`` vs
``calendar_set``) and get either label at random: realistic label noise that caps accuracy a little
below 100%.

Every generator is a single ``random.Random`` stream consumed item by item, so outputs are
prefix-stable: ``public_texts(n, seed)[:k] == public_texts(k, seed)``. ``domain`` and ``labeled``
use the same generator on different streams (seeded from ``(kind, seed)``), so with the same seed
the unlabeled corpus is not a copy of the labeled set, but both follow one distribution.

Layout: :mod:`.lexicon` (word lists, numbers in words), :mod:`.templates` (intents and their
templates), :mod:`.domain` (spoken utterances and labels), :mod:`.public` (written documents).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from distilnlu.data.synthetic.domain import AMBIGUOUS_RATE, SLOT_TYPES, iter_domain, iter_labeled
from distilnlu.data.synthetic.public import iter_public
from distilnlu.data.synthetic.templates import AMBIGUOUS_PAIRS, INTENTS, SCENARIOS, scenario_of
from distilnlu.errors import DataError

__all__ = [
    "AMBIGUOUS_PAIRS",
    "AMBIGUOUS_RATE",
    "INTENTS",
    "KINDS",
    "SCENARIOS",
    "SLOT_TYPES",
    "domain_utterances",
    "iter_texts",
    "labeled_examples",
    "public_texts",
    "scenario_of",
]

KINDS = ("public", "domain", "labeled")


# --------------------------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------------------------
def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise DataError(f"synthetic data: n must be a non-negative integer, got {n!r}")


def public_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` written-form "public" documents (1-3 encyclopedic / news sentences each)."""
    _check_n(n)
    return list(islice(iter_public(seed), n))


def domain_utterances(n: int, seed: int = 0) -> list[str]:
    """``n`` unlabeled assistant utterances in spoken form (same distribution as labeled ones)."""
    _check_n(n)
    return list(islice(iter_domain(seed), n))


def labeled_examples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` labeled utterances ``{"text", "intent", "scenario", "slots"}`` (character spans)."""
    _check_n(n)
    return [ex for ex, _ in islice(iter_labeled(seed), n)]


def iter_texts(kind: str, n: int, seed: int = 0) -> Iterator[str]:
    """Lazily yield ``n`` texts of ``kind`` ("public", "domain" or "labeled": the labeled texts)."""
    if kind not in KINDS:
        raise DataError(f"unknown synthetic data kind {kind!r}; expected one of {', '.join(KINDS)}")
    _check_n(n)
    if kind == "public":
        return islice(iter_public(seed), n)
    if kind == "domain":
        return islice(iter_domain(seed), n)
    return (ex["text"] for ex, _ in islice(iter_labeled(seed), n))
