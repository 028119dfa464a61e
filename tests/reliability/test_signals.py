"""SIGTERM and Ctrl-C: a checkpoint at the next step boundary, one line saying how to resume,
the shell's exit status (143 / 130); the next run resumes from that checkpoint."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import TINY_RECIPE
from tests.reliability.harness import RESUMED, checkpoint_step, curve


def long_recipe(root: Path) -> Path:
    """One pretraining stage far longer than the test waits (checkpoints only on request)."""
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(root / "runs")
    del raw["stages"]["teacher_stage2"]
    raw["stages"]["teacher_stage1"]["training"].update(
        max_steps=100_000, checkpoint_every=100_000, eval_every=100_000
    )
    raw["stages"]["teacher_stage1"]["eval"] = {"corpora": []}
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def start(recipe: Path, logs: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("DISTILNLU_FAULT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "distilnlu", "run", str(recipe)],
        stdout=open(logs / "out.txt", "wb"),
        stderr=open(logs / "err.txt", "wb"),
        env=env,
    )


def wait_for(predicate, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert proc.poll() is None, "the run ended before the signal was sent"
        assert time.time() < deadline, "timed out waiting for the run"
        time.sleep(0.05)


def logged_steps(stage: Path) -> int:
    try:
        return max(curve(stage), default=0)
    except (OSError, ValueError):
        return 0


def test_sigterm_then_ctrl_c_checkpoint_and_say_how_to_resume(tmp_path: Path) -> None:
    recipe = long_recipe(tmp_path)
    stage = tmp_path / "runs/tiny/teacher_stage1"
    proc = start(recipe, tmp_path)
    wait_for(lambda: logged_steps(stage) >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    err = (tmp_path / "err.txt").read_text()
    assert "Traceback" not in err
    last = logged_steps(stage)
    assert f"interrupted by SIGTERM at step {last} of teacher_stage1; checkpoint saved" in err
    assert checkpoint_step(stage) == last  # nothing trained was lost

    proc = start(recipe, tmp_path)  # resumes, then gets Ctrl-C
    out = tmp_path / "out.txt"
    wait_for(lambda: RESUMED.search(out.read_text()) is not None, proc)
    assert RESUMED.search(out.read_text()).group(1) == str(last)
    wait_for(lambda: logged_steps(stage) >= last + 2, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    err = (tmp_path / "err.txt").read_text()
    assert "Traceback" not in err
    assert "interrupted by SIGINT at step" in err and "run the same command again" in err
    assert checkpoint_step(stage) == logged_steps(stage) > last


def test_ctrl_c_outside_training_exits_130_with_one_line(tmp_path: Path) -> None:
    recipe = long_recipe(tmp_path)
    proc = start(recipe, tmp_path)
    wait_for(lambda: b"running (tokenizer)" in (tmp_path / "out.txt").read_bytes(), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    err = (tmp_path / "err.txt").read_text()
    assert "Traceback" not in err
    assert "interrupted by SIGINT" in err and "run the same command again" in err
