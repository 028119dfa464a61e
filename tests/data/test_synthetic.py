"""Tests for the built-in deterministic demo data (distilnlu.data.synthetic)."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from itertools import islice

import pytest

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
from distilnlu.data.synthetic.domain import iter_labeled
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
    # Short utterances ("lights on") could coincide now and then; with these seeds none do.
    assert same == 0


def test_domain_is_not_a_copy_of_labeled_with_same_seed():
    texts = [e["text"] for e in labeled_examples(500, seed=0)]
    domain = domain_utterances(500, seed=0)
    assert sum(x == y for x, y in zip(texts, domain, strict=True)) == 0


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
    assert min(intents.values()) == 92
    slot_types = {s["type"] for e in labeled for s in e["slots"]}
    assert slot_types == set(SLOT_TYPES)


def test_inventory_size():
    assert (len(SCENARIOS), len(INTENTS), len(SLOT_TYPES)) == (9, 26, 22)
    for pair in AMBIGUOUS_PAIRS:
        assert set(pair) <= set(INTENTS)


def test_slot_values_are_varied(labeled):
    values = defaultdict(set)
    for e in labeled:
        for s in e["slots"]:
            values[s["type"]].add(e["text"][s["start"] : s["end"]])
    counts = {k: len(values[k]) for k in ("place_name", "artist_name", "song_name", "person")}
    assert counts == {"place_name": 73, "artist_name": 54, "song_name": 49, "person": 81}
    # spoken times and dates are composed, not listed
    assert (len(values["time"]), len(values["date"])) == (426, 305)
    # spoken-form times and dates
    assert sum(bool(re.fullmatch(r"\w+ thirty (am|pm)", v)) for v in values["time"]) == 22
    assert sum(bool(re.fullmatch(r"the \w+( \w+)? of \w+", v)) for v in values["date"]) == 109
    assert sum(v.startswith("next ") for v in values["date"]) == 10


def test_phrasings_are_varied(labeled):
    texts_per_intent = defaultdict(set)
    first_words = defaultdict(set)
    for e in labeled:
        texts_per_intent[e["intent"]].add(e["text"])
        first_words[e["intent"]].add(e["text"].split()[0])
    assert min(len(first_words[intent]) for intent in INTENTS) == 12
    assert len({e["text"] for e in labeled}) == 4582  # of 5000


def test_politeness_and_disfluencies_present(labeled):
    texts = [e["text"] for e in labeled]
    assert sum(t.startswith(("can you ", "could you ", "please ")) for t in texts) == 264
    assert sum(bool(re.search(r"\b(uh|um)\b", t)) for t in texts) == 82
    assert sum(bool(re.search(r"\b(\w+) \1\b", t)) for t in texts) == 149  # a repeated word
    disfluent = sum(bool(re.search(r"\b(uh|um|er|hmm|uhm)\b", t)) for t in texts)
    assert disfluent == 199  # 4.0 % of 5000


def test_label_noise_rate_is_sensible():
    n = 20000
    flagged = [amb for _, amb in islice(iter_labeled(5), n)]
    assert sum(flagged) == 575  # 2.9 %; AMBIGUOUS_RATE is 3 %
    # ambiguous phrasings really are ambiguous: identical texts carry both labels of a pair
    by_text = defaultdict(set)
    for ex, amb in islice(iter_labeled(5), n):
        if amb:
            by_text[ex["text"]].add(ex["intent"])
    conflicting = [labels for labels in by_text.values() if len(labels) > 1]
    assert len(conflicting) == 18
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
    assert (lengths_d, lengths_l) == (7.294, 7.265)  # words per utterance
    first_d = Counter(t.split()[0] for t in domain)
    first_l = Counter(t.split()[0] for t in lab)
    common = [w for w, _ in first_l.most_common(10)]
    assert {w: (first_d[w], first_l[w]) for w in common[:5]} == {
        "i": (534, 498),
        "play": (279, 279),
        "what's": (208, 221),
        "hey": (139, 185),
        "what": (170, 171),
    }


# ---------------------------------------------------------------- public texts
def test_public_texts_are_written_form():
    texts = public_texts(2000, seed=0)
    for t in texts:
        assert t[0].isupper()
        assert t.rstrip()[-1] in ".!?\"'"
        assert 1 <= len(re.findall(r"[.!?](?:\s|$)", t)) <= 4  # 1-3 sentences (+ "Dr." etc.)
    assert sum(any(c.isdigit() for c in t) for t in texts) == len(texts)
    joined = " ".join(texts)
    dates = re.findall(
        r"\b(January|February|March|April|May|June|July|August|September|October|"
        r"November|December) \d{1,2}, \d{4}\b",
        joined,
    )
    assert len(dates) == 1174
    assert len(re.findall(r"\b\d{1,2}:\d{2} (am|pm)\b", joined)) == 531  # times
    assert len(re.findall(r"\d%", joined)) == 735  # percentages
    assert len(re.findall(r"\$\d+\.\d{2}\b", joined)) == 285  # currency
    assert len(re.findall(r"\b\d+(st|nd|rd|th)\b", joined)) == 575  # ordinals
    assert (joined.count(","), joined.count(";"), joined.count('"')) == (5624, 483, 722)


def test_public_and_domain_vocabulary_overlap_and_differ():
    public = _words(public_texts(3000, seed=0))
    domain = _words(domain_utterances(3000, seed=0))
    shared = public & domain
    # cities, weekdays, artists, weather, food and people's names appear in both
    for w in ("paris", "monday", "rain", "coffee", "sarah", "beatles"):
        assert w in shared, w
    assert len(shared) == 571
    domain_only = domain - public
    for w in ("olly", "alarm", "wake", "playlist", "shuffle"):
        assert w in domain_only, w
    assert len(domain_only) == 453
    assert len(public - domain) == 500


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
