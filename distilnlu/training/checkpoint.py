"""Resumable checkpoints written atomically.

A checkpoint is a folder holding model, optimizer and scheduler state, RNG states and the loop's
own state (step, data position). It is written under a temporary name, marked complete, and only
then renamed into place, so a kill at any moment leaves either the previous complete checkpoint or
the new one on disk, never a partial one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

COMPLETE = "COMPLETE"
NAME = "checkpoint"


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
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_dir(parent: Path) -> Path:
    """Where a checkpoint is written before it is committed (see :func:`commit_checkpoint`)."""
    return parent / f".{NAME}.tmp"


def reset_staging(parent: Path) -> Path:
    """An empty staging folder (anything a killed writer left there is dropped)."""
    tmp = staging_dir(parent)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit_checkpoint(parent: Path, tensors: dict[str, Any], state: dict[str, Any]) -> Path:
    """Add ``tensors`` (state dicts) and ``state`` (JSON-able) to the staging folder, mark it
    complete and rename it to ``parent/checkpoint``. The staging folder may already hold files
    written by every process (a sharded engine's state)."""
    final, tmp, old = parent / NAME, staging_dir(parent), parent / f"{NAME}.old"
    torch.save({**tensors, "rng": rng_state()}, tmp / "state.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
    with open(tmp / COMPLETE, "w") as fh:
        fh.write("ok\n")
        fh.flush()
        os.fsync(fh.fileno())
    # Keep the previous checkpoint until the new one is in place: at every instant one complete
    # checkpoint exists under `checkpoint` or `checkpoint.old`.
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    _fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(parent: Path, tensors: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write ``tensors`` (state dicts) and ``state`` (JSON-able) to ``parent/checkpoint``."""
    parent.mkdir(parents=True, exist_ok=True)
    reset_staging(parent)
    return commit_checkpoint(parent, tensors, state)


def find_checkpoint(parent: Path) -> Path | None:
    """The newest complete checkpoint under ``parent``, or None."""
    for name in (NAME, f"{NAME}.old"):
        path = parent / name
        if (path / COMPLETE).is_file():
            return path
    return None


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (tensors, state) and restore the RNG states saved with them."""
    tensors = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    state = json.loads((path / "trainer_state.json").read_text())
    set_rng_state(tensors.pop("rng"))
    return tensors, state


def remove_checkpoints(parent: Path) -> None:
    for name in (NAME, f"{NAME}.old", staging_dir(parent).name):
        shutil.rmtree(parent / name, ignore_errors=True)
