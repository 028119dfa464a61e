"""Tests for distilnlu.data.labeled_config: labeled-set settings."""

from __future__ import annotations

import pydantic
import pytest

from distilnlu.data.labeled_config import LabeledSetConfig


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"format": "synthetic"}, "needs num_examples"),
        ({"format": "synthetic", "num_examples": 5, "path": "x"}, "takes no path"),
        ({"format": "massive"}, "'massive' needs a path"),
        ({"format": "massive", "path": "m.jsonl", "partiton": "train"}, "partiton"),
        ({"format": "bio", "path": "d", "partition": "train"}, "partition applies to"),
        ({"format": "massive", "path": "m", "locales": []}, "empty list"),
        ({"format": "massive", "path": "m", "num_examples": 0}, "greater than 0"),
        ({"format": "massive", "path": "m", "skip": -1}, "greater than or equal to 0"),
        ({"format": "csv", "path": "m"}, "format"),
    ],
)
def test_labeled_set_config_errors(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        LabeledSetConfig.model_validate(raw)


def test_labeled_set_config_task() -> None:
    assert LabeledSetConfig(format="massive", path="m").task == "intent_slot"
    assert LabeledSetConfig(format="synthetic", num_examples=3).task == "intent_slot"
    assert LabeledSetConfig(format="xnli_tsv", path="x").task == "pair"
