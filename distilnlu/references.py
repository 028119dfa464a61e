"""Check a recipe's references before a run deletes or computes anything.

A stage names the models and tokenizers it reads: an earlier stage, ``<stage>/<model>`` (a
fine-tuned model of a fine-tuning stage), a local folder, or a Hugging Face hub id. A typo in any of
them must fail at once with the key to fix, not after earlier stages trained for minutes, and
never after the stage's finished folder was cleared as "changed".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from distilnlu.config import FinetuneStage, Recipe, TaskDistillStage
from distilnlu.errors import ConfigError
from distilnlu.modeling.loading import looks_like_hub_id
from distilnlu.stages.finetune import model_key

_HUB_FILES = ("config.json", "tokenizer_config.json", "tokenizer.json")


def check_references(recipe: Recipe, names: Iterable[str]) -> None:
    """Raise ConfigError naming ``stages.<stage>.<key>`` for the first reference of the stages
    ``names`` that resolves to nothing."""
    for name in names:
        for key, ref in recipe.stages[name].references().items():
            problem = _problem(recipe, ref)
            if problem:
                raise ConfigError(f"stages.{name}.{key}={ref!r}: {problem}")


def produced_models(recipe: Recipe, stage_name: str) -> list[str]:
    """The model folders a stage writes inside its own folder (``<stage>/<model>``)."""
    stage = recipe.stages[stage_name]
    if isinstance(stage, FinetuneStage):
        return [model_key(recipe, ref, mode) for ref in stage.models for mode in stage.encoder]
    if isinstance(stage, TaskDistillStage):
        return [model_key(recipe, stage.student, "full")]
    return []


def _problem(recipe: Recipe, ref: str) -> str | None:
    if ref in recipe.stages:
        return None
    head, _, sub = ref.partition("/")
    if head in recipe.stages and sub:
        made = produced_models(recipe, head)
        if sub.rstrip("/") in made:
            return None
        listed = ", ".join(made) or "none: it is a single-model stage, name it alone"
        return f"stage '{head}' writes no model '{sub}' (its models: {listed})"
    if Path(ref).expanduser().exists():
        return None
    stages = ", ".join(recipe.stages)
    if looks_like_hub_id(ref):
        return _hub_problem(ref, stages)
    return f"not a stage of this recipe ({stages}) and no such folder exists"


def _offline() -> bool:
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return bool(constants.HF_HUB_OFFLINE) or value in {"1", "true", "yes", "on"}


def _hub_problem(ref: str, stages: str) -> str | None:
    """None when ``ref`` is a hub model in the local cache or on the hub."""
    from huggingface_hub import repo_exists, try_to_load_from_cache

    if any(isinstance(try_to_load_from_cache(ref, f), str) for f in _HUB_FILES):
        return None
    where = f"not a stage of this recipe ({stages}), not a folder"
    if _offline():
        return f"{where}, and not in the local Hugging Face cache (HF_HUB_OFFLINE is set)"
    try:
        if repo_exists(ref):
            return None
    except Exception as err:  # no network, a proxy error: loading it would fail the same way
        return f"{where}, and the Hugging Face hub could not be reached to look it up ({err})"
    return f"{where}, and no model of that name on the Hugging Face hub"
