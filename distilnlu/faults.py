"""Named fault points: the moments where the reliability tests kill a run on purpose.

A fault point costs one environment lookup when unset. ``DISTILNLU_FAULT`` holds comma-separated
``name`` or ``name@k`` entries; reaching point ``name`` for the k-th time in this process (the
first when ``@k`` is left out) sends SIGKILL to the process itself: no handler, no clean-up,
exactly what a scheduler's hard kill or a power cut leaves behind. The names are listed in
:data:`POINTS` so a misspelt one is an error, not a test that silently never kills.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "DISTILNLU_FAULT"
POINTS = frozenset(
    {
        "stage_start",  # a stage's folder is prepared, nothing trained yet
        "mid_step",  # gradients computed, optimizer step not taken
        "checkpoint_staged",  # a complete checkpoint written under its temporary name
        "checkpoint_retired",  # the previous checkpoint renamed away, the new one not yet in place
        "snapshot_staged",  # a kept snapshot written under its temporary name, not yet renamed
        "stage_saved",  # save_pretrained done, metrics.json not written
        "metrics_written",  # metrics.json written, checkpoints not yet removed
        "cleanup",  # checkpoints half removed
        "manifest_write",  # the manifest's temporary file written, not yet renamed into place
    }
)
_hits: Counter[str] = Counter()


def _plan() -> dict[str, int]:
    spec = os.environ.get(ENV, "")
    plan: dict[str, int] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, _, count = entry.partition("@")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown fault point {name!r} (known: {sorted(POINTS)})")
        plan[name] = int(count or 1)
    return plan


def fault_point(name: str) -> None:
    """Kill this process here if ``DISTILNLU_FAULT`` asks for it (see the module docstring)."""
    if ENV not in os.environ:
        return
    assert name in POINTS, name
    _hits[name] += 1
    if _plan().get(name) == _hits[name]:
        os.kill(os.getpid(), signal.SIGKILL)
