"""Seconds per training step of a recipe's stages, as the stages run them (docs/sizing.md).

Each measured stage runs through the command line (``distilnlu --threads N pretrain|finetune``)
for ``--steps`` optimizer steps, with an evaluation half-way and at the end, into a scratch
output folder; its ``metrics.jsonl`` gives the wall time of every step (the ``time`` column: the
seconds since training started, logged after each step). Per stage and thread count:

``s_per_step``
    the median step time, steps 2.. (the first warms up) without the one after the mid-way
    evaluation;
``min_s_per_step``
    the fastest of those steps: on a machine shared with other work, nearer the idle cost;
``eval_s``
    that step's time less the median: one held-out evaluation of the stage (its ``eval`` /
    ``dev`` set as the recipe sizes it);
``stage_s``
    the stage's seconds in the manifest (process start to metrics written: data set-up, the
    steps, the evaluations, the final scoring and saving), so that the fixed cost is
    ``stage_s - steps * s_per_step - evals * eval_s``.

Stages are measured in recipe order, each thread count in turn; a measured stage's last run
is what the next ones read (the stage hash ignores ``training.threads``, so its folder is
cleared before each run). ``--set`` overrides reach every run (e.g. a distillation stage's
``teachers``, so that it needs only the stages measured). ``--synthetic-data`` replaces the
recipe's corpora and labeled sets with the demo recipe's built-in synthetic ones, under the
recipe's names, for a recipe whose data is not on this machine: the models, batches and sequence
lengths are the recipe's; the packed rows are full either way. Run from the repository root::

    .venv/bin/python benchmarks/step_cost.py configs/demo.yaml --stages teacher_stage1 \\
        intermediate --set 'stages.intermediate.teachers=[{model: teacher_stage1}]'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distilnlu.config import load_recipe
from distilnlu.deploy.latency import cpu_name

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"


def step_times(rows: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Wall seconds of each optimizer step, from the ``time`` column of training rows."""
    times = {r["step"]: r["time"] for r in rows if "time" in r and "loss" in r}
    return {s: t - times.get(s - 1, 0.0) for s, t in sorted(times.items())}


def summarise(rows: Sequence[dict[str, Any]], eval_step: int) -> dict[str, float]:
    """``s_per_step`` (median of steps 2.. without the one after ``eval_step``) and ``eval_s``."""
    deltas = step_times(rows)
    plain = [t for s, t in deltas.items() if s > 1 and s != eval_step + 1]
    median = statistics.median(plain)
    after = deltas.get(eval_step + 1)
    return {
        "s_per_step": round(median, 4),
        "min_s_per_step": round(min(plain), 4),  # closest to the cost on an idle machine
        "eval_s": round(after - median, 3) if after is not None else float("nan"),
    }


def synthetic_data(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the demo recipe's synthetic corpora and labeled sets, under its own names
    (corpora by name, labeled sets in train / dev / test order)."""
    demo = yaml.safe_load(DEMO.read_text())["data"]
    data = raw["data"]
    fill = list(demo["labeled"].values())
    data["corpora"] = {name: demo["corpora"][name] for name in data["corpora"]}
    data["labeled"] = {name: fill[min(i, 2)] for i, name in enumerate(data["labeled"])}
    data.pop("root", None)
    return raw


def training_log(folder: Path) -> Path:
    """The stage's own metrics.jsonl (a finetune stage's: its model folder's), not the ones of
    kept snapshots that a stage scores (``snapshots/``)."""
    logs = [p for p in folder.rglob("metrics.jsonl") if "snapshots" not in p.parts]
    return min(logs, key=lambda p: len(p.parts))


def budget(stages: dict[str, Any], names: Sequence[str], steps: int) -> list[str]:
    """The overrides of the measured stages: every run gets all of them, since a stage's hash
    holds its upstream stages' settings (a stage measured earlier must still count as done).
    Kept snapshots (saved and scored between steps) and their downstream scoring are turned
    off: they would land inside the timed steps."""
    sets = []
    for name in names:
        key = f"stages.{name}.training"
        sets += [f"{key}.max_steps={steps}", f"{key}.log_every=1"]
        sets += [f"{key}.eval_every={steps // 2}", f"{key}.checkpoint_every=100000"]
        if stages[name].get("keep_snapshots"):
            sets.append(f"stages.{name}.keep_snapshots=0")
        if stages[name].get("snapshots"):
            sets.append(f"stages.{name}.snapshots=null")
    return sets


def run_stage(recipe: Path, kind: str, name: str, threads: int, sets: list[str]) -> None:
    command = {"tokenizer": "tokenizer", "finetune": "finetune"}.get(kind, "pretrain")
    argv = [sys.executable, "-m", "distilnlu", "--threads", str(threads), command, str(recipe)]
    argv += [*sets, "--stage", name]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)}\n{proc.stderr[-3000:]}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    raw = yaml.safe_load(args.recipe.read_text())
    if args.synthetic_data:
        raw = synthetic_data(raw)
    work = Path(tempfile.mkdtemp(prefix="step_cost_"))
    raw["output_dir"] = str(work / "runs")
    recipe = work / args.recipe.name
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    run_dir = work / "runs" / raw["name"]
    rows: list[dict[str, Any]] = []
    try:
        sets = [*budget(raw["stages"], args.stages, args.steps), *args.set]
        run_stage(recipe, "tokenizer", "tokenizer", args.threads[0], sets)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        vocab = json.loads((run_dir / "tokenizer" / "metrics.json").read_text())["vocab_size"]
        print(f"tokenizer: {manifest['stages']['tokenizer']['seconds']} s, vocabulary {vocab}")
        for name in args.stages:
            stage = raw["stages"][name]
            for threads in args.threads:
                shutil.rmtree(run_dir / name, ignore_errors=True)
                run_stage(recipe, stage["kind"], name, threads, sets)
                log = training_log(run_dir / name)
                lines = log.read_text().splitlines()
                row = summarise([json.loads(line) for line in lines], args.steps // 2)
                manifest = json.loads((run_dir / "manifest.json").read_text())
                effective = load_recipe(recipe, sets).stages[name]  # with the overrides
                training = effective.training
                length = getattr(effective, "max_length", training.seq_len)  # finetune: padded
                row |= {
                    "stage": name,
                    "kind": stage["kind"],
                    # finetune: the encoder that was fine-tuned (its model folder's name)
                    "model": stage.get("model", stage.get("init", log.parent.name)),
                    "batch_size": training.batch_size,
                    "seq_len": length,
                    "threads": threads,
                    "stage_s": manifest["stages"][name]["seconds"],
                    "load_1min": round(os.getloadavg()[0], 2),  # other work on the machine
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "recipe": str(args.recipe),
        "synthetic_data": args.synthetic_data,
        "steps": args.steps,
        "tokenizer_vocab": vocab,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
        "rows": rows,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("recipe", type=Path, help="recipe YAML, e.g. configs/demo.yaml")
    parser.add_argument("--stages", nargs="+", required=True, help="stages to time, in order")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run (>= 6)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--synthetic-data", action="store_true", help="the demo's data instead")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.steps < 6 or min(args.threads) < 1:
        parser.error("--steps must be >= 6 and every --threads >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = measure(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
