"""Pinned results of one tiny seeded run of each stage kind: tokenizer, pretrain, distill, finetune.

A failure here means the maths or the data order changed: a loss, an initialisation, the masking,
the mixing or shuffling of the corpora, the optimiser, the schedule, an evaluation metric. If the
change is intended, re-record the numbers (run this file and copy the new values) and say in the
commit why they changed; if it is not, the message points at the first stage that differs.

The run uses one torch thread (float reductions can depend on the thread count) and only the
public entry points: ``load_recipe`` and ``run_recipe``, and the files of the run folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from distilnlu.config import load_recipe
from distilnlu.pipeline import run_recipe
from tests.conftest import TINY_RECIPE, TINY_TRAINING

EVAL = {"corpora": ["domain_dev"], "max_texts": 20}


def pinned_recipe(output_dir: Path) -> dict:
    """The conftest's tiny recipe, cut to one stage of each kind (about 4 s on one CPU thread)."""
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(output_dir)
    raw["data"]["labeled"] = {
        "nlu_train": {"format": "synthetic", "num_examples": 200, "seed": 1},
        "nlu_dev": {"format": "synthetic", "num_examples": 30, "seed": 2},
        "nlu_test": {"format": "synthetic", "num_examples": 30, "seed": 3},
    }
    training = {**TINY_TRAINING, "lr": 5e-3, "warmup_steps": 5, "checkpoint_every": 1000}
    raw["stages"] = {
        "tokenizer": raw["stages"]["tokenizer"],
        "teacher": {
            "kind": "pretrain",
            "model": "tiny",
            "data": {"public": 1.0, "domain": 1.0},
            "training": {**training, "max_steps": 60, "eval_every": 30},
            "eval": EVAL,
        },
        "student": {
            "kind": "distill",
            "model": "tiny",
            "teachers": [{"model": "teacher"}],
            "loss": {"hidden_weight": 1.0},
            "data": {"domain": 1.0},
            "training": {**training, "max_steps": 20, "eval_every": 10},
            "eval": EVAL,
        },
        "finetune": {
            "kind": "finetune",
            "models": ["student"],
            "encoder": ["full", "frozen"],
            "train": "nlu_train",
            "dev": "nlu_dev",
            "test": ["nlu_test"],
            "lm_corpus": "domain_dev",
            "lm_max_texts": 20,
            "max_length": 32,
            "patience": 50,
            "frozen_lr": 5e-2,
            "latency_texts": 0,
            "training": {"max_steps": 90, "batch_size": 16, "lr": 1e-2, "eval_every": 30},
        },
    }
    return raw


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pinned")
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(pinned_recipe(tmp / "runs"), sort_keys=False))
    recipe = load_recipe(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run_recipe(recipe, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    return recipe.run_dir, results


def rows(run_dir: Path, stage: str) -> list[dict]:
    lines = (run_dir / stage / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def train_rows(run_dir: Path, stage: str) -> dict[int, dict]:
    return {r["step"]: r for r in rows(run_dir, stage) if "loss" in r}


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-5, abs=1e-6)


def test_tokenizer_vocab_and_a_pinned_encoding(run):
    from transformers import AutoTokenizer

    run_dir, results = run
    assert results["tokenizer"] == {"stage": "tokenizer", "vocab_size": 400, "trained_on": 600}
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    assert len(tokenizer) == 400
    ids = tokenizer("set an alarm for seven am please")["input_ids"]
    assert ids == [0, 55, 140, 5, 29, 159, 32, 59, 83, 183, 2]


def test_pretrain_losses_and_held_out_metrics(run):
    run_dir, results = run
    metrics = results["teacher"]
    assert metrics["steps"] == 60 and metrics["tokens"] == 7680
    assert metrics["parameters"] == {"embedding": 29280, "non_embedding": 18736, "total": 48016}
    train = train_rows(run_dir, "teacher")
    assert sorted(train) == list(range(1, 61))
    for step, loss in {1: 5.350912094116211, 30: 4.93434476852417, 60: 5.107306003570557}.items():
        assert train[step]["loss"] == approx(loss), step
        assert train[step]["mlm"] == train[step]["loss"]
    evals = {r["step"]: r["eval"]["domain_dev"] for r in rows(run_dir, "teacher") if "eval" in r}
    assert sorted(evals) == [30, 60]
    assert evals[30]["perplexity"] == approx(134.60261454983385)
    final = metrics["eval"]["domain_dev"]
    assert final == evals[60]
    assert final["loss"] == approx(4.868334383577914)
    assert final["perplexity"] == approx(130.10403291004093)
    assert final["masked_tokens"] == 37 and final["mask_fill_n"] == 20
    assert final["mask_fill_accuracy"] == approx(0.0)  # content words: too hard for 60 steps
    assert json.loads((run_dir / "teacher/metrics.json").read_text()) == metrics


def test_distill_losses_components_and_held_out_metrics(run):
    run_dir, results = run
    metrics = results["student"]
    assert metrics["steps"] == 20 and metrics["tokens"] == 2560
    assert metrics["teachers"] == ["teacher"] and metrics["teacher_switches"] == []
    train = train_rows(run_dir, "student")
    assert sorted(train) == list(range(1, 21))
    expected = {  # step: (loss, mlm, soft, hidden)
        1: (13.82958984375, 4.8114914894104, 5.246194839477539, 3.7719039916992188),
        10: (11.40851879119873, 5.342040061950684, 5.138243675231934, 0.928234875202179),
        20: (10.751148223876953, 5.01645565032959, 5.07541561126709, 0.659277081489563),
    }
    for step, (loss, mlm, soft, hidden) in expected.items():
        row = train[step]
        assert row["loss"] == approx(loss), step
        assert row["mlm"] == approx(mlm), step
        assert row["soft"] == approx(soft), step
        assert row["hidden"] == approx(hidden), step
        # All three weights are 1: the loss is the sum of its parts.
        assert row["loss"] == approx(row["mlm"] + row["soft"] + row["hidden"]), step
    evals = {r["step"]: r["eval"]["domain_dev"] for r in rows(run_dir, "student") if "eval" in r}
    assert sorted(evals) == [10, 20]
    assert evals[10]["perplexity"] == approx(99.25350982170747)
    final = metrics["eval"]["domain_dev"]
    assert final == evals[20]
    assert final["loss"] == approx(4.574918179898648)
    assert final["perplexity"] == approx(97.02010061770685)
    assert final["masked_tokens"] == 37 and final["mask_fill_n"] == 20
    assert final["mask_fill_accuracy"] == approx(0.0)
    assert json.loads((run_dir / "student/metrics.json").read_text()) == metrics


FINETUNED = {  # slot tags decoded as valid BIO (constrained Viterbi)
    "student": {
        "best_step": 90,
        "losses": {1: 6.865410327911377, 30: 4.121302127838135, 90: 3.1771702766418457},
        "dev_exact_match": {30: 0.1, 60: 0.1, 90: 4 / 30},
        "nlu_dev": {
            "intent_accuracy": 0.43333333333333335,
            "slot_precision": 0.6,
            "slot_recall": 0.23684210526315788,
            "slot_f1": 0.339622641509434,
            "exact_match": 0.1,
            "semer": 0.7058823529411765,
        },
        "nlu_test": {
            "intent_accuracy": 0.3,
            "slot_precision": 0.7272727272727273,
            "slot_recall": 0.20512820512820512,
            "slot_f1": 0.32,
            "exact_match": 0.03333333333333333,
            "semer": 0.782608695652174,
        },
    },
    "student-frozen": {
        "best_step": 60,
        "losses": {1: 6.904422760009766, 30: 5.155623912811279, 90: 4.766844272613525},
        "dev_exact_match": {30: 0.0, 60: 1 / 30, 90: 0.0},
        "nlu_dev": {
            "intent_accuracy": 0.16666666666666666,
            "slot_precision": 0.5,
            "slot_recall": 0.02631578947368421,
            "slot_f1": 0.05,
            "exact_match": 0.03333333333333333,
            "semer": 0.9117647058823529,
        },
        "nlu_test": {
            "intent_accuracy": 0.16666666666666666,
            "slot_precision": 0.0,
            "slot_recall": 0.0,
            "slot_f1": 0.0,
            "exact_match": 0.0,
            "semer": 0.927536231884058,
        },
    },
}


@pytest.mark.parametrize("key", list(FINETUNED))
def test_finetune_losses_and_dev_test_metrics(run, key):
    run_dir, results = run
    stage = results["finetune"]
    assert list(stage["models"]) == list(FINETUNED)
    assert stage["train_examples"] == 200
    assert stage["labels"] == {"intents": 26, "slot_tags": 45}
    m, want = stage["models"][key], FINETUNED[key]
    assert m["steps"] == 90 and m["best_step"] == want["best_step"]
    assert m["parameters"] == {"embedding": 29280, "non_embedding": 17216, "total": 46496}
    # The encoder's held-out LM metrics are the distilled student's.
    assert m["lm"]["perplexity"] == approx(97.02010061770685)
    assert m["lm"]["mask_fill_accuracy"] == approx(0.0) and m["lm"]["mask_fill_n"] == 20
    log = rows(run_dir / "finetune", key)
    train = {r["step"]: r for r in log if "loss" in r}
    for step, loss in want["losses"].items():
        assert train[step]["loss"] == approx(loss), step
    dev = {r["step"]: r["eval"]["dev"]["exact_match"] for r in log if "eval" in r}
    assert dev == {s: approx(v) for s, v in want["dev_exact_match"].items()}
    for split in ("nlu_dev", "nlu_test"):
        got = m["eval"][split]
        assert got["n"] == 30, split
        assert {k: got[k] for k in want[split]} == {k: approx(v) for k, v in want[split].items()}
