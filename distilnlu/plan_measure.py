"""``distilnlu plan RECIPE --measure``: each stage's time on this machine, from a short run.

The whole recipe runs once with every stage cut to a few steps (``--steps``, evaluations at the
middle and the end), in a scratch folder that is removed afterwards. From each training log
(``metrics.jsonl``: ``time`` on every step row) come the cost of a step (the median gap between
two steps with no evaluation between them) and of an evaluation (the gap across one, less a
step); what the stage spent besides (set-up, saving, test scoring, latency timing, scoring
snapshots) is its recorded seconds less those. The full stage is then predicted as

    fixed + steps × s/step + evaluations × s/evaluation

with the recipe's own step budget and ``eval_every``. A fine-tune stage sums this over its
models, each at its full budget: early stopping can only make it shorter. A task_distill
stage's budget is its epochs over the pool the short run built.
"""

from __future__ import annotations

import itertools
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distilnlu import rundir
from distilnlu.config import DistillStage, FinetuneStage, PretrainStage, Recipe, TaskDistillStage
from distilnlu.config_base import TrainingConfig
from distilnlu.errors import DistilNLUError
from distilnlu.stages.finetune import model_key

MIN_STEPS = 6


def short_overrides(recipe: Recipe, steps: int, out: Path) -> list[str]:
    """Overrides that cut every training stage to ``steps`` (two evaluations)."""
    args = [f"output_dir={out}", "name=plan"]
    for name, stage in recipe.stages.items():
        if not hasattr(stage, "training"):
            continue
        key = f"stages.{name}.training"
        args += [f"{key}.max_steps={steps}", f"{key}.eval_every={steps // 2}"]
        args += [f"{key}.log_every=1", f"{key}.checkpoint_every={10**9}"]
        keep = getattr(stage, "keep_snapshots", 0)
        if keep > steps:
            args.append(f"stages.{name}.keep_snapshots={steps}")
    return args


def costs(rows: Sequence[dict[str, Any]]) -> tuple[float, float, int, int]:
    """(s/step, s/evaluation, steps, evaluations) of one training log."""
    times = {r["step"]: r["time"] for r in rows if "time" in r and "loss" in r}
    evals = {r["step"] for r in rows if "eval" in r}
    steps = sorted(times)
    plain = [times[b] - times[a] for a, b in itertools.pairwise(steps) if a not in evals]
    step_s = statistics.median(plain) if plain else math.nan
    across = [times[s + 1] - times[s] - step_s for s in evals if s + 1 in times]
    eval_s = statistics.median(across) if across else 0.0
    # The last evaluation follows the last step: its cost is in the stage's seconds, not a gap.
    return step_s, max(eval_s, 0.0), len(steps), len(evals)


def evaluations(steps: int, every: int) -> int:
    """How many evaluations the loop runs: every ``every`` steps and at the end."""
    return steps // every + (1 if steps % every else 0)


def predict(fixed: float, step_s: float, eval_s: float, steps: int, every: int) -> float:
    return fixed + steps * step_s + evaluations(steps, every) * eval_s


def model_time(log: Path, seconds_short: float, cfg: TrainingConfig, budget: int) -> float:
    """One model's (or LM stage's) predicted seconds from its short run."""
    step_s, eval_s, steps, evals = costs(rundir.read_jsonl(log))
    fixed = seconds_short - steps * step_s - evals * eval_s
    return predict(fixed, step_s, eval_s, budget, cfg.eval_every)


def finetune_time(
    recipe: Recipe, name: str, stage: FinetuneStage, short: Path, seconds: float
) -> float:
    """Sum over the stage's models at their full budgets, plus what the stage did besides."""
    metrics = rundir.read_json(short / name / rundir.METRICS) or {}
    n = int(metrics.get("train_examples") or 0)
    budget = stage.training.steps(math.ceil(n / stage.training.batch_size) if n else None)
    total, trained = seconds, 0.0
    for ref in stage.models:
        for mode in stage.encoder:
            folder = short / name / model_key(recipe, ref, mode)
            step_s, eval_s, steps, evals = costs(rundir.read_jsonl(folder / rundir.METRICS_LOG))
            trained += steps * step_s + evals * eval_s
            total += budget * step_s + evaluations(budget, stage.training.eval_every) * eval_s
    return total - trained


def task_distill_time(name: str, stage: TaskDistillStage, short: Path, seconds: float) -> float:
    metrics = rundir.read_json(short / name / rundir.METRICS) or {}
    pool = sum(int(v) for v in (metrics.get("pool") or {}).values())
    budget = stage.training.steps(math.ceil(pool / stage.training.batch_size) if pool else None)
    logs = list((short / name).glob(f"*/{rundir.METRICS_LOG}"))
    if not logs:
        return seconds
    return model_time(logs[0], seconds, stage.training, budget)


def measure(
    recipe_path: Path, overrides: list[str], recipe: Recipe, steps: int
) -> dict[str, float]:
    """Predicted seconds of every stage of the recipe on this machine."""
    if steps < MIN_STEPS:
        raise DistilNLUError(f"--steps {steps}: give {MIN_STEPS} or more")
    with tempfile.TemporaryDirectory(prefix="distilnlu-plan-") as tmp:
        out = Path(tmp)
        cmd = [sys.executable, "-m", "distilnlu", "run", str(recipe_path), *overrides]
        cmd += short_overrides(recipe, steps, out)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise DistilNLUError(f"the short run for --measure failed: {tail[0]}")
        short = out / "plan"
        manifest = rundir.read_json(short / rundir.MANIFEST) or {}
        seconds = {
            k: float(v.get("seconds", 0.0)) for k, v in (manifest.get("stages") or {}).items()
        }
        predicted = {}
        for name, stage in recipe.stages.items():
            s = seconds.get(name, math.nan)
            if isinstance(stage, PretrainStage | DistillStage):
                log = short / name / rundir.METRICS_LOG
                predicted[name] = model_time(log, s, stage.training, stage.training.max_steps or 0)
            elif isinstance(stage, FinetuneStage):
                predicted[name] = finetune_time(recipe, name, stage, short, s)
            elif isinstance(stage, TaskDistillStage):
                predicted[name] = task_distill_time(name, stage, short, s)
            else:
                predicted[name] = s  # the tokenizer: the same work at any step budget
        return predicted
