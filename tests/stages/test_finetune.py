"""The finetune stage end to end on tiny models: files, metrics, early stopping, resume, report."""

import json

import pytest

from distilnlu.config import load_recipe
from distilnlu.modeling.classifier import load_nlu_model
from distilnlu.pipeline import run_recipe

FINETUNE = {
    "kind": "finetune",
    "models": ["teacher_stage1", "teacher_stage2"],
    "encoder": ["full", "frozen"],
    "baseline": "teacher_stage1",
    "train": "nlu_train",
    "dev": "nlu_dev",
    "test": ["nlu_test"],
    "lm_corpus": "domain_dev",
    "lm_max_texts": 20,
    "max_length": 32,
    "patience": 50,
    "frozen_lr": 1e-2,
    "latency_texts": 5,
    "training": {"max_steps": 150, "batch_size": 16, "lr": 1e-2, "eval_every": 50},
}


# Measured results of the `finished` run (seeded, and the same with 1 or 2 torch threads).
LM = {  # the encoder's held-out domain_dev metrics: (loss, perplexity), as its pretrain stage's
    "teacher_stage1": (5.641063380885768, 281.76217974263824),
    "teacher_stage2": (5.631786037135768, 279.160263244324),
}
TEST = {  # key: (best_step, nlu_test metrics over 60 utterances)
    "teacher_stage1": (
        150,
        {
            "intent_accuracy": 0.4166666666666667,
            "slot_precision": 0.8571428571428571,
            "slot_recall": 0.25,
            "slot_f1": 0.3870967741935483,
            "exact_match": 0.11666666666666667,
            "semer": 0.6818181818181818,
        },
    ),
    "teacher_stage1-frozen": (
        150,
        {
            "intent_accuracy": 0.1,
            "slot_precision": 0.0,
            "slot_recall": 0.0,
            "slot_f1": 0.0,
            "exact_match": 0.03333333333333333,
            "semer": 1.0,
        },
    ),
    "teacher_stage2": (
        100,
        {
            "intent_accuracy": 0.38333333333333336,
            "slot_precision": 0.8095238095238095,
            "slot_recall": 0.2361111111111111,
            "slot_f1": 0.3655913978494623,
            "exact_match": 0.1,
            "semer": 0.7121212121212122,
        },
    ),
    "teacher_stage2-frozen": (
        150,
        {
            "intent_accuracy": 0.11666666666666667,
            "slot_precision": 0.0,
            "slot_recall": 0.0,
            "slot_f1": 0.0,
            "exact_match": 0.03333333333333333,
            "semer": 0.9848484848484849,
        },
    ),
}


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-5, abs=1e-6)


def _with_finetune(raw, **changes):
    raw["data"]["labeled"] = {
        "nlu_train": {"format": "synthetic", "num_examples": 300, "seed": 1},
        "nlu_dev": {"format": "synthetic", "num_examples": 60, "seed": 2},
        "nlu_test": {"format": "synthetic", "num_examples": 60, "seed": 3},
    }
    raw["stages"]["finetune"] = {**FINETUNE, **changes}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    import yaml

    from tests.conftest import TINY_RECIPE

    raw = json.loads(json.dumps(TINY_RECIPE))
    tmp = tmp_path_factory.mktemp("ft")
    raw["output_dir"] = str(tmp / "runs")
    _with_finetune(raw)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    recipe = load_recipe(path)
    results = run_recipe(recipe, log=lambda _: None)
    return path, recipe, results


def test_every_model_and_mode_is_fine_tuned_saved_and_evaluated(finished):
    _, recipe, results = finished
    metrics = results["finetune"]
    keys = ["teacher_stage1", "teacher_stage1-frozen", "teacher_stage2", "teacher_stage2-frozen"]
    assert list(metrics["models"]) == keys == list(TEST)
    assert metrics["primary"] == "nlu_test" and metrics["baseline"] == "teacher_stage1"
    for key in keys:
        m = metrics["models"][key]
        folder = recipe.run_dir / "finetune" / key
        for name in (
            "config.json",
            "heads.safetensors",
            "labels.json",
            "nlu_config.json",
            "tokenizer.json",
            "metrics.json",
            "metrics.jsonl",
            "predictions-nlu_test.jsonl",
        ):
            assert (folder / name).is_file(), (key, name)
        assert not (folder / "best.safetensors").exists() and not (folder / "checkpoint").exists()
        assert set(m["eval"]) == {"nlu_dev", "nlu_test"}
        test = m["eval"]["nlu_test"]
        assert test["n"] == 60 and 0 <= test["exact_match"] <= test["intent_accuracy"] <= 1
        best_step, want = TEST[key]
        assert m["steps"] == 150 and m["best_step"] == best_step, key
        assert {k: test[k] for k in want} == {k: approx(v) for k, v in want.items()}, key
        assert m["latency_ms"]["n"] == 5 and m["latency_ms"]["p50"] > 0
        loss, perplexity = LM[m["source"]]
        assert m["lm"]["loss"] == approx(loss) and m["lm"]["perplexity"] == approx(perplexity)
        assert m["lm"]["mask_fill_n"] == 20 and m["lm"]["mask_fill_accuracy"] == approx(0.0)
        assert m["encoder"] == ("frozen" if key.endswith("frozen") else "full")
    full = metrics["models"]["teacher_stage2"]["eval"]["nlu_test"]
    # 26 intents: chance is ~4%; 150 steps on 300 examples must learn far more than that.
    assert full["intent_accuracy"] > 0.3, full
    assert full["intent_accuracy"] == approx(23 / 60)


def test_best_dev_checkpoint_is_the_one_saved(finished):
    _, recipe, results = finished
    folder = recipe.run_dir / "finetune" / "teacher_stage2"
    m = results["finetune"]["models"]["teacher_stage2"]
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    dev = {r["step"]: r["eval"]["dev"]["exact_match"] for r in rows if "eval" in r}
    assert m["best_step"] == max(dev, key=lambda s: (dev[s], -s))
    assert m["eval"]["nlu_dev"]["exact_match"] == pytest.approx(dev[m["best_step"]])
    model = load_nlu_model(folder)  # the saved folder reloads and scores the same
    from distilnlu.data.labeled import load_labeled
    from distilnlu.evaluation.inference import evaluate_nlu
    from distilnlu.tokenization import load_tokenizer

    dev_set = load_labeled(recipe.data.labeled["nlu_dev"])
    again, _ = evaluate_nlu(model, dev_set, load_tokenizer(folder), 32)
    assert again["exact_match"] == pytest.approx(m["eval"]["nlu_dev"]["exact_match"])


def test_a_rerun_skips_and_a_lost_stage_file_reuses_finished_models(finished):
    path, recipe, _ = finished
    logs: list[str] = []
    run_recipe(load_recipe(path), log=logs.append)
    assert any("[finetune] up to date" in line for line in logs)
    # Lose the stage summary (a crash after the models): the models are not trained again.
    (recipe.run_dir / "finetune" / "metrics.json").unlink()
    stamp = (recipe.run_dir / "finetune/teacher_stage1/metrics.json").stat().st_mtime_ns
    manifest = json.loads((recipe.run_dir / "manifest.json").read_text())
    assert "finetune" in manifest["stages"]
    run_recipe(load_recipe(path), log=lambda _: None)
    assert (recipe.run_dir / "finetune/teacher_stage1/metrics.json").stat().st_mtime_ns == stamp
    assert (recipe.run_dir / "finetune" / "metrics.json").is_file()


def test_early_stopping_ends_training_before_max_steps(tiny_recipe_file):
    def mutate(raw):
        _with_finetune(
            raw,
            models=["teacher_stage1"],
            encoder=["frozen"],
            patience=1,
            frozen_lr=1e-6,  # far too small to improve dev: the first non-improvement stops it
            lm_corpus=None,
            latency_texts=0,
            training={"max_steps": 200, "batch_size": 8, "lr": 1e-6, "eval_every": 5},
        )

    recipe = load_recipe(tiny_recipe_file(mutate))
    m = run_recipe(recipe, log=lambda _: None)["finetune"]["models"]["teacher_stage1-frozen"]
    # Dev is scored every 5 steps: best at step 5, no better at 10, and patience 1 stops it there.
    assert m["steps"] == 10 and m["best_step"] == 5
    rows = (recipe.run_dir / "finetune/teacher_stage1-frozen/metrics.jsonl").read_text()
    assert '"early_stop"' in rows


CLI_SCORES = {  # teacher_stage2 on labeled_examples(20, seed=3)
    "intent_accuracy": 0.25,
    "slot_precision": 1.0,
    "slot_recall": 0.25925925925925924,
    "slot_f1": 0.4117647058823529,
    "exact_match": 0.0,
    "semer": 0.7446808510638298,
}


def test_cli_report_and_evaluate_a_fine_tuned_model(finished, tmp_path):
    from typer.testing import CliRunner

    from distilnlu.cli import app
    from distilnlu.data.synthetic import labeled_examples

    _, recipe, _ = finished
    runner = CliRunner()
    done = runner.invoke(app, ["report", str(recipe.run_dir)])
    assert done.exit_code == 0, done.output
    assert (recipe.run_dir / "report/index.html").is_file()
    assert "teacher_stage2-frozen" in done.output and "Report:" in done.output

    data = tmp_path / "utterances.jsonl"
    data.write_text("".join(json.dumps(ex) + "\n" for ex in labeled_examples(20, seed=3)))
    folder = recipe.run_dir / "finetune/teacher_stage2"
    scored = runner.invoke(app, ["evaluate", str(folder), "--data", str(data), "--format", "spans"])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.stdout)
    assert metrics["n"] == 20 and 0 <= metrics["exact_match"] <= 1
    assert {k: metrics[k] for k in CLI_SCORES} == {k: approx(v) for k, v in CLI_SCORES.items()}
    missing = runner.invoke(app, ["evaluate", str(folder)])
    assert missing.exit_code != 0


def test_a_fine_tuned_model_is_exported_predicted_and_the_run_says_how(finished, tmp_path):
    """The last leg of the pipeline: a trained model folder, as `run` leaves it, ships."""
    import shutil

    from typer.testing import CliRunner

    from distilnlu.cli import app

    path, recipe, _ = finished
    runner = CliRunner()
    again = runner.invoke(app, ["run", str(path)])  # every stage is done: report + hint only
    assert again.exit_code == 0, again.output
    # The hint ships the report's choice: the best dev EM (both teachers share one shape, so
    # both are within twice its latency), not the last model listed.
    models = json.loads((recipe.run_dir / "finetune/metrics.json").read_text())["models"]
    best = max(
        ("teacher_stage1", "teacher_stage2"),
        key=lambda k: models[k]["eval"]["nlu_dev"]["exact_match"],
    )
    shipped = recipe.run_dir / "finetune" / best
    assert f"distilnlu export {shipped} --int8" in again.output

    folder = tmp_path / "teacher_stage2"
    shutil.copytree(shipped, folder)
    exported = runner.invoke(app, ["export", str(folder), "--int8"])
    assert exported.exit_code == 0, exported.output
    report = json.loads((folder / "export.json").read_text())
    fp32 = report["files"]["onnx"]["parity"]
    assert fp32["n"] == 60  # the dev set's saved predictions, with gold labels
    assert fp32["max_abs_diff_intent_logits"] <= 1e-4 and fp32["max_abs_diff_slot_logits"] <= 1e-4
    assert fp32["reference_slot_f1"] == fp32["exported_slot_f1"]

    texts = ["wake me up at seven am", "play some jazz in the kitchen"]
    answers = {}
    for backend in ("torch", "onnx"):
        out = runner.invoke(app, ["predict", str(folder), *texts, "--backend", backend])
        assert out.exit_code == 0, out.output
        answers[backend] = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(a["intent"], a["slots"]) for a in answers["onnx"]] == [
        (a["intent"], a["slots"]) for a in answers["torch"]
    ]


def test_the_slot_prior_is_tuned_on_dev_saved_and_decoded_with_by_predict(finished):
    from distilnlu.deploy.parser import Parser, split_words
    from distilnlu.modeling.classifier import read_nlu_config

    _, recipe, results = finished
    weights = {}
    for key, m in results["finetune"]["models"].items():
        assert m["slot_prior"]["metric"] == "slot_f1"  # the default
        f1 = m["slot_prior"]["dev"]
        best = max(f1.values())
        weights[key] = m["slot_prior"]["weight"]
        assert weights[key] == float(next(w for w, v in f1.items() if v == best)), key
        folder = recipe.run_dir / "finetune" / key
        assert read_nlu_config(folder)["slot_prior"]["weight"] == weights[key]
        model = load_nlu_model(folder)
        assert model.slot_prior is not None and model.slot_prior.weight == weights[key]
        # predict (the Parser) decodes as evaluation did: the same tags for every test utterance.
        rows = [json.loads(x) for x in (folder / "predictions-nlu_test.jsonl").open()]
        parser = Parser.load(folder, backend="torch")
        parsed = parser.tag_words([split_words(r["text"]) for r in rows]).tags
        assert parsed == [r["predicted_tags"] for r in rows], key
    assert weights["teacher_stage1"] > 0  # the prior is in use in this run


def test_a_malformed_slot_prior_is_a_model_error(finished, tmp_path):
    import shutil

    from distilnlu.deploy.parser import Parser
    from distilnlu.errors import ModelError

    _, recipe, _ = finished
    folder = tmp_path / "model"
    shutil.copytree(recipe.run_dir / "finetune" / "teacher_stage1", folder)
    settings = json.loads((folder / "nlu_config.json").read_text())
    settings["slot_prior"]["bigram_counts"] = [[1, 2]]
    (folder / "nlu_config.json").write_text(json.dumps(settings))
    for load in (load_nlu_model, lambda f: Parser.load(f, backend="torch")):
        with pytest.raises(ModelError, match=r"nlu_config.json: slot_prior: the slot prior is"):
            load(folder)
