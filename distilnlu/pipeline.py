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
from pathlib import Path
from typing import Any

from distilnlu.config import DistillStage, PretrainStage, Recipe
from distilnlu.distributed import barrier, is_main
from distilnlu.errors import ConfigError
from distilnlu.stages import METRICS, run_stage, write_json

MANIFEST = "manifest.json"
HASH_FILE = ".stage_hash"


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not path.is_file():
        return {"stages": {}}
    return json.loads(path.read_text())


def stages_until(recipe: Recipe, until: str | None) -> list[str]:
    names = list(recipe.stages)
    if until is None:
        return names
    if until not in recipe.stages:
        raise ConfigError(f"--until {until}: no such stage (stages: {', '.join(names)})")
    return names[: names.index(until) + 1]


def is_done(recipe: Recipe, name: str, manifest: dict[str, Any]) -> bool:
    entry = manifest["stages"].get(name)
    out = recipe.run_dir / name
    return bool(entry) and entry["hash"] == recipe.stage_hash(name) and (out / METRICS).is_file()


def prepare_stage_dir(out_dir: Path, stage_hash: str) -> None:
    """Clear a folder left by a different configuration; keep one we can resume from."""
    marker = out_dir / HASH_FILE
    if is_main():
        if out_dir.exists() and (not marker.is_file() or marker.read_text().strip() != stage_hash):
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(stage_hash + "\n")
    barrier()


def run_one(recipe: Recipe, name: str, manifest: dict[str, Any], log=print) -> dict[str, Any]:
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


def run_recipe(recipe: Recipe, until: str | None = None, log=print) -> dict[str, dict[str, Any]]:
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


def lm_summary(recipe: Recipe, results: dict[str, dict[str, Any]]) -> str:
    """Held-out perplexity and mask-filling accuracy of every trained model; teacher switches."""
    rows = [("stage", "held-out corpus", "perplexity", "mask-fill acc", "n")]
    for name, metrics in results.items():
        if not isinstance(recipe.stages[name], PretrainStage | DistillStage):
            continue
        for corpus, m in metrics.get("eval", {}).items():
            rows.append(
                (
                    name,
                    corpus,
                    f"{m['perplexity']:.2f}",
                    f"{m['mask_fill_accuracy']:.3f}",
                    str(m["mask_fill_n"]),
                )
            )
    if len(rows) == 1:
        return ""
    switches = [
        f"{name}: teacher {s['from_teacher']} -> {s['to_teacher']} after step {s['step']}"
        f" ({s['reason']})"
        for name, metrics in results.items()
        for s in metrics.get("teacher_switches", [])
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + switches)
