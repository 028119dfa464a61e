"""The task_distill stage end to end on tiny models: output folder, metrics, budget, CLI errors."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from distilnlu.config import load_recipe
from distilnlu.data.labeled import load_labeled
from distilnlu.errors import ModelError
from distilnlu.evaluation.inference import evaluate_nlu
from distilnlu.modeling.classifier import load_nlu_model
from distilnlu.pipeline import run_recipe
from distilnlu.tokenization import load_tokenizer
from tests.conftest import TINY_RECIPE

LABELED = {
    "nlu_train": {"format": "synthetic", "num_examples": 300, "seed": 1},
    "nlu_dev": {"format": "synthetic", "num_examples": 60, "seed": 2},
    "nlu_test": {"format": "synthetic", "num_examples": 60, "seed": 3},
}
SETS = {"train": "nlu_train", "dev": "nlu_dev", "test": ["nlu_test"], "max_length": 32}
FINETUNE = {
    "kind": "finetune",
    "models": ["teacher_stage2"],
    **SETS,
    "patience": 50,
    "latency_texts": 5,
    "training": {"max_steps": 60, "batch_size": 16, "lr": 1e-2, "eval_every": 30},
}
EPOCHS, BATCH = 2, 16
TASK = {
    "kind": "task_distill",
    "teacher": "finetune/teacher_stage2",
    "student": "teacher_stage1",
    **SETS,
    "patience": 50,
    "latency_texts": 5,
    "unlabeled": ["domain"],
    "unlabeled_max_texts": 60,
    "augment": {"model": "teacher_stage2", "copies": 1, "max_texts": 40},
    "loss": {"temperature": 2.0, "soft_weight": 0.5},
    "training": {
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "lr": 1e-2,
        "eval_every": 10,
        "checkpoint_every": 10,
    },
}
# Labeled only, stopped early: min_delta 1 makes every evaluation after the first a non-gain.
TASK_STOP = {
    **TASK,
    "unlabeled": [],
    "augment": None,
    "loss": {"hidden_weight": 0.5},
    "patience": 1,
    "min_delta": 1.0,
    "slot_prior_metric": "exact_match",
    "training": {"max_steps": 500, "epochs": 10, "batch_size": BATCH, "eval_every": 5},
}

# Measured results of the `finished` run (seeded; the same over repeated runs).
STEPS = EPOCHS * math.ceil((300 + 60 + 40) / BATCH)  # the epoch budget over the pool: 50
PINNED = {
    "task": {
        "steps": STEPS,
        "best_step": 40,
        "exact_match": 4 / 60,
        "intent_accuracy": 13 / 60,
        "first_loss": 20.990520477294922,
    },
    "task_stop": {
        "steps": 10,
        "best_step": 10,
        "exact_match": 0 / 60,
        "intent_accuracy": 7 / 60,
        "first_loss": 37.7721061706543,
    },
}


def write_recipe(folder: Path, stages: dict) -> Path:
    raw = json.loads(json.dumps(TINY_RECIPE))
    raw["output_dir"] = str(folder / "runs")
    raw["data"]["labeled"] = json.loads(json.dumps(LABELED))
    raw["stages"] = stages
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def full_stages() -> dict:
    stages = json.loads(json.dumps(TINY_RECIPE["stages"]))
    stages.update(finetune=FINETUNE, task=TASK, task_stop=TASK_STOP)
    return stages


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The whole tiny pipeline, on one torch thread: the same numbers as on two (measured), and
    on a busy 2-core machine 10x faster (two threads per tiny matmul only fight for the cores)."""
    tmp = tmp_path_factory.mktemp("td")
    path = write_recipe(tmp, full_stages())
    recipe = load_recipe(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run_recipe(recipe, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    return path, recipe, results


def rows(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x]


def measured(recipe, results, name):
    m = results[name]["models"][name]
    first = next(r for r in rows(recipe.run_dir / name / "teacher_stage1") if "loss" in r)
    return {
        "steps": m["steps"],
        "best_step": m["best_step"],
        "exact_match": m["eval"]["nlu_test"]["exact_match"],
        "intent_accuracy": m["eval"]["nlu_test"]["intent_accuracy"],
        "first_loss": first["loss"],
    }


def test_output_is_a_fine_tuned_model_folder_with_the_teachers_labels(finished):
    _, recipe, _ = finished
    folder = recipe.run_dir / "task" / "teacher_stage1"
    for name in (
        "config.json",
        "model.safetensors",
        "heads.safetensors",
        "labels.json",
        "nlu_config.json",
        "tokenizer.json",
        "metrics.json",
        "metrics.jsonl",
        "predictions-nlu_dev.jsonl",
        "predictions-nlu_test.jsonl",
    ):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoint").exists() and not (folder / "best.safetensors").exists()
    student = load_nlu_model(folder)
    teacher = load_nlu_model(recipe.run_dir / "finetune" / "teacher_stage2")
    assert student.task.name == "intent_slot"
    assert student.labels.intents == teacher.labels.intents
    assert student.labels.slot_tags == teacher.labels.slot_tags
    config = json.loads((folder / "nlu_config.json").read_text())
    assert config["source"] == "teacher_stage1" and config["max_length"] == 32
    assert config["encoder"] == "full"
    assert (
        load_tokenizer(folder).get_vocab()
        == load_tokenizer(recipe.run_dir / "teacher_stage1").get_vocab()
    )
    # the student keeps its own (smaller-than-or-equal) encoder, not the teacher's weights
    student_file = (folder / "model.safetensors").read_bytes()
    teacher_file = (recipe.run_dir / "finetune/teacher_stage2/model.safetensors").read_bytes()
    assert student_file != teacher_file
    for set_name in ("nlu_dev", "nlu_test"):
        lines = (folder / f"predictions-{set_name}.jsonl").read_text().splitlines()
        assert len(lines) == 60


def test_stage_metrics_layout(finished):
    _, recipe, results = finished
    metrics = results["task"]
    on_disk = json.loads((recipe.run_dir / "task" / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert metrics["stage"] == "task" and metrics["task"] == "intent_slot"
    assert metrics["baseline"] is None and metrics["lm_corpus"] is None
    assert metrics["dev"] == "nlu_dev" and metrics["primary"] == "nlu_test"
    assert metrics["train_examples"] == 300
    teacher = results["finetune"]
    assert metrics["labels"] == teacher["labels"]
    assert metrics["joins"] == "finetune" and metrics["teacher"] == "finetune/teacher_stage2"
    assert metrics["pool"] == {"labeled": 300, "unlabeled": 60, "augmented": 40}
    assert list(metrics["models"]) == ["task"]
    m = metrics["models"]["task"]
    assert m["source"] == "task" and m["encoder"] == "full" and m["lm"] is None
    assert m["folder"] == str(recipe.run_dir / "task" / "teacher_stage1")
    assert set(m["eval"]) == {"nlu_dev", "nlu_test"} and m["eval"]["nlu_test"]["n"] == 60
    assert m["latency_ms"]["n"] == 5
    assert (recipe.run_dir / "task" / "recipe.yaml").is_file()
    stop = results["task_stop"]
    assert stop["pool"] == {"labeled": 300, "unlabeled": 0, "augmented": 0}
    assert stop["joins"] == "finetune"


def test_training_runs_the_epoch_budget_and_logs_every_loss_term(finished):
    _, recipe, results = finished
    m = results["task"]["models"]["task"]
    assert m["steps"] == STEPS == 50
    log = rows(recipe.run_dir / "task" / "teacher_stage1")
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    terms = {"hard_intent", "hard_slots", "soft_intent", "soft_slots"}
    assert all(terms <= set(r) and "hidden" not in r for r in steps)
    for r in steps:  # hard_weight 1, soft_weight 0.5, slot_weight 1
        want = r["hard_intent"] + r["hard_slots"] + 0.5 * (r["soft_intent"] + r["soft_slots"])
        assert r["loss"] == pytest.approx(want, rel=1e-5)
    evals = {r["step"]: r["eval"]["dev"]["exact_match"] for r in log if "eval" in r}
    assert set(evals) == {10, 20, 30, 40, 50}
    assert m["best_step"] == max(evals, key=lambda s: (evals[s], -s))
    assert m["eval"]["nlu_dev"]["exact_match"] == pytest.approx(evals[m["best_step"]])
    # the linear schedule decays over the resolved budget, to 0 at its end
    assert steps[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_early_stopping_ends_a_labeled_only_run(finished):
    _, recipe, results = finished
    m = results["task_stop"]["models"]["task_stop"]
    assert m["steps"] == 10 and m["best_step"] in (5, 10)
    log = rows(recipe.run_dir / "task_stop" / "teacher_stage1")
    assert any("early_stop" in r for r in log)
    steps = [r for r in log if "loss" in r]
    for r in steps:  # the default weights (1, 1, 1) plus 0.5 · hidden-state MSE
        want = r["hard_intent"] + r["hard_slots"] + r["soft_intent"] + r["soft_slots"]
        assert r["loss"] == pytest.approx(want + 0.5 * r["hidden"], rel=1e-5)
    # labeled rows only: every batch has hard terms
    assert all(r["hard_intent"] > 0 and r["hard_slots"] > 0 for r in steps)


def test_saved_student_reloads_and_scores_as_recorded(finished):
    _, recipe, results = finished
    folder = recipe.run_dir / "task" / "teacher_stage1"
    m = results["task"]["models"]["task"]
    test_set = load_labeled(recipe.data.labeled["nlu_test"])
    again, _ = evaluate_nlu(load_nlu_model(folder), test_set, load_tokenizer(folder), 32)
    assert again["exact_match"] == pytest.approx(m["eval"]["nlu_test"]["exact_match"])
    assert again["slot_f1"] == pytest.approx(m["eval"]["nlu_test"]["slot_f1"])


@pytest.mark.parametrize("name", ["task", "task_stop"])
def test_pinned_values_of_the_seeded_run(finished, name):
    _, recipe, results = finished
    got = measured(recipe, results, name)
    want = PINNED[name]
    assert got["steps"] == want["steps"] and got["best_step"] == want["best_step"], got
    assert got["exact_match"] == pytest.approx(want["exact_match"], abs=1e-9), got
    assert got["intent_accuracy"] == pytest.approx(want["intent_accuracy"], abs=1e-9), got
    assert got["first_loss"] == pytest.approx(want["first_loss"], rel=1e-6), got


def test_a_rerun_skips_the_finished_stage(finished):
    path, _, results = finished
    logs: list[str] = []
    again = run_recipe(load_recipe(path), log=logs.append)
    assert "[task] up to date, skipped" in logs
    assert again["task"] == json.loads(json.dumps(results["task"]))


# --------------------------------------------------------------------------- errors


def alone(tmp_path: Path, **changes) -> Path:
    """A recipe of one task_distill stage whose references are folders."""
    return write_recipe(tmp_path, {"task": {**TASK, **changes}})


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "distilnlu", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.parametrize("key", ["student", "augment.model"])
def test_cli_rejects_a_model_with_another_tokenizer_before_training(
    finished, tmp_path, tiny_mlm_dir, key
):
    _, recipe, _ = finished
    run = recipe.run_dir
    other = str(tiny_mlm_dir)  # its tokenizer has 300 tokens, the recipe's 400
    refs = {"student": str(run / "teacher_stage1"), "augment.model": str(run / "teacher_stage2")}
    refs[key] = other
    path = alone(
        tmp_path,
        teacher=str(run / "finetune" / "teacher_stage2"),
        student=refs["student"],
        augment={**TASK["augment"], "model": refs["augment.model"]},
    )
    proc = cli("run", path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: stage 'task': the ")
    assert f"the {key} ({other})" in errors[0]
    assert "different tokenizers (300 vs 400 tokens)" in errors[0]
    stage_dir = tmp_path / "runs" / "tiny" / "task"
    assert sorted(p.name for p in stage_dir.iterdir()) == [".stage_hash"]  # nothing trained


def test_teacher_that_is_no_fine_tuned_model_folder(finished, tmp_path):
    _, recipe, _ = finished
    run = recipe.run_dir
    path = alone(
        tmp_path,
        teacher=str(run / "teacher_stage2"),  # a masked LM, not a fine-tuned model
        student=str(run / "teacher_stage1"),
        augment=None,
    )
    with pytest.raises(ModelError, match=r"stage 'task': teacher .* is not a fine-tuned model"):
        run_recipe(load_recipe(path), log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "runs/tiny/task").iterdir()) == [".stage_hash"]


def ensemble_recipe(tmp_path: Path, run: Path, second: Path) -> Path:
    return alone(
        tmp_path,
        teacher=[str(run / "finetune" / "teacher_stage2"), str(second)],
        student=str(run / "teacher_stage1"),
        unlabeled=[],
        augment=None,
        training={"max_steps": 4, "batch_size": BATCH, "eval_every": 4},
    )


def test_an_ensemble_teacher_trains_on_the_mean_of_its_teachers(finished, tmp_path):
    _, recipe, _ = finished
    run = recipe.run_dir
    second = run / "task_stop" / "teacher_stage1"  # the same labels, another model
    results = run_recipe(load_recipe(ensemble_recipe(tmp_path, run, second)), log=lambda _: None)
    metrics = results["task"]
    assert metrics["teacher"] == [str(run / "finetune" / "teacher_stage2"), str(second)]
    assert metrics["models"]["task"]["steps"] == 4
    first = next(r for r in rows(tmp_path / "runs/tiny/task/teacher_stage1") if "loss" in r)
    single = next(r for r in rows(run / "task_stop" / "teacher_stage1") if "loss" in r)
    # Same student, same first batch, same gold labels: only the soft targets differ.
    assert first["hard_intent"] == pytest.approx(single["hard_intent"], rel=1e-6)
    assert first["soft_intent"] != pytest.approx(single["soft_intent"], rel=1e-3)


def test_an_ensemble_of_teachers_with_other_labels_is_refused(finished, tmp_path):
    _, recipe, _ = finished
    run = recipe.run_dir
    second = tmp_path / "relabeled"
    shutil.copytree(run / "finetune" / "teacher_stage2", second)
    labels = json.loads((second / "labels.json").read_text())
    labels["intents"][0] = "renamed_intent"
    (second / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ModelError, match=r"teachers '.*' and '.*relabeled' have different"):
        run_recipe(load_recipe(ensemble_recipe(tmp_path, run, second)), log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "runs/tiny/task").iterdir()) == [".stage_hash"]


def test_the_slot_prior_weight_can_be_chosen_on_dev_exact_match(finished):
    _, recipe, results = finished
    prior = results["task_stop"]["models"]["task_stop"]["slot_prior"]
    assert prior["metric"] == "exact_match"
    model = load_nlu_model(recipe.run_dir / "task_stop" / "teacher_stage1")
    dev = load_labeled(recipe.data.labeled["nlu_dev"], recipe.data.root)
    tokenizer = load_tokenizer(recipe.run_dir / "task_stop" / "teacher_stage1")
    chosen = evaluate_nlu(model, dev, tokenizer, 32)[0]["exact_match"]
    assert chosen == pytest.approx(prior["dev"][str(prior["weight"])])
    assert chosen == pytest.approx(max(prior["dev"].values()))
