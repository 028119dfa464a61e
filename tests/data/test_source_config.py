"""Tests for distilnlu.data.source_config: source settings and language codes."""

from __future__ import annotations

import pydantic
import pytest

from distilnlu.data.source_config import SourceConfig, normalize_language


def test_config_rejects_unknown_keys_and_documents_every_field() -> None:
    with pytest.raises(pydantic.ValidationError):
        SourceConfig(path="a.txt", txt_field="text")
    for name, info in SourceConfig.model_fields.items():
        assert info.description, f"field {name} has no description"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": ""},
        {"path": "synthetic:nonsense"},
        {"path": "hf:"},
        {"path": "hf:json", "format": "jsonl"},
        {"path": "synthetic:public", "filter": {"a": "b"}},
        {"path": "a.jsonl", "filter": {"partition": []}},
        {"path": "a.txt", "max_docs": 0},
    ],
)
def test_config_rejects_inconsistent_settings(kwargs: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        SourceConfig(**kwargs)


@pytest.mark.parametrize(
    ("code", "expected"), [("en", "en"), ("en-US", "en"), ("de_DE", "de"), (" ZH-cn ", "zh")]
)
def test_normalize_language(code: str, expected: str) -> None:
    assert normalize_language(code) == expected
