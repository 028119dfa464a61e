"""keep_snapshots on a tiny seeded pretrain run, a finetune stage scoring the snapshots, resume
after a kill mid-snapshot, and the report's monitoring section on the real run folder."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from distilnlu import rundir
from distilnlu.config import load_recipe
from distilnlu.evaluation.report import report_summary, write_report
from distilnlu.pipeline import run_recipe
from distilnlu.stages import common
from tests.conftest import TINY_RECIPE

STEPS = [2, 4, 6, 8]  # keep_snapshots: 4 of max_steps: 8
SCORE_STEPS = 15
# Measured held-out domain_dev perplexity of each snapshot (seeded; step 8 is the final model,
# the value tests/stages/test_finetune.py pins for teacher_stage1 without snapshots: keeping
# them does not change what is trained).
PERPLEXITY = {
    2: 282.67826523671596,
    4: 283.09731808731993,
    6: 282.2427218357399,
    8: 281.76217974263824,
}


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-5, abs=1e-6)


def snapshot_recipe(tmp: Path, score: bool = True) -> Path:
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(tmp / "runs")
    del raw["stages"]["teacher_stage2"]
    raw["stages"]["teacher_stage1"]["keep_snapshots"] = len(STEPS)
    if score:
        raw["data"]["labeled"] = {
            "nlu_train": {"format": "synthetic", "num_examples": 100, "seed": 1},
            "nlu_dev": {"format": "synthetic", "num_examples": 40, "seed": 2},
        }
        raw["stages"]["finetune"] = {
            "kind": "finetune",
            "models": ["teacher_stage1"],
            "train": "nlu_train",
            "dev": "nlu_dev",
            "lm_corpus": "domain_dev",
            "lm_max_texts": 20,
            "max_length": 32,
            "latency_texts": 0,
            "training": {"max_steps": 10, "batch_size": 8, "lr": 1e-2, "eval_every": 5},
            "snapshots": {"stages": ["teacher_stage1"], "max_steps": SCORE_STEPS},
        }
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    path = snapshot_recipe(tmp_path_factory.mktemp("snapshots"))
    recipe = load_recipe(path)
    return path, recipe, run_recipe(recipe, log=lambda _: None)


def snapshot_dir(recipe, step: int) -> Path:
    return recipe.run_dir / "teacher_stage1" / rundir.SNAPSHOTS / rundir.snapshot_name(step)


def test_snapshots_are_kept_at_evenly_spaced_steps_with_their_held_out_scores(scored):
    _, recipe, results = scored
    stage_dir = recipe.run_dir / "teacher_stage1"
    names = sorted(p.name for p in (stage_dir / rundir.SNAPSHOTS).iterdir())
    assert names == ["step-000002", "step-000004", "step-000006", "step-000008"]
    evals = {
        r["step"]: r["eval"]
        for r in map(json.loads, (stage_dir / rundir.METRICS_LOG).read_text().splitlines())
        if "eval" in r
    }
    for step in STEPS:
        folder = snapshot_dir(recipe, step)
        for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.json"):
            assert (folder / name).is_file(), (step, name)
        own = json.loads((folder / "metrics.json").read_text())
        assert own["stage"] == "teacher_stage1" and own["step"] == step
        assert own["tokens"] > 0 and own["eval"]["domain_dev"]["mask_fill_n"] == 20
        assert own["eval"]["domain_dev"]["perplexity"] == approx(PERPLEXITY[step]), step
        if step in evals:  # an evaluation step: the loop's own evaluation, not a second one
            assert own["eval"] == evals[step]
    assert sorted(evals) == [4, 8]  # snapshots at 2 and 6 add no evaluation rows
    metrics = results["teacher_stage1"]
    assert [s["step"] for s in metrics["snapshots"]] == STEPS
    assert metrics["snapshots"][-1]["eval"] == metrics["eval"]  # the last is the final model
    final = load_file(str(stage_dir / "model.safetensors"))
    last = load_file(str(snapshot_dir(recipe, 8) / "model.safetensors"))
    first = load_file(str(snapshot_dir(recipe, 2) / "model.safetensors"))
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert not all(torch.equal(final[k], first[k]) for k in final)


def test_finetune_scores_every_snapshot_and_keeps_no_weights(scored):
    _, recipe, results = scored
    scores = results["finetune"]["snapshots"]["teacher_stage1"]
    assert [s["step"] for s in scores] == STEPS
    for s in scores:
        assert s["stage"] == "teacher_stage1" and s["metric"] == "exact_match"
        assert s["steps"] == SCORE_STEPS and s["dev"]["n"] == 40
        assert 0.0 <= s["dev"]["exact_match"] <= s["dev"]["intent_accuracy"] <= 1.0
        assert s["lm"]["domain_dev"]["perplexity"] == approx(PERPLEXITY[s["step"]])
        folder = recipe.run_dir / "finetune" / rundir.SNAPSHOTS / "teacher_stage1"
        files = sorted(p.name for p in (folder / rundir.snapshot_name(s["step"])).iterdir())
        assert files == ["metrics.json", "metrics.jsonl"]  # no weights, no checkpoint
    # The snapshots differ, so do their fine-tuned heads' answers: not one number copied four times.
    assert len({json.dumps(s["dev"], sort_keys=True) for s in scores}) > 1


def test_a_rerun_recomputes_no_finished_snapshot_score(scored):
    path, recipe, results = scored
    ft_dir = recipe.run_dir / "finetune"
    score_dirs = sorted((ft_dir / rundir.SNAPSHOTS / "teacher_stage1").iterdir())
    stamps = {d.name: (d / "metrics.json").stat().st_mtime_ns for d in score_dirs}
    kept = {s: (snapshot_dir(recipe, s) / "model.safetensors").stat().st_mtime_ns for s in STEPS}
    # Lose the stage summary and one snapshot's score: only that one is fine-tuned again.
    (ft_dir / "metrics.json").unlink()
    shutil.rmtree(score_dirs[1])
    again = run_recipe(load_recipe(path), log=lambda _: None)["finetune"]["snapshots"]

    def untimed(scores):
        return [{k: v for k, v in s.items() if k != "seconds"} for s in scores["teacher_stage1"]]

    assert untimed(again) == untimed(results["finetune"]["snapshots"])  # redone: same score
    for d in score_dirs:
        if d != score_dirs[1]:
            assert (d / "metrics.json").stat().st_mtime_ns == stamps[d.name]
    assert all(
        (snapshot_dir(recipe, s) / "model.safetensors").stat().st_mtime_ns == kept[s] for s in STEPS
    )


def test_the_report_plots_the_snapshots_with_rho(scored):
    _, recipe, _ = scored
    index = write_report(recipe.run_dir)
    text = (index.parent / "report.md").read_text()
    section = text[text.index("### Pretraining metrics vs downstream accuracy across snapshots") :]
    for step in STEPS:
        assert f"\n| {step} | " in section
    assert "| Perplexity on domain_dev |" in section and "Spearman ρ with dev EM" in section
    assert (index.parent / "snapshots_finetune_teacher_stage1.png").is_file()
    assert "Snapshots of teacher_stage1 (4, scored by finetune)" in report_summary(recipe.run_dir)


def test_resume_after_a_kill_mid_snapshot_keeps_exactly_each_snapshot_once(
    tmp_path, monkeypatch, capsys
):
    """A kill while the step-6 snapshot is half written (after the step-4 checkpoint): the
    rerun resumes at step 4, ignores the half folder, writes step 6 once and keeps 2 and 4."""

    class Killed(Exception):
        pass

    hits = []

    def fault(name: str) -> None:
        if name != "snapshot_staged":
            return
        hits.append(name)
        if len(hits) == 3:  # the step-6 snapshot, staged: leave half of it, as SIGKILL would
            staged = next((tmp_path / "runs/tiny/teacher_stage1/snapshots").glob("*.tmp"))
            shutil.copytree(staged, tmp_path / "half")
            (tmp_path / "half" / "metrics.json").unlink()
            raise Killed

    path = snapshot_recipe(tmp_path, score=False)
    monkeypatch.setattr(common, "fault_point", fault)
    with pytest.raises(Killed):
        run_recipe(load_recipe(path), log=lambda _: None)
    stage_dir = tmp_path / "runs/tiny/teacher_stage1"
    half = stage_dir / rundir.SNAPSHOTS / "step-000006.tmp"
    shutil.move(tmp_path / "half", half)
    assert [s for s, _ in rundir.snapshot_folders(stage_dir)] == [2, 4]  # the half is not read
    before = {
        s: (f / "model.safetensors").stat().st_mtime_ns
        for s, f in rundir.snapshot_folders(stage_dir)
    }

    monkeypatch.undo()
    metrics = run_recipe(load_recipe(path), log=lambda _: None)["teacher_stage1"]
    found = rundir.snapshot_folders(stage_dir)
    assert [s for s, _ in found] == STEPS and [s["step"] for s in metrics["snapshots"]] == STEPS
    assert sorted(p.name for p in (stage_dir / rundir.SNAPSHOTS).iterdir()) == [
        rundir.snapshot_name(s) for s in STEPS
    ]  # the half folder is gone
    for step, folder in found:
        own = json.loads((folder / "metrics.json").read_text())
        assert own["eval"]["domain_dev"]["perplexity"] == approx(PERPLEXITY[step])
        if step in before:  # kept before the kill: left as it was
            assert (folder / "model.safetensors").stat().st_mtime_ns == before[step]
    assert "resuming from the checkpoint at step 4 of 8" in capsys.readouterr().out


def test_a_distill_stage_keeps_snapshots_too(tmp_path):
    path = snapshot_recipe(tmp_path, score=False)
    raw = yaml.safe_load(path.read_text())
    raw["stages"]["student"] = {
        "kind": "distill",
        "model": "tiny",
        "teachers": [{"model": "teacher_stage1"}],
        "data": {"domain": 1.0},
        "training": {**raw["stages"]["teacher_stage1"]["training"], "max_steps": 4},
        "eval": {"corpora": ["domain_dev"], "max_texts": 20},
        "keep_snapshots": 2,
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    metrics = run_recipe(load_recipe(path), log=lambda _: None)["student"]
    assert [s["step"] for s in metrics["snapshots"]] == [2, 4]
    assert [s for s, _ in rundir.snapshot_folders(tmp_path / "runs/tiny/student")] == [2, 4]
    assert metrics["snapshots"][-1]["eval"] == metrics["eval"]


@pytest.mark.slow  # two processes of the CLI: ~16 s on 2 cores
def test_sigkill_while_a_snapshot_is_staged_then_rerun_keeps_each_snapshot_once(tmp_path):
    """The real thing: the process SIGKILLs itself with the step-6 snapshot staged under its
    temporary name (DISTILNLU_FAULT); the rerun must finish with the four snapshots."""
    path = snapshot_recipe(tmp_path, score=False)
    command = [sys.executable, "-m", "distilnlu", "run", str(path)]
    env = {**os.environ, "DISTILNLU_FAULT": "snapshot_staged@3"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    stage_dir = tmp_path / "runs/tiny/teacher_stage1"
    assert (stage_dir / rundir.SNAPSHOTS / "step-000006.tmp" / "metrics.json").is_file()
    assert [s for s, _ in rundir.snapshot_folders(stage_dir)] == [2, 4]
    env.pop("DISTILNLU_FAULT")
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert sorted(p.name for p in (stage_dir / rundir.SNAPSHOTS).iterdir()) == [
        rundir.snapshot_name(s) for s in STEPS
    ]
    metrics = json.loads((stage_dir / "metrics.json").read_text())
    assert [s["step"] for s in metrics["snapshots"]] == STEPS
    for step, folder in rundir.snapshot_folders(stage_dir):
        own = json.loads((folder / "metrics.json").read_text())
        assert own["eval"]["domain_dev"]["perplexity"] == approx(PERPLEXITY[step])
