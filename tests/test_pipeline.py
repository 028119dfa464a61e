import json

import pytest
from transformers import AutoModelForMaskedLM, AutoTokenizer

from distilnlu.config import load_recipe
from distilnlu.errors import ConfigError
from distilnlu.pipeline import MANIFEST, lm_summary, run_recipe


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
        assert m["perplexity"] > 1 and 0 <= m["mask_fill_accuracy"] <= 1
    log = (run_dir / "teacher_stage2/metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x) for x in log]
    assert max(r["step"] for r in steps) == 4
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert set(manifest["stages"]) == {"tokenizer", "teacher_stage1", "teacher_stage2"}
    assert "domain_dev" in lm_summary(recipe, results)

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
    assert len(lines) >= 3 and {"200", "400"} <= {line.split()[0] for line in lines[1:]}

    done = runner.invoke(app, ["run", str(path), "--until", "teacher_stage1"])
    assert done.exit_code == 0, done.output
    assert "teacher_stage1  domain_dev" in done.output
    texts = tmp_path / "heldout.txt"
    texts.write_text("set an alarm for seven am\nplay some jazz music\nwhat is the weather\n")
    model_dir = tmp_path / "runs/tiny/teacher_stage1"
    scored = runner.invoke(app, ["evaluate", str(model_dir), "--texts", str(texts)])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.stdout)
    assert metrics["perplexity"] > 1 and metrics["masked_tokens"] > 0


def test_continue_from_any_hf_masked_lm_in_bf16(tiny_recipe_file, tmp_path):
    from transformers import RobertaConfig, RobertaForMaskedLM

    recipe = load_recipe(tiny_recipe_file(), ["stages.teacher_stage1.training.max_steps=2"])
    run_recipe(recipe, until="tokenizer", log=lambda _: None)
    tokenizer = AutoTokenizer.from_pretrained(recipe.run_dir / "tokenizer")
    plain = tmp_path / "plain-roberta"
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

    def use_plain(raw):
        stage = raw["stages"]["teacher_stage1"]
        del stage["model"]
        stage["init"] = str(plain)
        stage["training"].update(precision="bf16", max_steps=3)

    recipe = load_recipe(tiny_recipe_file(use_plain, name="plain.yaml"))
    results = run_recipe(recipe, until="teacher_stage1", log=lambda _: None)
    out = recipe.run_dir / "teacher_stage1"
    assert type(AutoModelForMaskedLM.from_pretrained(out)).__name__ == "RobertaForMaskedLM"
    assert results["teacher_stage1"]["steps"] == 3
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] for r in rows if "loss" in r)
