"""Tests for distilnlu.data.labeled: loading labeled sets, the label vocabulary."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from distilnlu.data.examples import PAIR_LABELS, NLUExample, PairExample
from distilnlu.data.intent_formats import (
    from_span_records,
)
from distilnlu.data.labeled import LABELS_FILE, LabelVocab, load_labeled, unseen_labels
from distilnlu.data.labeled_config import LabeledSetConfig
from distilnlu.data.synthetic import labeled_examples
from distilnlu.errors import DataError
from tests.data.helpers import ALARM, bio_folder, massive_record, write
from tests.data.helpers import jsonl_utf8 as jsonl

# ----------------------------------------------------------------------------- label vocab


def test_label_vocab_round_trip(tmp_path: Path) -> None:
    examples = [
        ALARM,
        NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music"),
        NLUExample(("hi",), ("O",), "greet"),
    ]
    vocab = LabelVocab.build(examples)
    assert vocab.intents == ["alarm_set", "greet", "play_music"]
    assert vocab.slot_tags == ["O", "B-date", "I-date", "B-genre", "I-genre", "B-time", "I-time"]
    assert vocab.intent_id("greet") == 1 and vocab.tag_id("I-time") == 6
    assert vocab.intent_id("weather_query") == -1 and vocab.tag_id("B-weather") == -1

    vocab.save(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / LABELS_FILE).read_text())
    assert saved == vocab.to_json()
    loaded = LabelVocab.load(tmp_path / "model")
    assert loaded == vocab and loaded.tag_id("B-genre") == 3
    assert LabelVocab.from_json(vocab.to_json()) == vocab


def test_label_vocab_pairs_and_errors(tmp_path: Path) -> None:
    pairs = [PairExample("p", "h", label, "en") for label in ("neutral", "contradiction")]
    vocab = LabelVocab.build_pairs(pairs)
    # All three XNLI labels in HF order, even when a set lacks one: ids stay 0, 1, 2.
    assert vocab.intents == list(PAIR_LABELS) and vocab.slot_tags == []
    other = LabelVocab.build_pairs([PairExample("p", "h", x, "en") for x in ("yes", "no")])
    assert other.intents == ["no", "yes"]

    with pytest.raises(DataError, match="no label vocabulary"):
        LabelVocab.load(tmp_path)
    write(tmp_path / LABELS_FILE, '{"intents": ["a"], "slot_tags": "O"}')
    with pytest.raises(DataError, match="'slot_tags' must be a list of strings"):
        LabelVocab.load(tmp_path)
    write(tmp_path / LABELS_FILE, "{")
    with pytest.raises(DataError, match="cannot read the label vocabulary"):
        LabelVocab.load(tmp_path)
    with pytest.raises(DataError, match="duplicates: a"):
        LabelVocab.from_json({"intents": ["a", "a"], "slot_tags": []})
    with pytest.raises(DataError, match="no examples"):
        LabelVocab.build([])


# ---------------------------------------------------------------------------- load_labeled


def test_load_labeled_massive_glob_skip_and_limit(tmp_path: Path) -> None:
    for name, ids in (("a.jsonl", range(0, 4)), ("b.jsonl", range(4, 6))):
        records = [massive_record(f"[time : t{i}]", id=i) for i in ids]
        write(tmp_path / "data" / name, jsonl(*records))
    cfg = LabeledSetConfig(format="massive", path="data/*.jsonl", skip=1, num_examples=4)
    examples = load_labeled(cfg, root=tmp_path)
    assert [e.id for e in examples] == ["1", "2", "3", "4"]  # sorted files, then skip, then N
    rest = load_labeled(LabeledSetConfig(format="massive", path="data", skip=5), tmp_path)
    assert [e.id for e in rest] == ["5"]
    german = load_labeled(
        LabeledSetConfig(format="massive", path="data/b.jsonl", language="de-DE"), tmp_path
    )
    assert {e.locale for e in german} == {"de-DE"}


def test_load_labeled_empty_set_names_path_and_filters(tmp_path: Path) -> None:
    write(tmp_path / "m.jsonl", jsonl(massive_record("[time : five am]")))
    cfg = LabeledSetConfig(format="massive", path="m.jsonl", partition="dev", locales=["de-DE"])
    with pytest.raises(DataError, match=r"'m\.jsonl'.*no examples.*partition='dev', locales="):
        load_labeled(cfg, root=tmp_path)
    with pytest.raises(DataError, match="skip=3 dropped all 1 examples"):
        load_labeled(LabeledSetConfig(format="massive", path="m.jsonl", skip=3), tmp_path)
    with pytest.raises(DataError, match="no such file or directory"):
        load_labeled(LabeledSetConfig(format="massive", path="missing.jsonl"), tmp_path)


def test_load_labeled_skip_mode_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = massive_record("[time : five am")
    for name in ("a.jsonl", "b.jsonl"):
        write(tmp_path / name, jsonl(massive_record("[time : five am]"), bad))
    cfg = LabeledSetConfig(format="massive", path="*.jsonl")
    with caplog.at_level(logging.WARNING):
        examples = load_labeled(cfg, root=tmp_path, on_error="skip")
    assert len(examples) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2 bad record(s)" in warnings[0]


def test_load_labeled_synthetic() -> None:
    cfg = LabeledSetConfig(format="synthetic", num_examples=30, seed=3)
    examples = load_labeled(cfg)
    assert len(examples) == 30
    assert examples == from_span_records(labeled_examples(30, 3), "s")
    dev = load_labeled(LabeledSetConfig(format="synthetic", num_examples=10, seed=3, skip=30))
    assert dev == from_span_records(labeled_examples(40, 3), "s")[30:]


def test_load_labeled_bio_and_xnli(tmp_path: Path) -> None:
    bio_folder(tmp_path / "snips" / "dev", "a b\n", "O B-x\n", "i\n")
    bio = load_labeled(LabeledSetConfig(format="bio", path="snips/dev", language="fr-FR"), tmp_path)
    assert bio == [NLUExample(("a", "b"), ("O", "B-x"), "i", "fr-FR")]
    with pytest.raises(DataError, match="no such folder: 'snips/train'"):
        load_labeled(LabeledSetConfig(format="bio", path="snips/train"), tmp_path)

    write(tmp_path / "xnli" / "dev-de.tsv", "a\tb\tneutral\n")
    write(tmp_path / "xnli" / "dev-en.tsv", "c\td\tentailment\n")
    pairs = load_labeled(LabeledSetConfig(format="xnli_tsv", path="xnli/dev-*.tsv"), tmp_path)
    assert [(p.language, p.label) for p in pairs] == [("de", "neutral"), ("en", "entailment")]
    write(
        tmp_path / "test" / "sw" / "test.jsonl",
        jsonl({"premise": "a", "hypothesis": "b", "label": 1}),
    )
    cfg = LabeledSetConfig(format="xnli_jsonl", path="test/*/test.jsonl")
    assert load_labeled(cfg, tmp_path) == [PairExample("a", "b", "neutral", "sw")]


def test_unseen_labels_counts_them_and_states_the_ceiling():
    train = [
        NLUExample(("wake", "me", "at", "six"), ("O", "O", "O", "B-time"), "alarm_set"),
        NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music"),
    ]
    vocab = LabelVocab.build(train)
    test = [
        *train,
        NLUExample(("order", "pizza"), ("O", "B-food"), "takeaway_order"),  # both unseen
        NLUExample(("play", "jazz", "loud"), ("O", "B-genre", "B-volume"), "play_music"),
    ]
    message = unseen_labels(test, vocab)
    assert message == (
        "2 of 4 utterances hold labels the model never saw: 1 with an intent not in training"
        " (takeaway_order); 2 slot type(s) not in training (food, volume). They count as errors:"
        " intent accuracy can reach at most 75.0%, exact match 50.0%"
    )
    assert unseen_labels(train, vocab) is None
    assert unseen_labels([PairExample("a", "b", "neutral", "en")], vocab) is None
