"""SIGKILL `distilnlu run` at named moments of a pretrain, a distill and a finetune stage; the
rerun must finish on the uninterrupted run's loss curve and weights (tests/reliability/harness).

`make test` runs one moment per stage kind; the whole sweep (8 moments x 3 kinds) is `slow`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import harness

FAST = [
    ("pretrain", "old checkpoint retired"),
    ("distill", "mid-step"),
    ("finetune", "clean-up"),
]
SWEEP = [(kind, moment) for kind in harness.KIND_STAGE for moment in harness.MOMENTS]


@pytest.mark.parametrize(("kind", "moment"), FAST)
def test_kill_at_a_moment_then_rerun_matches_the_uninterrupted_run(
    reference: Path, tmp_path: Path, kind: str, moment: str
) -> None:
    outcome = harness.kill_and_rerun(reference, tmp_path, kind, moment)
    harness.assert_recovered(outcome, kind, moment)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "moment"), [c for c in SWEEP if c not in FAST])
def test_kill_sweep(reference: Path, tmp_path: Path, kind: str, moment: str) -> None:
    outcome = harness.kill_and_rerun(reference, tmp_path, kind, moment)
    harness.assert_recovered(outcome, kind, moment)
