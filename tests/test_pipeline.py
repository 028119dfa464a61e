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
        for name in ("config.json", "model.safetensors", "tokenizer.json", "recipe.yaml",
                     "metrics.json", "metrics.jsonl"):
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
