"""Two CPU processes (torchrun, gloo) train exactly like one process with the same global batch,
write each file once, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import TINY_RECIPE, TINY_TRAINING

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend",
)

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
# No dropout: the two runs must draw nothing random apart from the (seeded) masks.
SHAPE = {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64}
STUDENT = {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64}


def write_recipe(tmp: Path, name: str, grad_accum: int, steps: int = 10, distill: bool = True):
    """Tokenizer, a pretraining stage and (optionally) a distillation stage from it.

    One process with ``grad_accum=2`` and two processes with ``grad_accum=1`` see the same
    global batch of 2 x 4 sequences per optimizer step.
    """
    raw = json.loads(json.dumps(TINY_RECIPE))
    raw["name"], raw["output_dir"] = name, str(tmp / "runs")
    training = {**TINY_TRAINING, "max_steps": steps, "grad_accum": grad_accum}
    training.update(eval_every=5, checkpoint_every=5)
    raw["stages"]["teacher_stage1"].update(model={**SHAPE, "dropout": 0.0}, training=training)
    del raw["stages"]["teacher_stage2"]
    if distill:
        raw["stages"]["student"] = {
            "kind": "distill",
            "model": {**STUDENT, "dropout": 0.0},
            "teachers": [{"model": "teacher_stage1"}],
            "loss": {"hidden_weight": 1.0},
            "data": {"domain": 1.0},
            "training": training,
            "eval": {"corpora": ["domain_dev"], "max_texts": 10},
        }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def start(path: Path, processes: int) -> subprocess.Popen:
    launcher = TORCHRUN if processes == 2 else [sys.executable]
    return subprocess.Popen(
        [*launcher, "-m", "distilnlu", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: SIGKILL reaches every worker
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> None:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert code == 0, proc.stderr.read()[-3000:]


def loss_rows(stage_dir: Path) -> list[dict]:
    lines = (stage_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in (json.loads(x) for x in lines if x) if "loss" in r]


def curve(stage_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in loss_rows(stage_dir)}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    finish(start(write_recipe(tmp, "one", grad_accum=2), processes=1))
    return tmp / "runs/one"


def test_two_processes_follow_the_one_process_loss_curve(one_process, tmp_path):
    finish(start(write_recipe(tmp_path, "two", grad_accum=1), processes=2))
    two = tmp_path / "runs/two"
    for stage in ("teacher_stage1", "student"):
        rows = loss_rows(two / stage)
        assert [r["step"] for r in rows] == list(range(1, 11)), "one writer, one row per step"
        reference, got = curve(one_process / stage), curve(two / stage)
        worst = max(abs(reference[s] - got[s]) for s in reference)
        assert worst <= 1e-4, f"{stage}: loss curves differ by {worst}"
        # tokens count the global batch in both runs
        assert rows[-1]["tokens"] == loss_rows(one_process / stage)[-1]["tokens"]
        assert json.loads((two / stage / "metrics.json").read_text())["steps"] == 10
        assert not (two / stage / "checkpoint").exists()
    manifest = json.loads((two / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"tokenizer", "teacher_stage1", "student"}


def test_a_two_process_run_resumes_after_sigkill(tmp_path):
    steps = 40
    reference = tmp_path / "ref"
    reference.mkdir()
    finish(start(write_recipe(reference, "ref", 2, steps, distill=False), processes=1))
    path = write_recipe(tmp_path, "killed", grad_accum=1, steps=steps, distill=False)
    stage_dir = tmp_path / "runs/killed/teacher_stage1"
    proc = start(path, processes=2)
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline:
        try:
            if max(curve(stage_dir), default=0) >= 12:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    checkpoint = json.loads((stage_dir / "checkpoint/trainer_state.json").read_text())
    assert 10 <= checkpoint["step"] < steps

    finish(start(path, processes=2))
    got = curve(stage_dir)
    assert sorted(got) == list(range(1, steps + 1))
    want = curve(reference / "runs/ref/teacher_stage1")
    worst = max(abs(want[s] - got[s]) for s in want)
    assert worst <= 1e-4, f"the resumed two-process run is off by {worst}"
