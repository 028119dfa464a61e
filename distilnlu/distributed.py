"""Who writes under a multi-process launch (``accelerate launch`` / ``torchrun``).

Every process runs the same stage code; only the main process writes run files (stage folders,
metrics, manifest), and the others wait at a barrier so that nobody reads a file before it is
complete. In a single process both are no-ops.
"""

from __future__ import annotations

import torch
from accelerate import PartialState


def use_cpu() -> bool:
    """Train on the CPU when there is no GPU. Accelerate only forms a multi-process CPU group
    (gloo) under ``torchrun`` when told it is on the CPU."""
    return not torch.cuda.is_available()


def state() -> PartialState:
    """The process-wide distributed state (created on first use, the same for every caller)."""
    return PartialState(cpu=use_cpu())


def is_main() -> bool:
    """True in the process that writes (always, without a multi-process launch)."""
    return state().is_main_process


def barrier() -> None:
    """Wait until every process gets here."""
    state().wait_for_everyone()


def world_size() -> int:
    """Number of processes of the launch (1 without one)."""
    return state().num_processes
