"""``pick-student``: candidate parsing, the budget rule, a real (tiny) measurement."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from distilnlu.cli import app
from distilnlu.deploy.pick import parse_candidates, parse_token_range, pick_student, utterances
from distilnlu.errors import ConfigError
from distilnlu.tokenization import load_tokenizer


def test_candidates_from_presets_and_shapes():
    cands = parse_candidates("student-17m, 2x128, 3x128x1000")
    assert [c.name for c in cands] == ["student-17m", "2x128", "3x128x1000"]
    assert (cands[1].shape.num_heads, cands[1].shape.ffn_size) == (2, 512)
    assert cands[2].shape.ffn_size == 1000
    default = parse_candidates(None)
    assert len(default) == 21 and default[-1].name == "student-17m"


@pytest.mark.parametrize("spec", ["huge", "2x100", "2-128"])
def test_bad_candidates_are_config_errors(spec):
    with pytest.raises(ConfigError):
        parse_candidates(spec)


@pytest.mark.parametrize("spec, want", [("12-16", (12, 16)), ("14", (14, 14))])
def test_token_range(spec, want):
    assert parse_token_range(spec) == want


@pytest.mark.parametrize("spec", ["16-12", "a-b", "2"])
def test_bad_token_range(spec):
    with pytest.raises(ConfigError):
        parse_token_range(spec)


def test_utterances_have_the_asked_length(tiny_mlm_dir):
    tok = load_tokenizer(tiny_mlm_dir)
    texts = utterances(tok, 12, 16, 30)
    assert len(texts) == 30
    for text in texts:
        assert 12 <= len(tok(text.split(), is_split_into_words=True)["input_ids"]) <= 16


def test_largest_within_budget_is_chosen(tiny_mlm_dir):
    result = pick_student(
        budget_ms=10_000,
        candidates="2x64,3x64",
        tokenizer=tiny_mlm_dir,
        repeats=5,
        progress=False,
    )
    assert [c.fits for c in result.candidates] == [True, True]
    assert result.chosen.name == "3x64"
    assert all(c.p50 > 0 for c in result.candidates)
    assert "Largest within budget: 3x64" in result.table()
    assert json.loads(json.dumps(result.to_json()))["chosen"] == "3x64"


def test_over_budget_skips_deeper_shapes_of_the_same_width(tiny_mlm_dir):
    result = pick_student(
        budget_ms=0.0,
        candidates="2x64,3x64,2x128",
        tokenizer=tiny_mlm_dir,
        repeats=5,
        backend="onnx-int8",
        progress=False,
    )
    first, deeper, wider = result.candidates
    assert first.p50 is not None and not first.fits
    assert deeper.p50 is None and "skipped" in deeper.note
    assert wider.p50 is not None  # another width is measured
    assert result.chosen is None
    assert "No candidate meets the budget" in result.table()


def test_cli_pick_student_writes_json(tiny_mlm_dir, tmp_path):
    out = tmp_path / "pick.json"
    result = CliRunner().invoke(
        app,
        [
            "pick-student",
            "--budget-ms", "1000",
            "--candidates", "2x64",
            "--tokenizer", str(tiny_mlm_dir),
            "--repeats", "5",
            "--output", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Largest within budget: 2x64" in result.output
    assert json.loads(out.read_text())["chosen"] == "2x64"
