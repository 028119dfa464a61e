"""A pretraining run killed with SIGKILL and restarted continues the identical loss curve."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from tests.conftest import TINY_RECIPE

STEPS = 60


def recipe(tmp_path, name, tokenizer_dir=None):
    raw = json.loads(json.dumps(TINY_RECIPE))
    raw["name"], raw["output_dir"] = name, str(tmp_path / "runs")
    stage = raw["stages"]["teacher_stage1"]
    stage["training"].update(
        max_steps=STEPS, batch_size=16, seq_len=64, checkpoint_every=10, eval_every=1000
    )
    stage["eval"] = {"corpora": []}
    if tokenizer_dir:  # share one tokenizer so both runs see the same ids
        del raw["stages"]["tokenizer"]
        stage["tokenizer"] = str(tokenizer_dir)
    del raw["stages"]["teacher_stage2"]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def start(path):
    return subprocess.Popen(
        [sys.executable, "-m", "distilnlu", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def losses(stage_dir):
    rows = [json.loads(x) for x in (stage_dir / "metrics.jsonl").read_text().splitlines() if x]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def last_step(stage_dir):
    try:
        return max(losses(stage_dir), default=0)
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_sigkill_then_resume_gives_identical_losses(tmp_path):
    straight = start(recipe(tmp_path, "straight"))
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    reference = losses(tmp_path / "runs/straight/teacher_stage1")
    assert sorted(reference) == list(range(1, STEPS + 1))

    path = recipe(tmp_path, "killed", tokenizer_dir=tmp_path / "runs/straight/tokenizer")
    stage_dir = tmp_path / "runs/killed/teacher_stage1"
    proc = start(path)
    deadline = time.time() + 240
    while last_step(stage_dir) < 25 and proc.poll() is None and time.time() < deadline:
        ckpt = stage_dir / "checkpoint"
        if ckpt.exists():  # a visible checkpoint is always complete
            assert {"COMPLETE", "state.safetensors", "trainer_state.json"} <= set(os.listdir(ckpt))
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = last_step(stage_dir)
    assert 25 <= killed_at < STEPS

    resumed = start(path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    after = losses(stage_dir)
    assert sorted(after) == list(range(1, STEPS + 1))
    worst = max(abs(after[s] - reference[s]) for s in reference)
    assert worst <= 1e-6, worst
