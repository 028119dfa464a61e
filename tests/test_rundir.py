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


def test_atomic_dir_renames_a_whole_folder_and_a_failure_leaves_none(tmp_path):
    target = tmp_path / "snapshots" / rundir.snapshot_name(250)
    stale = target.with_name(target.name + ".tmp")
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"x")  # what a killed writer left: cleared, not kept
    with rundir.atomic_dir(target) as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["metrics.json"]
    assert not stale.exists()
    other = tmp_path / "snapshots" / rundir.snapshot_name(500)
    with pytest.raises(RuntimeError), rundir.atomic_dir(other) as tmp:
        (tmp / "metrics.json").write_text("{}")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step-000250"]


def test_snapshot_folders_lists_complete_snapshots_by_step(tmp_path):
    root = tmp_path / rundir.SNAPSHOTS
    for name in ("step-000100", "step-1000000", "step-000020", "step-000300.tmp", "step-x"):
        (root / name).mkdir(parents=True)
        (root / name / rundir.METRICS).write_text("{}")
    (root / "step-000400").mkdir()  # no metrics.json: not a finished snapshot
    found = rundir.snapshot_folders(tmp_path)
    assert [(step, path.name) for step, path in found] == [
        (20, "step-000020"),
        (100, "step-000100"),
        (1000000, "step-1000000"),
    ]
    assert rundir.snapshot_folders(tmp_path / "none") == []
