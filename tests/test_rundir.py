import json

import pytest

from distilnlu import rundir


def test_atomic_write_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "metrics.json"
    rundir.write_json(path, {"a": 1, "when": tmp_path})  # non-JSON values become strings
    assert path.read_text() == json.dumps({"a": 1, "when": str(tmp_path)}, indent=2) + "\n"
    rundir.atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("old")
    with pytest.raises(RuntimeError), rundir.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_jsonl_round_trip_skips_cut_lines(tmp_path):
    path = tmp_path / rundir.predictions_file("dev")
    assert path.name == "predictions-dev.jsonl"
    rundir.write_jsonl(path, [{"text": "réveille-moi"}, {"n": 2}])
    assert path.read_text(encoding="utf-8") == '{"text": "réveille-moi"}\n{"n": 2}\n'
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"cut": ')  # a line a kill cut short
    assert rundir.read_jsonl(path) == [{"text": "réveille-moi"}, {"n": 2}]
    assert rundir.read_jsonl(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]"])
def test_read_json_is_none_for_what_is_not_a_json_object(tmp_path, content):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    assert rundir.read_json(path) is None
    assert rundir.read_json(tmp_path / "absent.json") is None
