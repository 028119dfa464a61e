"""Run one stage of a recipe into its output folder.

Each stage writes a ``save_pretrained`` folder (model and/or tokenizer), the resolved recipe
(``recipe.yaml``) and ``metrics.json``; ``metrics.json`` is written last and marks the stage done.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from distilnlu.config import (
    DistillStage,
    EvalConfig,
    FinetuneStage,
    PretrainStage,
    Recipe,
    TokenizerStage,
    dump_recipe,
)
from distilnlu.data.corpus import (
    apply_spoken_share,
    first_documents,
    heldout_texts,
    pretraining_batches,
)
from distilnlu.distributed import barrier, is_main
from distilnlu.errors import ConfigError
from distilnlu.evaluation.lm import evaluate_lm
from distilnlu.modeling.loading import load_masked_lm
from distilnlu.modeling.presets import build_model, count_parameters, resolve_shape
from distilnlu.tokenization import (
    fertility_report,
    format_report,
    load_tokenizer,
    measure_fertility,
    train_tokenizer,
)
from distilnlu.training.checkpoint import remove_checkpoints
from distilnlu.training.loop import train_loop, trained_weights
from distilnlu.training.objectives import MaskedLMModel, MLMObjective
from distilnlu.training.unigram import init_output_bias

METRICS = "metrics.json"


def resolve_ref(recipe: Recipe, ref: str) -> str:
    """A stage name becomes its output folder; anything else is a path or hub id as given."""
    if ref in recipe.stages:
        return str(recipe.run_dir / ref)
    return ref


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- tokenizer


def tokenizer_training_texts(recipe: Recipe, stage: TokenizerStage) -> list[str]:
    """Documents from each corpus (equal share of ``max_texts``), with its spoken-form share."""
    per_corpus = max(1, stage.max_texts // max(1, len(stage.corpora)))
    texts: list[str] = []
    for i, name in enumerate(stage.corpora):
        corpus = recipe.data.corpora[name]
        docs = first_documents(corpus, recipe.data, per_corpus)
        texts.extend(d.text for d in apply_spoken_share(docs, corpus.spoken_share, recipe.seed + i))
    return texts


def report_texts(recipe: Recipe, stage: TokenizerStage, limit: int = 2000) -> dict[str, list[str]]:
    """Held-out texts per language for the fertility report."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for name in stage.report_corpora:
        for text, lang in heldout_texts(recipe.data.corpora[name], recipe.data, limit, recipe.seed):
            by_lang[lang].append(text)
    return dict(by_lang)


def run_tokenizer(recipe: Recipe, name: str, out_dir: Path) -> dict[str, Any]:
    stage = recipe.stages[name]
    assert isinstance(stage, TokenizerStage)
    out_dir.mkdir(parents=True, exist_ok=True)
    if stage.pretrained:
        tokenizer = load_tokenizer(stage.pretrained)
        texts: list[str] = []
    else:
        texts = tokenizer_training_texts(recipe, stage)
        tokenizer = train_tokenizer(texts, stage.vocab_size, show_progress=False)
    metrics: dict[str, Any] = {"stage": name, "vocab_size": len(tokenizer)}
    metrics["trained_on"] = len(texts)
    if stage.report_corpora and texts:
        rows = measure_fertility(tokenizer, report_texts(recipe, stage), stage.vocab_size)
        metrics["fertility"] = [row.__dict__ for row in rows]
    if is_main():  # every process trained the same tokenizer; one writes it
        tokenizer.save_pretrained(out_dir)
        (out_dir / "recipe.yaml").write_text(dump_recipe(recipe))
        write_json(out_dir / METRICS, metrics)
    barrier()
    return metrics


def tokenizer_report(recipe: Recipe, name: str, vocab_sizes: list[int]) -> str:
    """Fertility and unknown rate per language for candidate vocabulary sizes."""
    stage = recipe.stages[name]
    if not isinstance(stage, TokenizerStage):
        raise ConfigError(f"stage '{name}' is not a tokenizer stage")
    sizes = vocab_sizes or stage.report_vocab_sizes or [stage.vocab_size]
    eval_texts = report_texts(recipe, stage)
    if not eval_texts:
        raise ConfigError(f"stage '{name}' has no report_corpora to measure fertility on")
    rows = fertility_report(tokenizer_training_texts(recipe, stage), eval_texts, sizes)
    return format_report(rows)


# --------------------------------------------------------------------------- pretraining


def build_fresh(shape_spec, tokenizer, vocab_size: int, seq_len: int):
    """A freshly initialised model of a preset or shape, checked to hold ``seq_len`` tokens."""
    shape = resolve_shape(shape_spec)
    if shape.max_position_embeddings < seq_len + 2:
        raise ConfigError(
            f"training.seq_len={seq_len} needs max_position_embeddings >="
            f" {seq_len + 2} (the model has {shape.max_position_embeddings})"
        )
    return build_model(
        shape,
        vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def build_or_load(recipe: Recipe, stage: PretrainStage):
    """(model, tokenizer) for a pretraining stage: a fresh preset model or a loaded checkpoint."""
    if stage.init:
        source = resolve_ref(recipe, stage.init)
        model = load_masked_lm(source)
        has_tok = Path(source, "tokenizer_config.json").is_file() or not Path(source).exists()
        tokenizer = load_tokenizer(source if has_tok else resolve_ref(recipe, stage.tokenizer))
        return model, tokenizer
    if not stage.tokenizer:
        raise ConfigError("a stage that trains from scratch needs `tokenizer`")
    tokenizer = load_tokenizer(resolve_ref(recipe, stage.tokenizer))
    model = build_fresh(stage.model, tokenizer, len(tokenizer), stage.training.seq_len)
    return model, tokenizer


def make_evaluator(
    recipe: Recipe, stage: PretrainStage | DistillStage, tokenizer
) -> Callable[[torch.nn.Module], dict[str, Any]] | None:
    """Held-out LM evaluation over the stage's eval corpora (texts loaded once)."""
    if not stage.eval.corpora:
        return None
    sets = {
        c: heldout_texts(recipe.data.corpora[c], recipe.data, stage.eval.max_texts, recipe.seed)
        for c in stage.eval.corpora
    }

    def evaluate(model: torch.nn.Module) -> dict[str, Any]:
        return {c: score_texts(model, tokenizer, items, stage.eval) for c, items in sets.items()}

    return evaluate


def score_texts(model, tokenizer, items: list[tuple[str, str]], cfg: EvalConfig) -> dict:
    """Perplexity and mask-filling accuracy; per language, pooled when there are several."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for text, lang in items:
        by_lang[lang].append(text)
    kwargs = dict(max_length=cfg.max_length, batch_size=cfg.batch_size, seed=cfg.seed)
    results = {
        lang: evaluate_lm(model, tokenizer, texts, language=lang, **kwargs)
        for lang, texts in by_lang.items()
    }
    if len(results) == 1:
        return next(iter(results.values()))
    # Pool by counts; a language with nothing scored reports NaN and must not poison the pool.
    scored = [r for r in results.values() if r["masked_tokens"]]
    filled_sets = [r for r in results.values() if r["mask_fill_n"]]
    tokens = sum(r["masked_tokens"] for r in scored)
    loss = sum(r["loss"] * r["masked_tokens"] for r in scored) / tokens if tokens else math.nan
    filled = sum(r["mask_fill_n"] for r in filled_sets)
    acc = sum(r["mask_fill_accuracy"] * r["mask_fill_n"] for r in filled_sets)
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "masked_tokens": tokens,
        "mask_fill_accuracy": acc / filled if filled else math.nan,
        "mask_fill_n": filled,
        "by_language": results,
    }


def run_pretrain(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> dict[str, Any]:
    stage = recipe.stages[name]
    assert isinstance(stage, PretrainStage)
    set_seed(recipe.seed)
    model, tokenizer = build_or_load(recipe, stage)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = stage.training
    make_batches = stage_batches(recipe, stage, tokenizer)
    objective = MLMObjective(tokenizer, stage.masking, stage.training.packing == "isolated")
    if stage.model is not None:  # a fresh model: start its output bias at the unigram
        init_output_bias(model, objective, make_batches(skip=0), recipe.seed + 1)
    evaluator = make_evaluator(recipe, stage, tokenizer)
    state = train_loop(
        model=MaskedLMModel(model),
        objective=objective,
        make_batches=lambda skip: make_batches(skip=skip),
        cfg=cfg,
        out_dir=out_dir,
        seed=recipe.seed,
        evaluate=(lambda wrapper: evaluator(wrapper.model)) if evaluator else None,
        desc=name,
        state_extra={"stage_hash": stage_hash},
    )
    weights = trained_weights(state, "model.")  # MaskedLMModel keeps the masked LM as .model
    return finish_stage(recipe, name, out_dir, model, tokenizer, state, weights)


def stage_batches(recipe: Recipe, stage: PretrainStage | DistillStage, tokenizer):
    """``make(skip=n)``: the stage's deterministic batch stream after ``n`` batches."""
    cfg = stage.training
    return partial(
        pretraining_batches,
        recipe.data,
        stage.data,
        tokenizer,
        seq_len=cfg.seq_len,
        batch_size=cfg.batch_size,
        seed=recipe.seed,
        shuffle_buffer=cfg.shuffle_buffer,
        isolate=cfg.packing == "isolated",
    )


def finish_stage(
    recipe: Recipe,
    name: str,
    out_dir: Path,
    model,
    tokenizer,
    state,
    weights: dict[str, torch.Tensor] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the stage's ``save_pretrained`` folder and metrics.json; drop its checkpoint (the
    main process writes; every process returns the metrics)."""
    metrics = {
        "stage": name,
        "steps": state.step,
        "tokens": state.tokens,
        "nonfinite_skipped": state.nonfinite_total,
        "parameters": count_parameters(model),
        **extra,
        "eval": state.last_eval,
    }
    if is_main():
        # A sharded engine (FSDP, DeepSpeed) gathered the trained weights into the loop state.
        model.save_pretrained(out_dir, state_dict=weights)
        tokenizer.save_pretrained(out_dir)
        (out_dir / "recipe.yaml").write_text(dump_recipe(recipe))
        write_json(out_dir / METRICS, metrics)
        remove_checkpoints(out_dir)
    barrier()
    return metrics


def run_stage(recipe: Recipe, name: str, stage_hash: str) -> dict[str, Any]:
    out_dir = recipe.run_dir / name
    stage = recipe.stages[name]
    if isinstance(stage, TokenizerStage):
        return run_tokenizer(recipe, name, out_dir)
    if isinstance(stage, DistillStage):
        from distilnlu.distill_stage import run_distill

        return run_distill(recipe, name, out_dir, stage_hash)
    if isinstance(stage, FinetuneStage):
        from distilnlu.finetune_stage import run_finetune

        return run_finetune(recipe, name, out_dir, stage_hash)
    return run_pretrain(recipe, name, out_dir, stage_hash)
