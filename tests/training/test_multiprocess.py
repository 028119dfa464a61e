"""Two CPU processes (torchrun, gloo) train exactly like one process with the same global batch,
write each file once, and resume after SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.conftest import REPO, TINY_RECIPE, TINY_TRAINING

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


def start(
    path: Path,
    processes: int,
    module: str = "distilnlu",
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
) -> subprocess.Popen:
    """``python -m module run path``, under torchrun when ``processes`` is 2; ``env`` is added to
    this process's environment (e.g. an engine's variables); ``stdout``: a file for its stdout."""
    launcher = TORCHRUN if processes == 2 else [sys.executable]
    with stdout.open("w") if stdout else contextlib.nullcontext(subprocess.DEVNULL) as out:
        return subprocess.Popen(
            [*launcher, "-m", module, "run", str(path)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,  # where ``-m tests...`` modules are found
            env={**os.environ, **(env or {})},
            # its own process group; torchrun gives each worker one of its own (see kill)
            start_new_session=True,
        )


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL a launch and all its processes at once, as a crash of the machine would.

    torchrun starts every worker in a session of its own: SIGKILL to torchrun's process group
    alone leaves the workers running, and they finish the stage on their own.
    """
    workers = psutil.Process(proc.pid).children(recursive=True)
    groups = {proc.pid}
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(worker.pid))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers outlived SIGKILL: {alive}"


def kill_after_step(proc: subprocess.Popen, stage_dir: Path, step: int) -> None:
    """Kill the launch (every process of it) once ``stage_dir`` has logged ``step``."""
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline:
        try:
            if max(curve(stage_dir), default=0) >= step:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    kill(proc)


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


def max_weight_difference(a: Path, b: Path) -> float:
    wa, wb = (load_file(d / "model.safetensors") for d in (a, b))
    assert set(wa) == set(wb), "the same tensors saved, tied ones once"
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def check_follows(one: Path, two: Path, stage: str) -> None:
    rows = loss_rows(two / stage)
    assert [r["step"] for r in rows] == list(range(1, 11)), "one writer, one row per step"
    reference, got = curve(one / stage), curve(two / stage)
    worst = max(abs(reference[s] - got[s]) for s in reference)
    assert worst <= 1e-4, f"{stage}: loss curves differ by {worst}"
    assert rows[-1]["tokens"] == loss_rows(one / stage)[-1]["tokens"]
    assert json.loads((two / stage / "metrics.json").read_text())["steps"] == 10
    assert not (two / stage / "checkpoint").exists()
    # the gathered weights, written once by the main process
    worst = max_weight_difference(one / stage, two / stage)
    assert worst <= 1e-4, f"{stage}: saved weights differ by {worst}"


def test_two_processes_follow_the_one_process_loss_curve(one_process, tmp_path):
    finish(start(write_recipe(tmp_path, "two", grad_accum=1), processes=2))
    two = tmp_path / "runs/two"
    for stage in ("teacher_stage1", "student"):
        check_follows(one_process, two, stage)  # tokens count the global batch in both runs
    manifest = json.loads((two / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"tokenizer", "teacher_stage1", "student"}


RESUME_STEPS = 40


def resume_setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An uninterrupted 1-process reference run of :data:`RESUME_STEPS` pretraining steps, and
    the recipe and stage folder of the 2-process run to kill: (reference stage, recipe, stage)."""
    reference = tmp_path / "ref"
    reference.mkdir()
    finish(start(write_recipe(reference, "ref", 2, RESUME_STEPS, distill=False), processes=1))
    path = write_recipe(tmp_path, "killed", grad_accum=1, steps=RESUME_STEPS, distill=False)
    return reference / "runs/ref/teacher_stage1", path, tmp_path / "runs/killed/teacher_stage1"


def test_a_two_process_run_resumes_after_sigkill(tmp_path):
    steps = RESUME_STEPS
    reference, path, stage_dir = resume_setup(tmp_path)
    kill_after_step(start(path, processes=2), stage_dir, 12)
    checkpoint = json.loads((stage_dir / "checkpoint/trainer_state.json").read_text())
    assert 10 <= checkpoint["step"] < steps

    out = tmp_path / "resumed.out"
    finish(start(path, processes=2, stdout=out))
    assert f"resuming from the checkpoint at step {checkpoint['step']} " in out.read_text()
    got = curve(stage_dir)
    assert sorted(got) == list(range(1, steps + 1))
    want = curve(reference)
    worst = max(abs(want[s] - got[s]) for s in want)
    assert worst <= 1e-4, f"the resumed two-process run is off by {worst}"
