"""A task_distill run killed with SIGKILL after a checkpoint resumes on the identical loss curve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from distilnlu.training.checkpoint import find_checkpoint
from tests.conftest import TINY_RECIPE
from tests.training.test_resume_sigkill import last_step, losses

EPOCHS, BATCH = 2, 16
POOL = 300 + 40 + 30  # labeled + unlabeled + augmented
STEPS = EPOCHS * -(-POOL // BATCH)  # 2 × 24 = 48

LABELED = {
    "nlu_train": {"format": "synthetic", "num_examples": 300, "seed": 1},
    "nlu_dev": {"format": "synthetic", "num_examples": 60, "seed": 2},
}


def task_stage(teacher: str, student: str, augment_model: str) -> dict:
    return {
        "kind": "task_distill",
        "teacher": teacher,
        "student": student,
        "train": "nlu_train",
        "dev": "nlu_dev",
        "max_length": 32,
        "patience": 50,
        "latency_texts": 0,
        "unlabeled": ["domain"],
        "unlabeled_max_texts": 40,
        "augment": {"model": augment_model, "copies": 1, "max_texts": 30},
        "loss": {"temperature": 2.0, "hidden_weight": 0.5},
        "training": {
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "lr": 1e-2,
            "eval_every": 10,
            "checkpoint_every": 5,
        },
    }


def write(tmp_path: Path, name: str, stages: dict) -> Path:
    raw = json.loads(json.dumps(TINY_RECIPE))
    raw["name"], raw["output_dir"], raw["stages"] = name, str(tmp_path / "runs"), stages
    raw["data"]["labeled"] = json.loads(json.dumps(LABELED))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def start(path: Path) -> subprocess.Popen:
    """``distilnlu run`` in a subprocess on one torch thread (tiny models: much faster on a
    busy machine; every run of the test uses the same count)."""
    return subprocess.Popen(
        [sys.executable, "-m", "distilnlu", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def log_lines(folder: Path) -> dict[int, str]:
    """The raw metrics.jsonl line of every training step."""
    out = {}
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line) if line else {}
        if "loss" in row:
            out[row["step"]] = line
    return out


def test_task_distill_sigkill_after_a_checkpoint_resumes_identically(tmp_path):
    stages = json.loads(json.dumps(TINY_RECIPE["stages"]))
    stages["finetune"] = {
        "kind": "finetune",
        "models": ["teacher_stage2"],
        "train": "nlu_train",
        "dev": "nlu_dev",
        "max_length": 32,
        "latency_texts": 0,
        "training": {"max_steps": 30, "batch_size": 16, "lr": 1e-2, "eval_every": 30},
    }
    stages["task"] = task_stage("finetune/teacher_stage2", "teacher_stage1", "teacher_stage2")
    straight = start(write(tmp_path, "straight", stages))
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    done = tmp_path / "runs/straight/task/teacher_stage1"
    reference = losses(done)
    assert sorted(reference) == list(range(1, STEPS + 1))
    pool = json.loads((tmp_path / "runs/straight/task/metrics.json").read_text())["pool"]
    assert pool == {"labeled": 300, "unlabeled": 40, "augmented": 30}

    # The same stage on the finished upstream folders, killed after its first checkpoint.
    up = tmp_path / "runs/straight"
    alone = task_stage(
        str(up / "finetune/teacher_stage2"), str(up / "teacher_stage1"), str(up / "teacher_stage2")
    )
    path = write(tmp_path, "killed", {"task": alone})
    folder = tmp_path / "runs/killed/task/teacher_stage1"
    proc = start(path)
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        if find_checkpoint(folder) is not None and last_step(folder) >= 7:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoint = find_checkpoint(folder)
    assert checkpoint is not None
    saved = json.loads((checkpoint / "trainer_state.json").read_text())["step"]
    killed_at = last_step(folder)
    assert 5 <= saved <= killed_at < STEPS
    before = log_lines(folder)
    assert not (folder / "metrics.json").exists()

    resumed = start(path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    after = losses(folder)
    assert sorted(after) == list(range(1, STEPS + 1))
    worst = max(abs(after[s] - reference[s]) for s in reference)
    assert worst <= 1e-6, worst
    # it resumed from the checkpoint: the rows up to it are the killed run's own lines
    again = log_lines(folder)
    assert all(again[s] == before[s] for s in range(1, saved + 1))
    m = json.loads((tmp_path / "runs/killed/task/metrics.json").read_text())["models"]["task"]
    straight_m = json.loads((tmp_path / "runs/straight/task/metrics.json").read_text())
    want = straight_m["models"]["task"]
    assert m["steps"] == want["steps"] == STEPS and m["best_step"] == want["best_step"]
    assert m["eval"]["nlu_dev"] == want["eval"]["nlu_dev"]
