"""The real-data recipe (Wikipedia + MASSIVE) end to end, at reduced size (marked slow)."""

import pytest

from distilnlu.config import load_recipe
from distilnlu.pipeline import run_recipe
from tests.conftest import REPO, shared_data_or_skip


@pytest.mark.slow
def test_massive_recipe_runs_both_teachers_on_real_files(tmp_path):
    root = shared_data_or_skip()
    recipe = load_recipe(
        REPO / "configs/massive.yaml",
        [
            f"data.root={root}",
            f"output_dir={tmp_path}",
            "stages.tokenizer.max_texts=1500",
            "stages.teacher_stage1.training.max_steps=60",
            "stages.teacher_stage1.training.eval_every=60",
            "stages.teacher_stage1.eval.max_texts=100",
            "stages.teacher_stage2.training.max_steps=60",
            "stages.teacher_stage2.training.eval_every=60",
            "stages.teacher_stage2.eval.max_texts=100",
        ],
    )
    results = run_recipe(recipe, until="teacher_stage2", log=lambda _: None)
    stage1 = results["teacher_stage1"]["eval"]["domain_dev"]
    stage2 = results["teacher_stage2"]["eval"]["domain_dev"]
    # Continued pretraining on in-domain utterances must help on held-out in-domain text.
    assert stage2["perplexity"] < stage1["perplexity"]
    assert results["teacher_stage2"]["eval"]["public_dev"]["mask_fill_n"] > 0
