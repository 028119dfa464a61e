"""Tests for distilnlu.data.pair_formats: XNLI tsv and jsonl readers."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from distilnlu.data.examples import PAIR_LABELS, PairExample
from distilnlu.data.pair_formats import read_xnli_jsonl, read_xnli_tsv
from distilnlu.data.records import SourceStats
from distilnlu.errors import DataError
from tests.data.helpers import jsonl_utf8 as jsonl
from tests.data.helpers import raises_at, shared, write


def test_read_xnli_tsv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dev-de.tsv",
        "premise\thypothesis\tlabel\n"
        "Er kam.\tEr ging.\tcontradictory\n"
        "\n"
        "Er kam.\tEr ist da.\tentailment\n"
        "Er kam.\tEr ist müde.\t1\n",
    )
    assert read_xnli_tsv(path) == [
        PairExample("Er kam.", "Er ging.", "contradiction", "de"),
        PairExample("Er kam.", "Er ist da.", "entailment", "de"),
        PairExample("Er kam.", "Er ist müde.", "neutral", "de"),
    ]
    assert {e.language for e in read_xnli_tsv(path, language="fr")} == {"fr"}


def test_read_xnli_tsv_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "dev-en.tsv", "a\tb\tneutral\na\tb\nc\td\tmaybe\n")
    with raises_at(path, 2, "expected 3 tab-separated columns"):
        read_xnli_tsv(path)
    stats = SourceStats()
    assert len(read_xnli_tsv(path, on_error="skip", stats=stats)) == 1
    assert stats.reasons == {"wrong number of columns": 1, "bad label": 1}
    unnamed = write(tmp_path / "pairs.tsv", "a\tb\tneutral\n")
    with pytest.raises(DataError, match="cannot tell the language from the file name 'pairs'"):
        read_xnli_tsv(unnamed)


def test_read_xnli_jsonl(tmp_path: Path) -> None:
    records = [
        {"premise": "P", "hypothesis": "H", "label": 0},
        {"premise": "P", "hypothesis": "H", "label": 2},
        {"premise": "P", "hypothesis": "H", "label": "neutral", "language": "zh-CN"},
    ]
    path = write(tmp_path / "hkunlp" / "de" / "test.jsonl", jsonl(*records))
    examples = read_xnli_jsonl(path)
    assert [(e.label, e.language) for e in examples] == [
        ("entailment", "de"),
        ("contradiction", "de"),
        ("neutral", "zh-CN"),
    ]
    assert {e.language for e in read_xnli_jsonl(path, language="fr")} == {"fr"}

    elsewhere = write(tmp_path / "dev" / "test.jsonl", jsonl(*records))
    with pytest.raises(DataError, match="cannot tell the language from the folder name 'dev'"):
        read_xnli_jsonl(elsewhere)
    with_field = write(tmp_path / "x" / "t.jsonl", jsonl(records[2]))
    assert read_xnli_jsonl(with_field)[0].language == "zh-CN"

    bad = write(tmp_path / "en" / "t.jsonl", jsonl(records[0], {**records[0], "label": -1}))
    with raises_at(bad, 2, "label -1 is not one of entailment"):
        read_xnli_jsonl(bad)


def test_real_xnli() -> None:
    dev = read_xnli_tsv(shared("xnli", "xtreme_dev", "dev-de.tsv"))
    assert len(dev) == 2490 and {e.language for e in dev} == {"de"}
    assert collections.Counter(e.label for e in dev) == dict.fromkeys(PAIR_LABELS, 830)
    test = read_xnli_jsonl(shared("xnli", "hkunlp_test", "sw", "test.jsonl"))
    assert len(test) == 5010 and {e.language for e in test} == {"sw"}
    assert collections.Counter(e.label for e in test) == dict.fromkeys(PAIR_LABELS, 1670)
