"""Distillation stages end to end on tiny models: schedule, hidden matching, files, errors."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForMaskedLM

from distilnlu.config import load_recipe
from distilnlu.pipeline import run_recipe
from distilnlu.tokenization import train_tokenizer
from tests.conftest import TINY_RECIPE, TINY_TRAINING

MID_SHAPE = {"num_layers": 3, "hidden_size": 48, "num_heads": 2, "intermediate_size": 96}
EVAL = {"corpora": ["domain_dev"], "max_texts": 20}


def distill_stages() -> dict:
    return {
        "intermediate": {
            "kind": "distill",
            "model": MID_SHAPE,
            "teachers": [{"model": "teacher_stage1", "until_step": 5}, {"model": "teacher_stage2"}],
            "data": {"public": 0.5, "domain": 0.5},
            "training": {**TINY_TRAINING, "max_steps": 10, "eval_every": 5, "checkpoint_every": 5},
            "eval": EVAL,
        },
        "final": {
            "kind": "distill",
            "model": "tiny",
            "teachers": [{"model": "intermediate"}],
            "loss": {"hidden_weight": 1.0},
            "data": {"domain": 1.0},
            "training": {**TINY_TRAINING, "max_steps": 12},
            "eval": EVAL,
        },
    }


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-5, abs=1e-6)


def rows(stage_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (stage_dir / "metrics.jsonl").read_text().splitlines() if x]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distill")
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(tmp / "runs")
    raw["stages"].update(distill_stages())
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    recipe = load_recipe(path)
    # One torch thread: the float losses differ in the last bits with the thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return recipe, run_recipe(recipe, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)


def test_intermediate_switches_teacher_once_and_logs_it(pipeline_run):
    recipe, results = pipeline_run
    out = recipe.run_dir / "intermediate"
    switches = results["intermediate"]["teacher_switches"]
    assert [(s["step"], s["from_teacher"], s["to_teacher"]) for s in switches] == [
        (5, "teacher_stage1", "teacher_stage2")
    ]
    logged = [r for r in rows(out) if "teacher_switch" in r]
    assert [r["step"] for r in logged] == [5]
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 3 and model.config.hidden_size == 48
    assert (out / "tokenizer.json").is_file() and not (out / "checkpoint").exists()


def test_final_student_trains_with_hidden_matching(pipeline_run):
    recipe, results = pipeline_run
    train = [r for r in rows(recipe.run_dir / "final") if "loss" in r]
    assert [r["step"] for r in train] == list(range(1, 13))
    assert all({"mlm", "soft", "hidden"} <= set(r) for r in train)
    expected = {  # step: (loss, mlm, soft, hidden)
        1: (14.67654800415039, 4.79269552230835, 5.542296409606934, 4.341556549072266),
        6: (13.857471466064453, 5.120809555053711, 5.4765625, 3.2600996494293213),
        12: (12.784590721130371, 4.5530853271484375, 5.441120147705078, 2.7903854846954346),
    }
    for step, (loss, mlm, soft, hidden) in expected.items():
        row = train[step - 1]
        assert row["loss"] == approx(loss), step
        assert row["mlm"] == approx(mlm), step
        assert row["soft"] == approx(soft), step
        assert row["hidden"] == approx(hidden), step
    for row in train:  # all three weights are 1: the loss is the sum of its parts
        assert row["loss"] == approx(row["mlm"] + row["soft"] + row["hidden"]), row["step"]
    first, last = train[0], train[-1]
    assert last["loss"] < first["loss"]
    hidden = [r["hidden"] for r in train]
    assert hidden == sorted(hidden, reverse=True)  # the hidden states get closer every step
    final = results["final"]
    assert final["steps"] == 12 and final["tokens"] == 1536
    assert final["parameters"] == {"embedding": 29280, "non_embedding": 18736, "total": 48016}
    assert set(final["eval"]) == {"domain_dev"}
    heldout = final["eval"]["domain_dev"]
    assert heldout["loss"] == approx(4.612166945998733)
    assert heldout["perplexity"] == approx(100.70212945232849)
    assert heldout["masked_tokens"] == 37 and heldout["mask_fill_n"] == 20
    assert heldout["mask_fill_accuracy"] == approx(0.0)


def test_mismatched_tokenizer_fails_before_any_compute(tmp_path, pipeline_run):
    recipe, _ = pipeline_run
    other = train_tokenizer(["a different corpus", "with other words entirely"] * 50, 60)
    other.save_pretrained(tmp_path / "other_tok")
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(tmp_path / "runs")
    raw["stages"] = {
        "student": {
            **distill_stages()["final"],
            "tokenizer": str(tmp_path / "other_tok"),
            "teachers": [{"model": str(recipe.run_dir / "teacher_stage1")}],
            "loss": {},
        }
    }
    path = tmp_path / "mismatch.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "distilnlu", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "different tokenizer" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs/tiny/student/metrics.jsonl").exists()


def test_student_initialised_from_chosen_teacher_layers(pipeline_run):
    from distilnlu.modeling.presets import build_model
    from distilnlu.modeling.teachers import init_student_from_teacher

    recipe, _ = pipeline_run
    teacher = AutoModelForMaskedLM.from_pretrained(recipe.run_dir / "intermediate")
    shape = {**MID_SHAPE, "num_layers": 2}
    student = build_model(shape, teacher.config.vocab_size)
    init_student_from_teacher(student, teacher, [1, 3])
    s_layers = student.base_model.encoder.layer
    t_layers = teacher.base_model.encoder.layer
    for s_index, t_index in ((0, 0), (1, 2)):
        pairs = zip(s_layers[s_index].parameters(), t_layers[t_index].parameters(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    assert torch.equal(
        student.base_model.embeddings.word_embeddings.weight,
        teacher.base_model.embeddings.word_embeddings.weight,
    )
    from distilnlu.errors import ConfigError

    with pytest.raises(ConfigError, match="same width"):
        init_student_from_teacher(build_model("tiny", teacher.config.vocab_size), teacher, [1, 2])
    with pytest.raises(ConfigError, match="out of range"):
        init_student_from_teacher(student, teacher, [1, 4])
