import random

import torch

from distilnlu.training.checkpoint import (
    COMPLETE,
    find_checkpoint,
    load_checkpoint,
    remove_checkpoints,
    save_checkpoint,
)


def test_round_trip_restores_tensors_state_and_rng(tmp_path):
    torch.manual_seed(3)
    random.seed(3)
    tensors = {"model": {"w": torch.arange(4.0)}}
    path = save_checkpoint(tmp_path, tensors, {"step": 12, "batches_consumed": 40})
    expected_torch, expected_py = torch.rand(3), random.random()
    torch.manual_seed(99)
    random.seed(99)
    loaded, state = load_checkpoint(find_checkpoint(tmp_path))
    assert path == tmp_path / "checkpoint"
    assert state == {"step": 12, "batches_consumed": 40}
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert torch.equal(torch.rand(3), expected_torch)
    assert random.random() == expected_py


def test_second_save_replaces_first_and_leaves_no_temporaries(tmp_path):
    save_checkpoint(tmp_path, {}, {"step": 1})
    save_checkpoint(tmp_path, {}, {"step": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    _, state = load_checkpoint(find_checkpoint(tmp_path))
    assert state["step"] == 2


def test_incomplete_checkpoint_is_never_picked(tmp_path):
    save_checkpoint(tmp_path, {}, {"step": 1})
    # A kill between the rename of the old folder and the rename of the new one: only
    # `checkpoint.old` (complete) and a temporary folder (incomplete) exist.
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    (tmp_path / ".checkpoint.tmp").mkdir()
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    # A folder without the COMPLETE marker is ignored.
    (tmp_path / "checkpoint").mkdir()
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    (tmp_path / "checkpoint" / COMPLETE).write_text("ok")
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint"


def test_remove_and_absent(tmp_path):
    assert find_checkpoint(tmp_path) is None
    save_checkpoint(tmp_path, {}, {"step": 1})
    remove_checkpoints(tmp_path)
    assert find_checkpoint(tmp_path) is None
