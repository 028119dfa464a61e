"""A distillation run killed with SIGKILL mid-schedule resumes on the identical loss curve."""

import json
import signal
import time

import yaml

from tests.conftest import TINY_RECIPE
from tests.training.test_resume_sigkill import last_step, losses, start

STEPS, SWITCH = 40, 20


def distill_stage(teachers):
    return {
        "kind": "distill",
        "model": "tiny",
        "teachers": [{"model": teachers[0], "until_step": SWITCH}, {"model": teachers[1]}],
        "data": {"domain": 1.0},
        "training": {
            "max_steps": STEPS,
            "batch_size": 16,
            "seq_len": 64,
            "lr": 2e-3,
            "checkpoint_every": 5,
            "eval_every": 1000,
            "shuffle_buffer": 8,
        },
    }


def write(tmp_path, name, stages):
    raw = json.loads(json.dumps(TINY_RECIPE))
    raw["name"], raw["output_dir"], raw["stages"] = name, str(tmp_path / "runs"), stages
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def switch_steps(stage_dir):
    rows = [json.loads(x) for x in (stage_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [r["step"] for r in rows if "teacher_switch" in r]


def test_distill_sigkill_mid_schedule_resumes_identically(tmp_path):
    stages = json.loads(json.dumps(TINY_RECIPE["stages"]))
    stages["student"] = distill_stage(["teacher_stage1", "teacher_stage2"])
    straight = start(write(tmp_path, "straight", stages))
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    reference = losses(tmp_path / "runs/straight/student")
    assert sorted(reference) == list(range(1, STEPS + 1))
    assert switch_steps(tmp_path / "runs/straight/student") == [SWITCH]

    teachers = [str(tmp_path / "runs/straight" / t) for t in ("teacher_stage1", "teacher_stage2")]
    path = write(tmp_path, "killed", {"student": distill_stage(teachers)})
    stage_dir = tmp_path / "runs/killed/student"
    proc = start(path)
    deadline = time.time() + 240
    while last_step(stage_dir) < 12 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 12 <= last_step(stage_dir) < STEPS

    resumed = start(path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    after = losses(stage_dir)
    assert sorted(after) == list(range(1, STEPS + 1))
    assert max(abs(after[s] - reference[s]) for s in reference) <= 1e-6
    assert switch_steps(stage_dir) == [SWITCH]  # logged once, at the same step
