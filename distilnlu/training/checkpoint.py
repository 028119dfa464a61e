"""Resumable checkpoints written atomically, read without pickle.

A checkpoint is a folder holding model, optimizer and scheduler state, RNG states and the loop's
own state (step, data position). Tensors go to ``state.safetensors``; the structure around them
(nested dicts, lists, numbers, the RNG tuples) to ``state.json``, so loading a checkpoint can never
execute code, whoever planted the files. The folder is written under a temporary name, marked
complete, and only then renamed into place; the previous checkpoint is kept as ``checkpoint.old``,
so a kill at any moment leaves at least one complete checkpoint, and a damaged newest one (a
disk fault, a truncated copy) falls back to the one before.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from distilnlu.errors import ModelError
from distilnlu.faults import fault_point

COMPLETE = "COMPLETE"
NAME = "checkpoint"
OLD = f"{NAME}.old"
TENSORS = "state.safetensors"
STRUCTURE = "state.json"
TRAINER_STATE = "trainer_state.json"


class CheckpointError(ModelError):
    """A checkpoint folder is damaged or in a format that cannot be read safely."""


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- pickle-free format
# A nested value becomes JSON; every tensor (and numpy array) is replaced by a reference into the
# safetensors file. Dicts are stored as key/value pairs because optimizer state is keyed by int.


def encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON-able data, its tensors moved into ``tensors``."""
    return _encode(value, tensors, set())


def _own_storage(value: torch.Tensor, seen: set[int]) -> torch.Tensor:
    """A contiguous CPU tensor that shares storage with no other one stored: safetensors refuses
    aliased tensors (tied embeddings, views)."""
    tensor = value.detach().cpu().contiguous()
    storage = tensor.untyped_storage()
    if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
        tensor = tensor.clone()
        storage = tensor.untyped_storage()
    if tensor.numel():
        seen.add(storage.data_ptr())
    return tensor


def _encode(value: Any, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if isinstance(value, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = _own_storage(value, seen)
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        ref = _encode(torch.from_numpy(value.astype(np.int64, copy=True)), tensors, seen)
        return {"__ndarray__": ref["__tensor__"], "dtype": str(value.dtype)}
    if isinstance(value, dict):
        pairs = [[_encode(k, tensors, seen), _encode(v, tensors, seen)] for k, v in value.items()]
        return {"__map__": pairs}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, seen) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors, seen) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a checkpoint cannot store a {type(value).__name__}")


def decode(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(data, list):
        return [decode(v, tensors) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tensor__" in data:
        return tensors[data["__tensor__"]]
    if "__ndarray__" in data:
        return tensors[data["__ndarray__"]].numpy().astype(np.dtype(data["dtype"]))
    if "__tuple__" in data:
        return tuple(decode(v, tensors) for v in data["__tuple__"])
    if "__map__" in data:
        return {decode(k, tensors): decode(v, tensors) for k, v in data["__map__"]}
    raise ValueError(f"unexpected object {sorted(data)}")


# --------------------------------------------------------------------------- writing


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def staging_dir(parent: Path) -> Path:
    """Where a checkpoint is written before it is committed (see :func:`commit_checkpoint`)."""
    return parent / f".{NAME}.tmp"


def reset_staging(parent: Path) -> Path:
    """An empty staging folder (anything a killed writer left there is dropped)."""
    tmp = staging_dir(parent)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _discard(path: Path) -> None:
    """Remove a checkpoint folder so that no kill leaves a half-deleted one under its name: it
    is renamed away first (one atomic step), then deleted."""
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.trash")
    shutil.rmtree(trash, ignore_errors=True)
    path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def commit_checkpoint(parent: Path, tensors: dict[str, Any], state: dict[str, Any]) -> Path:
    """Add ``tensors`` (state dicts) and ``state`` (JSON-able) to the staging folder, mark it
    complete and rename it to ``parent/checkpoint``. The staging folder may already hold files
    written by every process (a sharded engine's state)."""
    final, tmp, old = parent / NAME, staging_dir(parent), parent / OLD
    flat: dict[str, torch.Tensor] = {}
    structure = encode({**tensors, "rng": rng_state()}, flat)
    save_file(flat, str(tmp / TENSORS))
    (tmp / STRUCTURE).write_text(json.dumps(structure))
    (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2))
    for name in (TENSORS, STRUCTURE, TRAINER_STATE):
        _fsync_file(tmp / name)
    with open(tmp / COMPLETE, "w") as fh:
        fh.write("ok\n")
        fh.flush()
        os.fsync(fh.fileno())
    fault_point("checkpoint_staged")
    # The previous checkpoint becomes `checkpoint.old` and stays: at every instant at least one
    # complete checkpoint exists, and a damaged newest one has a fallback.
    if final.exists():
        _discard(old)
        final.rename(old)
        fault_point("checkpoint_retired")
    tmp.rename(final)
    _fsync_dir(parent)
    return final


def save_checkpoint(parent: Path, tensors: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write ``tensors`` (state dicts) and ``state`` (JSON-able) to ``parent/checkpoint``."""
    parent.mkdir(parents=True, exist_ok=True)
    reset_staging(parent)
    return commit_checkpoint(parent, tensors, state)


# --------------------------------------------------------------------------- reading


def candidates(parent: Path) -> Iterator[Path]:
    """Complete checkpoints under ``parent``, newest first."""
    for name in (NAME, OLD):
        path = parent / name
        if (path / COMPLETE).is_file():
            yield path


def find_checkpoint(parent: Path) -> Path | None:
    """The newest complete checkpoint under ``parent``, or None."""
    return next(candidates(parent), None)


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (tensors, state) of the checkpoint at ``path`` without touching the RNGs.

    Raises:
        CheckpointError: a file is missing, truncated or malformed (or the folder is in the
            pickle format of earlier versions, which is never read).
    """
    if (path / "state.pt").is_file() and not (path / TENSORS).is_file():
        raise CheckpointError(f"{path} is in the old pickle format (state.pt), which is not read")
    try:
        flat = load_file(str(path / TENSORS))
        tensors = decode(json.loads((path / STRUCTURE).read_text()), flat)
        state = json.loads((path / TRAINER_STATE).read_text())
        if not isinstance(tensors, dict) or "rng" not in tensors or not isinstance(state, dict):
            raise ValueError("unexpected layout")
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as err:
        raise CheckpointError(f"{path} is damaged ({type(err).__name__}: {err})") from None
    return tensors, state


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (tensors, state) and restore the RNG states saved with them."""
    tensors, state = read_checkpoint(path)
    set_rng_state(tensors.pop("rng"))
    return tensors, state


def remove_checkpoints(parent: Path) -> None:
    """Drop a finished stage's checkpoints (a kill half-way leaves no half-deleted one)."""
    _discard(parent / NAME)
    fault_point("cleanup")
    for name in (OLD, staging_dir(parent).name):
        _discard(parent / name)
    for trash in parent.glob(".*.trash"):
        shutil.rmtree(trash, ignore_errors=True)
