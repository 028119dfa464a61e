"""The ``pretrain`` stage: masked-LM pretraining from scratch or continued (DESIGN.md §2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, set_seed

from distilnlu.config import PretrainStage, Recipe
from distilnlu.errors import ConfigError
from distilnlu.modeling.loading import load_masked_lm
from distilnlu.modeling.varlen import saved_attention, training_attention
from distilnlu.rundir import TrainedMetrics
from distilnlu.stages.common import (
    build_fresh,
    finish_masked_lm,
    resolve_ref,
    stage_batches,
    train_masked_lm,
)
from distilnlu.tokenization import load_tokenizer
from distilnlu.training.objectives import MaskedLMModel, MLMObjective
from distilnlu.training.unigram import init_output_bias


def build_or_load(recipe: Recipe, stage: PretrainStage) -> tuple[PreTrainedModel, Any]:
    """(model, tokenizer) for a pretraining stage: a fresh preset model or a loaded checkpoint."""
    if stage.init:
        source = resolve_ref(recipe, stage.init)
        model = load_masked_lm(source)
        has_tok = Path(source, "tokenizer_config.json").is_file() or not Path(source).exists()
        if not has_tok:
            if not stage.tokenizer:
                raise ConfigError(f"`init: {stage.init}` has no tokenizer: set `tokenizer`")
            source = resolve_ref(recipe, stage.tokenizer)
        return model, load_tokenizer(source)
    if not stage.tokenizer:
        raise ConfigError("a stage that trains from scratch needs `tokenizer`")
    tokenizer = load_tokenizer(resolve_ref(recipe, stage.tokenizer))
    model = build_fresh(stage.model, tokenizer, len(tokenizer), stage.training.seq_len)
    return model, tokenizer


def run(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> TrainedMetrics:
    stage = recipe.stages[name]
    assert isinstance(stage, PretrainStage)
    set_seed(recipe.seed)
    model, tokenizer = build_or_load(recipe, stage)
    make_batches = stage_batches(recipe, stage, tokenizer)
    objective = MLMObjective(tokenizer, stage.masking, stage.training.packing == "isolated")
    if stage.model is not None:  # a fresh model: start its output bias at the unigram
        init_output_bias(model, objective, make_batches(0), recipe.seed + 1)
    training_attention(model, stage.training.attention)
    state = train_masked_lm(
        recipe,
        name,
        out_dir,
        stage_hash,
        module=MaskedLMModel(model),
        objective=objective,
        make_batches=make_batches,
        tokenizer=tokenizer,
    )
    saved_attention(model)
    return finish_masked_lm(recipe, name, out_dir, model, tokenizer, state)
