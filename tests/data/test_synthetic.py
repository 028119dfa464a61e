"""Tests for the built-in deterministic demo data (distilnlu.data.synthetic)."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from itertools import islice

import pytest

from distilnlu.data import synthetic
from distilnlu.data.synthetic import (
    AMBIGUOUS_PAIRS,
    INTENTS,
    KINDS,
    SCENARIOS,
    SLOT_TYPES,
    domain_utterances,
    iter_texts,
    labeled_examples,
    public_texts,
    scenario_of,
)
from distilnlu.errors import DataError

SPOKEN = re.compile(r"^[a-z]+(?:'[a-z]+)*(?: [a-z]+(?:'[a-z]+)*)*$")  # words, single spaces


def _words(texts: list[str]) -> set[str]:
    return {w for t in texts for w in re.findall(r"[a-z']+", t.lower())}


@pytest.fixture(scope="module")
def labeled() -> list[dict]:
    return labeled_examples(5000, seed=0)


# ---------------------------------------------------------------- determinism and seeds
@pytest.mark.parametrize("fn", [public_texts, domain_utterances, labeled_examples])
def test_deterministic(fn):
    assert fn(300, seed=7) == fn(300, seed=7)
    assert fn(300) == fn(300, seed=0)


@pytest.mark.parametrize("fn", [public_texts, domain_utterances, labeled_examples])
def test_prefix_stable(fn):
    assert fn(500, seed=3)[:120] == fn(120, seed=3)


@pytest.mark.parametrize("fn", [public_texts, domain_utterances, labeled_examples])
def test_different_seeds_differ(fn):
    a, b = fn(500, seed=1), fn(500, seed=2)
    same = sum(x == y for x, y in zip(a, b, strict=True))
    assert same < 0.2 * len(a)  # short utterances ("lights on") may coincide now and then


def test_domain_is_not_a_copy_of_labeled_with_same_seed():
    texts = [e["text"] for e in labeled_examples(500, seed=0)]
    domain = domain_utterances(500, seed=0)
    assert sum(x == y for x, y in zip(texts, domain, strict=True)) < 100


def test_sizes_and_edge_cases():
    assert public_texts(0) == [] and domain_utterances(0) == [] and labeled_examples(0) == []
    assert len(public_texts(17)) == 17
    with pytest.raises(DataError, match="non-negative"):
        domain_utterances(-1)


# ---------------------------------------------------------------- iter_texts
def test_iter_texts_matches_lists():
    assert list(iter_texts("public", 50, seed=4)) == public_texts(50, seed=4)
    assert list(iter_texts("domain", 50, seed=4)) == domain_utterances(50, seed=4)
    assert list(iter_texts("labeled", 50, seed=4)) == [
        e["text"] for e in labeled_examples(50, seed=4)
    ]
    assert set(KINDS) == {"public", "domain", "labeled"}


def test_iter_texts_is_lazy_and_rejects_unknown_kind():
    it = iter_texts("domain", 10**9)
    assert len(list(islice(it, 5))) == 5
    with pytest.raises(DataError, match="unknown synthetic data kind"):
        iter_texts("tweets", 5)


# ---------------------------------------------------------------- labeled examples
def test_labeled_schema_and_spans(labeled):
    for ex in labeled:
        assert set(ex) == {"text", "intent", "scenario", "slots"}
        text = ex["text"]
        assert ex["intent"] in INTENTS
        assert ex["scenario"] == scenario_of(ex["intent"]) in SCENARIOS
        prev_end = -1
        for s in ex["slots"]:
            start, end = s["start"], s["end"]
            assert s["type"] in SLOT_TYPES
            assert 0 <= start < end <= len(text)
            assert start > prev_end, f"overlapping or unsorted spans in {ex}"
            # the span covers whole words exactly: no surrounding space, word boundaries around
            value = text[start:end]
            assert value == value.strip() and "  " not in value
            assert start == 0 or text[start - 1] == " "
            assert end == len(text) or text[end] == " "
            prev_end = end


def test_every_intent_and_slot_type_appears(labeled):
    intents = Counter(e["intent"] for e in labeled)
    assert set(intents) == set(INTENTS)
    assert min(intents.values()) >= 20
    slot_types = {s["type"] for e in labeled for s in e["slots"]}
    assert slot_types == set(SLOT_TYPES)


def test_inventory_size():
    assert len(SCENARIOS) >= 8
    assert len(INTENTS) >= 24
    assert len(SLOT_TYPES) >= 15
    for pair in AMBIGUOUS_PAIRS:
        assert set(pair) <= set(INTENTS)


def test_slot_values_are_varied(labeled):
    values = defaultdict(set)
    for e in labeled:
        for s in e["slots"]:
            values[s["type"]].add(e["text"][s["start"] : s["end"]])
    assert len(values["place_name"]) >= 40
    assert len(values["artist_name"]) >= 40
    assert len(values["song_name"]) >= 30
    assert len(values["person"]) >= 30
    assert len(values["time"]) >= 100  # spoken times are composed, not listed
    assert len(values["date"]) >= 100
    # spoken-form times and dates
    assert any(re.fullmatch(r"\w+ thirty (am|pm)", v) for v in values["time"])
    assert any(re.fullmatch(r"the \w+( \w+)? of \w+", v) for v in values["date"])
    assert any(v.startswith("next ") for v in values["date"])


def test_phrasings_are_varied(labeled):
    texts_per_intent = defaultdict(set)
    first_words = defaultdict(set)
    for e in labeled:
        texts_per_intent[e["intent"]].add(e["text"])
        first_words[e["intent"]].add(e["text"].split()[0])
    for intent in INTENTS:
        assert len(first_words[intent]) >= 4, intent
    assert len({e["text"] for e in labeled}) > 0.8 * len(labeled)


def test_politeness_and_disfluencies_present(labeled):
    texts = [e["text"] for e in labeled]
    assert any(t.startswith(("can you ", "could you ", "please ")) for t in texts)
    assert any(re.search(r"\b(uh|um)\b", t) for t in texts)
    assert any(re.search(r"\b(\w+) \1\b", t) for t in texts)  # a repeated word
    disfluent = sum(bool(re.search(r"\b(uh|um|er|hmm|uhm)\b", t)) for t in texts)
    assert 0.01 * len(texts) < disfluent < 0.15 * len(texts)


def test_label_noise_rate_is_sensible():
    n = 20000
    flagged = [amb for _, amb in islice(synthetic._iter_labeled(5), n)]
    rate = sum(flagged) / n
    assert 0.015 < rate < 0.05
    # ambiguous phrasings really are ambiguous: identical texts carry both labels of a pair
    by_text = defaultdict(set)
    for ex, amb in islice(synthetic._iter_labeled(5), n):
        if amb:
            by_text[ex["text"]].add(ex["intent"])
    conflicting = [labels for labels in by_text.values() if len(labels) > 1]
    assert conflicting
    assert all(tuple(sorted(c)) in {tuple(sorted(p)) for p in AMBIGUOUS_PAIRS} for c in conflicting)


# ---------------------------------------------------------------- domain utterances
def test_domain_utterances_are_spoken_form():
    texts = domain_utterances(5000, seed=1)
    for t in texts:
        assert SPOKEN.match(t), repr(t)
        assert not any(c.isdigit() or c.isupper() for c in t)


def test_labeled_texts_are_spoken_form(labeled):
    assert all(SPOKEN.match(e["text"]) for e in labeled)


def test_domain_and_labeled_share_one_distribution(labeled):
    domain = domain_utterances(5000, seed=0)
    lab = [e["text"] for e in labeled]
    lengths_d = sum(len(t.split()) for t in domain) / len(domain)
    lengths_l = sum(len(t.split()) for t in lab) / len(lab)
    assert abs(lengths_d - lengths_l) < 0.3
    first_d = Counter(t.split()[0] for t in domain)
    first_l = Counter(t.split()[0] for t in lab)
    common = [w for w, _ in first_l.most_common(10)]
    for w in common[:5]:
        assert abs(first_d[w] - first_l[w]) < 0.03 * len(lab) + 30


# ---------------------------------------------------------------- public texts
def test_public_texts_are_written_form():
    texts = public_texts(2000, seed=0)
    for t in texts:
        assert t[0].isupper()
        assert t.rstrip()[-1] in ".!?\"'"
        assert 1 <= len(re.findall(r"[.!?](?:\s|$)", t)) <= 4  # 1-3 sentences (+ "Dr." etc.)
    assert sum(any(c.isdigit() for c in t) for t in texts) > 0.9 * len(texts)
    joined = " ".join(texts)
    assert re.search(
        r"\b(January|February|March|April|May|June|July|August|September|October|"
        r"November|December) \d{1,2}, \d{4}\b",
        joined,
    )  # dates
    assert re.search(r"\b\d{1,2}:\d{2} (am|pm)\b", joined)  # times
    assert re.search(r"\d%", joined)  # percentages
    assert re.search(r"\$\d+\.\d{2}\b", joined)  # currency
    assert re.search(r"\b\d+(st|nd|rd|th)\b", joined)  # ordinals
    assert "," in joined and ";" in joined and '"' in joined


def test_public_and_domain_vocabulary_overlap_and_differ():
    public = _words(public_texts(3000, seed=0))
    domain = _words(domain_utterances(3000, seed=0))
    shared = public & domain
    # cities, weekdays, artists, weather, food and people's names appear in both
    for w in ("paris", "monday", "rain", "coffee", "sarah", "beatles"):
        assert w in shared, w
    assert len(shared) >= 150
    domain_only = domain - public
    for w in ("olly", "alarm", "wake", "playlist", "shuffle"):
        assert w in domain_only, w
    assert len(domain_only) >= 100
    assert len(public - domain) >= 100


# ---------------------------------------------------------------- speed
def test_speed():
    t0 = time.perf_counter()
    public_texts(50_000)
    domain_utterances(50_000)
    labeled_examples(50_000)
    assert time.perf_counter() - t0 < 15  # < 2 s each on a laptop; loose for slow CI
    t0 = time.perf_counter()
    domain_utterances(50_000, seed=9)
    assert time.perf_counter() - t0 < 5
