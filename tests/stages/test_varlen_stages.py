"""``training.attention: varlen`` and ``eager``, and ``training.compile``, in real stages:
pretraining and distillation train the same curve as the dense-mask SDPA path, the saved models
load in plain transformers with SDPA, and the stage hash does not move."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from distilnlu.config import load_recipe
from distilnlu.errors import ConfigError
from distilnlu.pipeline import run_recipe
from tests.conftest import TINY_RECIPE, TINY_TRAINING

NO_DROPOUT = {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
              "dropout": 0.0}  # fmt: skip
EVAL = {"corpora": ["domain_dev"], "max_texts": 20}


def recipe_file(tmp: Path, attention: str, dropout: float = 0.0, compile: bool = False) -> Path:
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(tmp / "runs")
    training = {**TINY_TRAINING, "max_steps": 6, "attention": attention}
    if compile:
        training["compile"] = True
    raw["stages"] = {
        "tokenizer": raw["stages"]["tokenizer"],
        "teacher": {
            "kind": "pretrain",
            "model": {**NO_DROPOUT, "dropout": dropout},
            "data": {"public": 1.0},
            "training": training,
            "eval": EVAL,
        },
        "student": {
            "kind": "distill",
            "model": {**NO_DROPOUT, "num_layers": 1},
            "teachers": [{"model": "teacher"}],
            "loss": {"hidden_weight": 1.0},
            "data": {"domain": 1.0},
            "training": training,
            "eval": EVAL,
        },
    }
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{attention}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def losses(stage_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (stage_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [r["loss"] for r in rows if "loss" in r]


def run(path: Path):
    recipe = load_recipe(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums round alike in both runs
    try:
        run_recipe(recipe, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    return recipe


def assert_same_stages(tmp_path: Path, dense, other, name: str) -> None:
    """``other``'s run (under ``tmp_path / name``) trained the dense run's curves, has its stage
    hashes, and saved folders that load in plain transformers with SDPA."""
    from transformers import AutoModelForMaskedLM

    for stage in ("teacher", "student"):
        want = losses(tmp_path / "dense/runs/tiny" / stage)
        got = losses(tmp_path / name / "runs/tiny" / stage)
        assert len(got) == len(want) == 6
        assert got == pytest.approx(want, abs=1e-4), stage
        assert other.stage_hash(stage) == dense.stage_hash(stage)
        model = AutoModelForMaskedLM.from_pretrained(tmp_path / name / "runs/tiny" / stage)
        assert model.config._attn_implementation == "sdpa"


def test_varlen_stages_train_the_dense_mask_curve_and_save_plain_models(tmp_path, monkeypatch):
    from distilnlu.modeling import varlen as kernel

    calls = []
    nested = kernel._nested_sdpa
    monkeypatch.setattr(kernel, "_nested_sdpa", lambda *a: calls.append(1) or nested(*a))
    dense = run(recipe_file(tmp_path / "dense", "sdpa"))
    assert not calls
    varlen = run(recipe_file(tmp_path / "varlen", "varlen"))
    assert calls  # the documents really went through the varlen kernel
    assert_same_stages(tmp_path, dense, varlen, "varlen")  # a kernel, not a setting
    for stage in ("teacher", "student"):
        folder = tmp_path / "varlen/runs/tiny" / stage
        assert "distilnlu_varlen" not in (folder / "config.json").read_text()


def test_eager_stages_train_the_sdpa_curve_and_save_sdpa_models(tmp_path, monkeypatch):
    from transformers.models.roberta_prelayernorm import modeling_roberta_prelayernorm as rpl

    calls = []
    eager = rpl.eager_attention_forward
    monkeypatch.setattr(
        rpl, "eager_attention_forward", lambda *a, **k: calls.append(1) or eager(*a, **k)
    )
    dense = run(recipe_file(tmp_path / "dense", "sdpa"))
    assert not calls
    plain = run(recipe_file(tmp_path / "eager", "eager"))
    assert calls  # the attention really took the eager path
    assert_same_stages(tmp_path, dense, plain, "eager")


def test_compiled_eager_stages_train_the_sdpa_curve_and_save_plain_models(tmp_path, monkeypatch):
    """``training.compile`` in pretraining and distillation (the hidden-state loss included):
    the same curve, the same stage hash, saved weights without compiled-module prefixes."""
    from safetensors.torch import load_file

    from distilnlu.training import loop

    compiled_modules = []
    original = loop.compile_in_place
    monkeypatch.setattr(
        loop,
        "compile_in_place",
        lambda acc, model: compiled_modules.append(model) or original(acc, model),
    )
    dense = run(recipe_file(tmp_path / "dense", "sdpa"))
    assert not compiled_modules
    torch._dynamo.reset()
    compiled = run(recipe_file(tmp_path / "compiled", "eager", compile=True))
    assert len(compiled_modules) == 2  # the teacher's and the student's stage
    assert all(m._compiled_call_impl is not None for m in compiled_modules)
    assert_same_stages(tmp_path, dense, compiled, "compiled")
    for stage in ("teacher", "student"):
        keys = load_file(str(tmp_path / "compiled/runs/tiny" / stage / "model.safetensors"))
        assert keys and not any("_orig_mod" in key for key in keys)


def test_varlen_with_attention_dropout_is_a_config_error(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path, "varlen", dropout=0.1))
    with pytest.raises(ConfigError, match=r"training\.attention: varlen needs attention dropout 0"):
        run_recipe(recipe, log=lambda _: None)
