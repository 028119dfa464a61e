"""Run a recipe's stages in order, skipping finished ones and redoing changed ones.

A stage's folder holds the hash of its configuration (upstream hashes included) in
``.stage_hash``, written before it starts, and ``metrics.json``, written last. On the next ``run``:
same hash and ``metrics.json`` present -> skip; different hash -> the stage's folder is cleared and
it runs again, and so does everything downstream (their hashes include it); an interrupted stage
with a matching checkpoint resumes from it. ``runs/<name>/manifest.json`` records each finished
stage (hash, kind, time taken) for people and the report; the stage folders are the truth, so a
lost or damaged manifest is rebuilt from them. References to other stages, folders and hub models
are checked before anything is deleted or computed (:mod:`distilnlu.references`).
"""

from __future__ import annotations

import json
import logging
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
    dump_recipe,
)
from distilnlu.distributed import barrier, is_main
from distilnlu.errors import ConfigError
from distilnlu.faults import fault_point
from distilnlu.references import check_references
from distilnlu.rundir import (
    HASH_FILE,
    MANIFEST,
    METRICS,
    RECIPE,
    Manifest,
    ManifestEntry,
    atomic_write,
    read_json,
    write_json,
)
from distilnlu.stages import distill, finetune, pretrain, task_distill, tokenizer
from distilnlu.stages.common import Runner
from distilnlu.threads import stage_threads
from distilnlu.training.checkpoint import remove_checkpoints

logger = logging.getLogger(__name__)

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
    """The run's manifest; a damaged one is reported and replaced by an empty one (the stage
    folders are the truth: :func:`run_recipe` records the finished stages it finds again)."""
    path = run_dir / MANIFEST
    if not path.is_file():
        return {"stages": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stages = data["stages"]
        if not isinstance(stages, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("hash"), str) for e in stages.values()
        ):
            raise ValueError("'stages' is not a mapping of stage entries")
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning(
            "warning: %s is unreadable (%s: %s); rebuilding it from the stage folders",
            path,
            type(err).__name__,
            err,
        )
        return {"stages": {}}
    manifest: Manifest = {"stages": stages}
    return manifest


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    fault_point("manifest_write")
    write_json(run_dir / MANIFEST, manifest)


def run_stage(recipe: Recipe, name: str, stage_hash: str) -> dict[str, Any]:
    """Run stage ``name`` into its folder with the runner of its kind."""
    stage = recipe.stages[name]
    runner = RUNNERS.get(type(stage))
    if runner is None:
        raise ConfigError(f"stage '{name}': no runner for stage kind '{stage.kind}'")
    training = getattr(stage, "training", None)  # the tokenizer stage has no training section
    with stage_threads(training.threads if training is not None else None):
        metrics: dict[str, Any] = runner(recipe, name, recipe.run_dir / name, stage_hash)
    return metrics


def stages_until(recipe: Recipe, until: str | None) -> list[str]:
    names = list(recipe.stages)
    if until is None:
        return names
    if until not in recipe.stages:
        raise ConfigError(f"--until {until}: no such stage (stages: {', '.join(names)})")
    return names[: names.index(until) + 1]


def folder_hash(out_dir: Path) -> str | None:
    """The configuration hash a stage folder belongs to (None: no folder or no marker)."""
    try:
        return (out_dir / HASH_FILE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def finished_metrics(recipe: Recipe, name: str) -> dict[str, Any] | None:
    """The final metrics of stage ``name`` when its folder belongs to its current configuration
    and holds them; None otherwise (a damaged metrics.json counts as not done: the stage runs
    again)."""
    out = recipe.run_dir / name
    if folder_hash(out) != recipe.stage_hash(name):
        return None
    return read_json(out / METRICS)


def is_done(recipe: Recipe, name: str) -> bool:
    return finished_metrics(recipe, name) is not None


def manifest_entry(recipe: Recipe, name: str, seconds: float) -> ManifestEntry:
    return {
        "hash": recipe.stage_hash(name),
        "kind": recipe.stages[name].kind,
        "output": str(recipe.run_dir / name),
        "seconds": seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def record_found(recipe: Recipe, name: str, manifest: Manifest) -> bool:
    """Record a finished stage the manifest misses (a kill before it was written, a rebuilt
    manifest), with the time from its hash marker to its metrics; drop what a kill left of its
    checkpoints. True when the manifest changed."""
    out = recipe.run_dir / name
    if is_main():
        remove_checkpoints(out)
    entry = manifest["stages"].get(name)
    if entry is not None and entry.get("hash") == recipe.stage_hash(name):
        return False
    seconds = (out / METRICS).stat().st_mtime - (out / HASH_FILE).stat().st_mtime
    manifest["stages"][name] = manifest_entry(recipe, name, round(max(seconds, 0.0), 1))
    return True


def prepare_stage_dir(out_dir: Path, stage_hash: str) -> None:
    """Clear a folder left by a different configuration; keep one we can resume from."""
    if is_main():
        if out_dir.exists() and folder_hash(out_dir) != stage_hash:
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / HASH_FILE, stage_hash + "\n")
    barrier()


def run_one(recipe: Recipe, name: str, manifest: Manifest, log: Log = print) -> dict[str, Any]:
    """Run stage ``name`` on its own (its upstream stages must be done) and record it in the
    manifest."""
    for up in recipe.upstream(name):
        if not is_done(recipe, up):
            raise ConfigError(f"stage '{name}' needs stage '{up}', which has not finished yet")
    check_references(recipe, [name])
    return _run_checked(recipe, name, manifest, log)


def _run_checked(recipe: Recipe, name: str, manifest: Manifest, log: Log) -> dict[str, Any]:
    """Run stage ``name``, whose upstream stages and references were checked."""
    stage_hash = recipe.stage_hash(name)
    out_dir = recipe.run_dir / name
    prepare_stage_dir(out_dir, stage_hash)
    fault_point("stage_start")
    start = time.perf_counter()
    metrics = run_stage(recipe, name, stage_hash)
    seconds = round(time.perf_counter() - start, 1)
    manifest["stages"][name] = manifest_entry(recipe, name, seconds)
    if is_main():
        write_manifest(recipe.run_dir, manifest)
    barrier()
    log(f"[{name}] done in {seconds:.1f}s -> {out_dir}")
    return metrics


def run_recipe(
    recipe: Recipe, until: str | None = None, log: Log = print
) -> dict[str, dict[str, Any]]:
    """Run (or skip) every stage up to ``until``; returns each stage's metrics."""
    names = stages_until(recipe, until)
    check_references(recipe, names)  # before any folder is cleared or any stage trained
    recipe.run_dir.mkdir(parents=True, exist_ok=True)
    if is_main():  # the report's settings (report:) come from the recipe last run
        atomic_write(recipe.run_dir / RECIPE, dump_recipe(recipe))
    manifest = read_manifest(recipe.run_dir)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        done = finished_metrics(recipe, name)
        if done is not None:
            log(f"[{name}] up to date, skipped")
            if record_found(recipe, name, manifest) and is_main():
                write_manifest(recipe.run_dir, manifest)
            results[name] = done
            continue
        if (recipe.run_dir / name / METRICS).is_file():
            log(f"[{name}] its metrics.json is damaged: running the stage again")
        if folder_hash(recipe.run_dir / name) not in (None, recipe.stage_hash(name)):
            log(f"[{name}] configuration changed: running it again")
        manifest["stages"].pop(name, None)
        log(f"[{name}] running ({recipe.stages[name].kind})")
        # Stages run in order, so its upstream stages are done; references were checked above.
        results[name] = _run_checked(recipe, name, manifest, log)
    return results
