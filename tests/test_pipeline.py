import json
import math

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from distilnlu.config import load_recipe
from distilnlu.errors import ConfigError
from distilnlu.evaluation.report import heldout_summary
from distilnlu.pipeline import run_recipe
from distilnlu.rundir import MANIFEST

# domain_dev (20 texts, 37 masked tokens) after each teacher stage of the tiny recipe: (loss, ppl).
TEACHER_EVAL = {
    "teacher_stage1": (5.641063380885768, 281.76217974263824),
    "teacher_stage2": (5.631786037135768, 279.160263244324),
}


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-5, abs=1e-6)


def test_tokenizer_and_both_teachers_end_to_end(tiny_recipe_file):
    path = tiny_recipe_file()
    recipe = load_recipe(path)
    logs: list[str] = []
    results = run_recipe(recipe, log=logs.append)
    run_dir = recipe.run_dir
    for stage in ("teacher_stage1", "teacher_stage2"):
        out = run_dir / stage
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "recipe.yaml",
            "metrics.json",
            "metrics.jsonl",
        ):
            assert (out / name).is_file(), (stage, name)
        assert not (out / "checkpoint").exists()  # removed once the stage is complete
        model = AutoModelForMaskedLM.from_pretrained(out)
        assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM"
        assert AutoTokenizer.from_pretrained(out).mask_token == "<mask>"
        m = results[stage]["eval"]["domain_dev"]
        loss, perplexity = TEACHER_EVAL[stage]
        assert m["loss"] == approx(loss) and m["perplexity"] == approx(perplexity), stage
        assert m["masked_tokens"] == 37 and m["mask_fill_n"] == 20, stage
        assert m["mask_fill_accuracy"] == approx(0.0), stage  # too few steps to fill content words
    # Stage 2 continues on the domain corpus: its domain perplexity is lower.
    stage1, stage2 = (results[s]["eval"]["domain_dev"] for s in TEACHER_EVAL)
    assert stage2["perplexity"] < stage1["perplexity"]
    log = (run_dir / "teacher_stage2/metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x) for x in log]
    assert max(r["step"] for r in steps) == 4
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert set(manifest["stages"]) == {"tokenizer", "teacher_stage1", "teacher_stage2"}
    assert "domain_dev" in heldout_summary(run_dir, stages=results)

    # Second run: nothing to do.
    logs.clear()
    run_recipe(load_recipe(path), log=logs.append)
    assert sum("up to date" in line for line in logs) == 3

    # A changed stage is redone, and only it (and what follows it).
    logs.clear()
    run_recipe(load_recipe(path, ["stages.teacher_stage2.training.lr=0.001"]), log=logs.append)
    assert any("[teacher_stage2] configuration changed" in line for line in logs)
    assert any("[teacher_stage1] up to date" in line for line in logs)


def test_until_stops_after_the_named_stage(tiny_recipe_file):
    recipe = load_recipe(tiny_recipe_file())
    results = run_recipe(recipe, until="tokenizer", log=lambda _: None)
    assert list(results) == ["tokenizer"]
    assert not (recipe.run_dir / "teacher_stage1").exists()
    with pytest.raises(ConfigError, match="no such stage"):
        run_recipe(recipe, until="nope", log=lambda _: None)


def test_a_stage_kind_without_a_runner_is_an_error_not_a_fallback(tiny_recipe_file, monkeypatch):
    from distilnlu import pipeline
    from distilnlu.config import TokenizerStage

    recipe = load_recipe(tiny_recipe_file())
    runners = {k: v for k, v in pipeline.RUNNERS.items() if k is not TokenizerStage}
    monkeypatch.setattr(pipeline, "RUNNERS", runners)
    with pytest.raises(
        ConfigError, match="stage 'tokenizer': no runner for stage kind 'tokenizer'"
    ):
        run_recipe(recipe, log=lambda _: None)
    assert not (recipe.run_dir / "tokenizer" / "metrics.json").exists()


def test_cli_report_and_evaluate_on_a_finished_run(tiny_recipe_file, tmp_path):
    from typer.testing import CliRunner

    from distilnlu.cli import app

    path = tiny_recipe_file(
        lambda r: r["stages"]["tokenizer"].update(
            report_vocab_sizes=[200, 400], report_corpora=["domain_dev"]
        )
    )
    runner = CliRunner()
    report = runner.invoke(app, ["tokenizer", str(path), "--report"])
    assert report.exit_code == 0, report.output
    lines = [line for line in report.output.splitlines() if line.strip()]
    assert "fertility" in lines[0] and "unk" in lines[0]
    assert [line.split() for line in lines[2:]] == [  # lines[1] is the ----- rule
        ["200", "200", "en", "144", "429", "2.979", "0.00"],
        ["400", "400", "en", "144", "330", "2.292", "0.00"],
    ]

    done = runner.invoke(app, ["run", str(path), "--until", "teacher_stage1"])
    assert done.exit_code == 0, done.output
    assert "teacher_stage1  domain_dev" in done.output
    texts = tmp_path / "heldout.txt"
    texts.write_text("set an alarm for seven am\nplay some jazz music\nwhat is the weather\n")
    model_dir = tmp_path / "runs/tiny/teacher_stage1"
    scored = runner.invoke(app, ["evaluate", str(model_dir), "--texts", str(texts)])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.stdout)
    assert metrics["loss"] == approx(6.303205490112305)
    assert metrics["perplexity"] == approx(546.3203307747183)
    assert metrics["masked_tokens"] == 4 and metrics["mask_fill_n"] == 3
    assert metrics["mask_fill_accuracy"] == approx(0.0)


def test_continue_from_any_hf_masked_lm_in_bf16(tiny_recipe_file, tmp_path):
    from transformers import RobertaConfig, RobertaForMaskedLM

    recipe = load_recipe(tiny_recipe_file(), ["stages.teacher_stage1.training.max_steps=2"])
    run_recipe(recipe, until="tokenizer", log=lambda _: None)
    tokenizer = AutoTokenizer.from_pretrained(recipe.run_dir / "tokenizer")
    plain = tmp_path / "plain-roberta"
    torch.manual_seed(0)  # the plain model's initialisation must not depend on the tests before
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=66,
        pad_token_id=1,
    )
    RobertaForMaskedLM(config).save_pretrained(plain)
    tokenizer.save_pretrained(plain)

    def use_plain(precision):
        def mutate(raw):
            raw["name"] = f"plain-{precision}"
            stage = raw["stages"]["teacher_stage1"]
            del stage["model"]
            stage["init"] = str(plain)
            stage["training"].update(precision=precision, max_steps=3)

        return mutate

    def losses(out):
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if "loss" in r]

    # The same run in fp32 first: deterministic, so pinned exactly.
    recipe = load_recipe(tiny_recipe_file(use_plain("fp32"), name="fp32.yaml"))
    fp32 = run_recipe(recipe, until="teacher_stage1", log=lambda _: None)["teacher_stage1"]
    fp32_losses = losses(recipe.run_dir / "teacher_stage1")
    assert fp32_losses == [
        approx(v) for v in (6.030644416809082, 5.987236976623535, 5.982529163360596)
    ]
    assert fp32["eval"]["domain_dev"]["loss"] == approx(5.995652894716005)

    recipe = load_recipe(tiny_recipe_file(use_plain("bf16"), name="plain.yaml"))
    results = run_recipe(recipe, until="teacher_stage1", log=lambda _: None)
    out = recipe.run_dir / "teacher_stage1"
    assert type(AutoModelForMaskedLM.from_pretrained(out)).__name__ == "RobertaForMaskedLM"
    bf16 = results["teacher_stage1"]
    assert bf16["steps"] == 3 and bf16["tokens"] == 384 and bf16["nonfinite_skipped"] == 0
    assert bf16["parameters"] == fp32["parameters"]
    # bf16 arithmetic differs across CPUs (native AVX512-BF16 or emulated), so its losses are not
    # pinned: they must be finite and within bf16 precision (2**-8 relative) of the fp32 run's.
    # (On an AMD EPYC with avx512_bf16 they are within 2e-5 relative, and vary with the threads.)
    bf16_losses = losses(out)
    assert all(math.isfinite(v) for v in bf16_losses) and len(bf16_losses) == 3
    assert bf16_losses == [pytest.approx(v, rel=2**-8) for v in fp32_losses]
    heldout = bf16["eval"]["domain_dev"]
    assert heldout["loss"] == pytest.approx(fp32["eval"]["domain_dev"]["loss"], rel=2**-8)
    assert heldout["masked_tokens"] == 37 and heldout["mask_fill_n"] == 20
