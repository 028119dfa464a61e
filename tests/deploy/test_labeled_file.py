"""``--data FILE --partition P`` of ``evaluate`` and ``export``: no record skipped in silence."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from distilnlu.cli import app
from distilnlu.deploy.commands import labeled_file
from distilnlu.errors import DataError


def massive_row(i: int, partition: str | None) -> dict:
    row = {
        "id": str(i),
        "locale": "en-US",
        "intent": "alarm_set",
        "utt": "wake me up at seven am",
        "annot_utt": "wake me up at [time : seven am]",
    }
    return row if partition is None else {**row, "partition": partition}


@pytest.fixture
def mixed(tmp_path):
    path = tmp_path / "massive.jsonl"
    rows = [massive_row(0, "test"), massive_row(1, None), massive_row(2, "dev")]
    rows += [massive_row(3, None)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rows_without_a_partition_are_an_error_when_one_is_asked_for(mixed):
    with pytest.raises(DataError) as err:
        labeled_file(mixed, "massive", "test")
    assert str(err.value) == (
        f"{mixed}: 2 of 4 records have no 'partition' field, so --partition test would skip"
        " them silently; leave out --partition to score every record, or give each record its"
        " partition (train, dev or test)"
    )
    assert len(labeled_file(mixed, "massive", None)) == 4  # without --partition: every row


def test_a_file_where_every_row_has_a_partition_is_filtered(tmp_path):
    path = tmp_path / "massive.jsonl"
    rows = [massive_row(0, "test"), massive_row(1, "dev"), massive_row(2, "test")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [ex.id for ex in labeled_file(path, "massive", "test")] == ["0", "2"]


def test_evaluate_refuses_the_partition_filter_on_such_a_file(tiny_nlu_dir, mixed):
    args = ["evaluate", str(tiny_nlu_dir), "--data", str(mixed), "--partition", "test"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, DataError)
    assert "2 of 4 records have no 'partition' field" in str(result.exception)


def test_evaluate_reads_a_three_file_folder_without_format(tmp_path, tiny_nlu_dir):
    """The ATIS/SNIPS layout is recognised; what --format bio scores, the default scores."""
    folder = tmp_path / "atis_test"
    folder.mkdir()
    (folder / "seq.in").write_text("play jazz\nwake me up at six\n")
    (folder / "seq.out").write_text("O O\nO O O O O\n")
    (folder / "label").write_text("play_music\nalarm_set\n")
    auto = CliRunner().invoke(app, ["evaluate", str(tiny_nlu_dir), "--data", str(folder)])
    bio = CliRunner().invoke(
        app, ["evaluate", str(tiny_nlu_dir), "--data", str(folder), "--format", "bio"]
    )
    assert auto.exit_code == 0, auto.output
    assert json.loads(auto.stdout) == json.loads(bio.stdout)


def test_a_bad_record_names_the_format_read_and_the_flag(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"utt": "hi", "annot_utt": "hi", "intent": "x"}\nnot json\n')
    with pytest.raises(DataError) as err:
        labeled_file(path, "auto", None)
    assert "read as massive; give --format" in str(err.value)
    assert "data.on_error" not in str(err.value)


def test_evaluate_warns_about_labels_the_model_never_saw(tmp_path, tiny_nlu_dir):
    path = tmp_path / "test.jsonl"
    path.write_text(
        '{"text": "play jazz", "intent": "no_such_intent", "slots": []}\n'
        '{"text": "order pizza", "intent": "no_such_intent",'
        ' "slots": [{"start": 6, "end": 11, "type": "no_such_type"}]}\n'
    )
    result = CliRunner().invoke(app, ["evaluate", str(tiny_nlu_dir), "--data", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["intent_accuracy"] == 0.0
    assert f"warning: {path}: 2 of 2 utterances hold labels the model never saw" in result.stderr
    assert "intent accuracy can reach at most 0.0%, exact match 0.0%" in result.stderr
