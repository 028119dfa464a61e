import pickle
import random

import numpy as np
import pytest
import torch

from distilnlu.training.checkpoint import (
    COMPLETE,
    TENSORS,
    CheckpointError,
    candidates,
    decode,
    encode,
    find_checkpoint,
    load_checkpoint,
    read_checkpoint,
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


def test_second_save_keeps_the_first_as_old_and_leaves_no_temporaries(tmp_path):
    save_checkpoint(tmp_path, {}, {"step": 1})
    save_checkpoint(tmp_path, {}, {"step": 2})
    save_checkpoint(tmp_path, {}, {"step": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "checkpoint.old"]
    _, state = load_checkpoint(find_checkpoint(tmp_path))
    assert state["step"] == 3
    assert [read_checkpoint(p)[1]["step"] for p in candidates(tmp_path)] == [3, 2]


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


def test_encoding_round_trips_optimizer_state_rng_tuples_and_tied_tensors():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tied = {"a": model.weight, "b": model.weight, "view": model.weight[0]}
    value = {
        "optimizer": optimizer.state_dict(),
        "tied": tied,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "nested": [1, 2.5, None, "x", (True, {3: "int key"})],
    }
    flat: dict[str, torch.Tensor] = {}
    back = decode(encode(value, flat), flat)
    assert back["optimizer"]["state"].keys() == {0, 1}  # int keys kept
    exp_avg = optimizer.state[model.weight]["exp_avg"]
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], exp_avg)
    assert back["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]
    assert back["python"] == random.getstate()
    assert back["numpy"][1].dtype == np.uint32
    assert np.array_equal(back["numpy"][1], np.random.get_state()[1])
    assert back["nested"] == [1, 2.5, None, "x", (True, {3: "int key"})]
    assert torch.equal(back["tied"]["view"], model.weight[0])
    with pytest.raises(TypeError, match="cannot store a object"):
        encode({"x": object()}, {})


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.ones(1000)}, {"step": 1})
    save_checkpoint(tmp_path, {"w": torch.ones(1000)}, {"step": 2})
    newest = tmp_path / "checkpoint" / TENSORS
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    paths = list(candidates(tmp_path))
    with pytest.raises(CheckpointError, match="damaged"):
        read_checkpoint(paths[0])
    assert read_checkpoint(paths[1])[1]["step"] == 1


def test_a_planted_pickle_is_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "state.pt").write_bytes(pickle.dumps({"rng": Boom()}))
    (folder / "trainer_state.json").write_text("{}")
    (folder / COMPLETE).write_text("ok")
    with pytest.raises(CheckpointError, match="old pickle format"):
        load_checkpoint(find_checkpoint(tmp_path))
    # The same payload named state.safetensors is not a safetensors file: refused, not run.
    (folder / TENSORS).write_bytes((folder / "state.pt").read_bytes())
    (folder / "state.json").write_text("{}")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(folder)
