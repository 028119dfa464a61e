"""Kill a `distilnlu run` at a named moment, run it again, compare with an uninterrupted run.

One tiny recipe holds one stage of each training kind (pretrain, distill, finetune). The
reference run goes straight through once; each kill case copies the reference run folder without
the stage under test (and what follows it), runs it with ``DISTILNLU_FAULT`` set so that the
process SIGKILLs itself at the moment, then runs it again without the fault. The rerun must
finish, must resume from the checkpoint the kill left (never retrain from step 0 when one
existed), and must end with the reference's loss curve and weights, bit for bit.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from distilnlu.training.checkpoint import CheckpointError, candidates, read_checkpoint
from tests.conftest import TINY_RECIPE

NAME = "harness"
TRAINING = {"max_steps": 12, "batch_size": 4, "seq_len": 32, "lr": 2e-3, "shuffle_buffer": 8}
STAGES = {
    "tokenizer": {"kind": "tokenizer", "corpora": ["public", "domain"], "vocab_size": 400},
    "teacher": {
        "kind": "pretrain",
        "model": "tiny",
        "data": {"public": 1.0},
        "training": {**TRAINING, "eval_every": 6, "checkpoint_every": 4},
        "eval": {"corpora": ["domain_dev"], "max_texts": 20},
    },
    "student": {
        "kind": "distill",
        "model": "tiny",
        "tokenizer": "tokenizer",
        "teachers": [{"model": "teacher"}],
        "data": {"domain": 1.0},
        "training": {**TRAINING, "eval_every": 6, "checkpoint_every": 4},
        "eval": {"corpora": ["domain_dev"], "max_texts": 20},
    },
    "finetune": {
        "kind": "finetune",
        "models": ["student"],
        "train": "nlu_train",
        "dev": "nlu_dev",
        "max_length": 32,
        "latency_texts": 0,
        "patience": 50,
        "training": {
            "max_steps": 12,
            "batch_size": 16,
            "lr": 1e-2,
            "eval_every": 6,
            "checkpoint_every": 4,
        },
    },
}
LABELED = {
    "nlu_train": {"format": "synthetic", "num_examples": 120, "seed": 1},
    "nlu_dev": {"format": "synthetic", "num_examples": 40, "seed": 2},
}
KIND_STAGE = {"pretrain": "teacher", "distill": "student", "finetune": "finetune"}
"""The stage of the harness recipe that each training kind is tested on."""
MOMENTS = {
    "start": "stage_start",
    "mid-step": "mid_step@7",
    "checkpoint staged": "checkpoint_staged@2",
    "old checkpoint retired": "checkpoint_retired@1",
    "stage folder saved": "stage_saved",
    "after metrics.json": "metrics_written",
    "clean-up": "cleanup",
    "manifest write": "manifest_write",
}
"""Each named moment and its fault point (``@k``: the k-th time it is reached)."""
RESUMED = re.compile(r"resuming from the checkpoint at step (\d+)")


def write_recipe(root: Path) -> Path:
    raw = copy.deepcopy(TINY_RECIPE)
    raw["name"], raw["output_dir"] = NAME, str(root / "runs")
    raw["stages"] = copy.deepcopy(STAGES)
    raw["data"]["labeled"] = copy.deepcopy(LABELED)
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run(recipe: Path, until: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DISTILNLU_FAULT", None)
    if fault:
        env["DISTILNLU_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "distilnlu", "run", str(recipe), "--until", until],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def model_folder(run_dir: Path, stage: str) -> Path:
    """Where the stage's trained weights and training files live."""
    return run_dir / stage / ("student" if stage == "finetune" else "")


def curve(folder: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update({f"{file.name}:{k}": v for k, v in load_file(file).items()})
    return out


def checkpoint_step(folder: Path) -> int | None:
    """The step of the newest readable checkpoint a kill left (None: none)."""
    for path in candidates(folder):
        try:
            return int(read_checkpoint(path)[1]["step"])
        except CheckpointError:
            continue
    return None


@dataclass
class Outcome:
    killed: bool
    checkpoint_step: int | None
    resumed_from: int | None
    rerun_code: int
    rerun_stderr: str
    differences: list[str]
    leftovers: list[str]
    log_rewritten: bool
    """The rerun wrote the stage's metrics.jsonl (it trained, or resumed training)."""


def prepare(reference: Path, work: Path, stage: str) -> Path:
    """A copy of the reference run without ``stage`` and the stages after it."""
    recipe = write_recipe(work)
    run_dir = work / "runs" / NAME
    shutil.copytree(reference / "runs" / NAME, run_dir)
    names = list(STAGES)
    later = names[names.index(stage) :]
    for name in later:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k not in later}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(run_dir / "report", ignore_errors=True)
    return recipe


def kill_and_rerun(reference: Path, work: Path, kind: str, moment: str) -> Outcome:
    stage = KIND_STAGE[kind]
    recipe = prepare(reference, work, stage)
    killed = run(recipe, stage, MOMENTS[moment])
    folder = model_folder(work / "runs" / NAME, stage)
    step = checkpoint_step(folder) if folder.is_dir() else None
    log = folder / "metrics.jsonl"
    before = log.stat().st_mtime_ns if log.is_file() else None
    again = run(recipe, stage)
    match = RESUMED.search(again.stdout + again.stderr)
    return Outcome(
        killed=killed.returncode == -signal.SIGKILL,
        checkpoint_step=step,
        resumed_from=int(match.group(1)) if match else None,
        rerun_code=again.returncode,
        rerun_stderr=again.stderr[-2000:],
        differences=compare(model_folder(reference / "runs" / NAME, stage), folder),
        leftovers=sorted(p.name for p in folder.iterdir() if "checkpoint" in p.name)
        if folder.is_dir()
        else [],
        log_rewritten=before is None or log.stat().st_mtime_ns != before,
    )


def compare(expected: Path, actual: Path) -> list[str]:
    """What differs between two finished stage folders: loss curve and weights, exactly."""
    if not (actual / "metrics.json").is_file():
        return ["no metrics.json: the stage did not finish"]
    diffs = []
    want, got = curve(expected), curve(actual)
    if want != got:
        steps = sorted(s for s in set(want) | set(got) if want.get(s) != got.get(s))
        diffs.append(f"loss curve differs at steps {steps[:5]}")
    a, b = weights(expected), weights(actual)
    if a.keys() != b.keys():
        diffs.append("different weight names")
    diffs += [f"weights differ: {k}" for k in a if k in b and not torch.equal(a[k], b[k])]
    return diffs


def assert_recovered(outcome: Outcome, kind: str, moment: str) -> None:
    where = f"{kind} / {moment}"
    assert outcome.killed, f"{where}: the fault point was never reached"
    assert outcome.rerun_code == 0, f"{where}: rerun failed\n{outcome.rerun_stderr}"
    assert not outcome.differences, f"{where}: {outcome.differences}"
    assert not outcome.leftovers, f"{where}: checkpoints left behind: {outcome.leftovers}"
    if outcome.checkpoint_step is not None and outcome.resumed_from is None:
        # A checkpoint existed: either the stage was already complete (skipped), or it resumed.
        assert not outcome.log_rewritten, (
            f"{where}: a checkpoint at step {outcome.checkpoint_step} existed but the rerun"
            " trained without resuming from it"
        )
    if outcome.resumed_from is not None:
        assert outcome.resumed_from == outcome.checkpoint_step, where
