"""Run a recipe's stages in order, skipping finished ones and redoing changed ones.

``runs/<name>/manifest.json`` records each finished stage with the hash of its configuration
(upstream hashes included). On the next ``run``: same hash and output present -> skip; different
hash -> the stage's folder is cleared and it runs again, and so does everything downstream (their
hashes include it); an interrupted stage with a matching checkpoint resumes from it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distilnlu.config import (
    DistillStage,
    FinetuneStage,
    PretrainStage,
    Recipe,
    TaskDistillStage,
    TokenizerStage,
)
from distilnlu.distributed import barrier, is_main
from distilnlu.errors import ConfigError
from distilnlu.rundir import HASH_FILE, MANIFEST, METRICS, Manifest, write_json
from distilnlu.stages import distill, finetune, pretrain, task_distill, tokenizer
from distilnlu.stages.common import Runner

RUNNERS: dict[type, Runner] = {
    TokenizerStage: tokenizer.run,
    PretrainStage: pretrain.run,
    DistillStage: distill.run,
    FinetuneStage: finetune.run,
    TaskDistillStage: task_distill.run,
}
"""The runner of each stage kind, by its config class."""

Log = Callable[[str], object]


def read_manifest(run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST
    if not path.is_file():
        return {"stages": {}}
    manifest: Manifest = json.loads(path.read_text())
    return manifest


def run_stage(recipe: Recipe, name: str, stage_hash: str) -> dict[str, Any]:
    """Run stage ``name`` into its folder with the runner of its kind."""
    stage = recipe.stages[name]
    runner = RUNNERS.get(type(stage))
    if runner is None:
        raise ConfigError(f"stage '{name}': no runner for stage kind '{stage.kind}'")
    metrics: dict[str, Any] = runner(recipe, name, recipe.run_dir / name, stage_hash)
    return metrics


def stages_until(recipe: Recipe, until: str | None) -> list[str]:
    names = list(recipe.stages)
    if until is None:
        return names
    if until not in recipe.stages:
        raise ConfigError(f"--until {until}: no such stage (stages: {', '.join(names)})")
    return names[: names.index(until) + 1]


def is_done(recipe: Recipe, name: str, manifest: Manifest) -> bool:
    entry = manifest["stages"].get(name)
    out = recipe.run_dir / name
    if entry is None:
        return False
    return entry["hash"] == recipe.stage_hash(name) and (out / METRICS).is_file()


def prepare_stage_dir(out_dir: Path, stage_hash: str) -> None:
    """Clear a folder left by a different configuration; keep one we can resume from."""
    marker = out_dir / HASH_FILE
    if is_main():
        if out_dir.exists() and (not marker.is_file() or marker.read_text().strip() != stage_hash):
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(stage_hash + "\n")
    barrier()


def run_one(recipe: Recipe, name: str, manifest: Manifest, log: Log = print) -> dict[str, Any]:
    """Run stage ``name`` (its upstream stages must be done) and record it in the manifest."""
    for up in recipe.upstream(name):
        if not is_done(recipe, up, manifest):
            raise ConfigError(f"stage '{name}' needs stage '{up}', which has not finished yet")
    stage_hash = recipe.stage_hash(name)
    out_dir = recipe.run_dir / name
    prepare_stage_dir(out_dir, stage_hash)
    start = time.perf_counter()
    metrics = run_stage(recipe, name, stage_hash)
    seconds = round(time.perf_counter() - start, 1)
    manifest["stages"][name] = {
        "hash": stage_hash,
        "kind": recipe.stages[name].kind,
        "output": str(out_dir),
        "seconds": seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if is_main():
        write_json(recipe.run_dir / MANIFEST, manifest)
    barrier()
    log(f"[{name}] done in {seconds:.1f}s -> {out_dir}")
    return metrics


def run_recipe(
    recipe: Recipe, until: str | None = None, log: Log = print
) -> dict[str, dict[str, Any]]:
    """Run (or skip) every stage up to ``until``; returns each stage's metrics."""
    recipe.run_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(recipe.run_dir)
    results: dict[str, dict[str, Any]] = {}
    for name in stages_until(recipe, until):
        if is_done(recipe, name, manifest):
            log(f"[{name}] up to date, skipped")
            results[name] = json.loads((recipe.run_dir / name / METRICS).read_text())
            continue
        if name in manifest["stages"]:
            log(f"[{name}] configuration changed: running it again")
            del manifest["stages"][name]
        log(f"[{name}] running ({recipe.stages[name].kind})")
        results[name] = run_one(recipe, name, manifest, log)
    return results
