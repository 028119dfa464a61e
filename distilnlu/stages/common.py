"""What several stage kinds share: references, fresh models, held-out LM scoring, the
masked-LM training run (with its kept snapshots), and writing a finished stage folder."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from transformers import PreTrainedModel

from distilnlu.config import DistillStage, EvalConfig, PretrainStage, Recipe, dump_recipe
from distilnlu.data.corpus import heldout_texts, pretraining_batches
from distilnlu.distributed import barrier, is_main
from distilnlu.errors import ConfigError
from distilnlu.evaluation.lm import evaluate_lm
from distilnlu.faults import fault_point
from distilnlu.modeling.presets import ModelShape, build_model, count_parameters, resolve_shape
from distilnlu.rundir import (
    METRICS,
    RECIPE,
    SNAPSHOTS,
    LMEval,
    SnapshotMetrics,
    TrainedMetrics,
    atomic_dir,
    atomic_write,
    read_json,
    snapshot_folders,
    snapshot_name,
    write_json,
)
from distilnlu.supervised_config import ref_stage
from distilnlu.training.checkpoint import remove_checkpoints
from distilnlu.training.loop import LoopState, train_loop, trained_weights
from distilnlu.training.objectives import Objective, TrainedModule

LMStage = PretrainStage | DistillStage
Batches = Callable[[int], Iterator[torch.Tensor]]
"""``make(skip)``: a stage's endless ``[B, T]`` id-batch stream after ``skip`` batches."""


class Runner(Protocol):
    """What the pipeline calls for a stage: train/build it into ``out_dir``, return metrics."""

    def __call__(self, recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> Any: ...


def resolve_ref(recipe: Recipe, ref: str) -> str:
    """A stage name becomes its output folder, ``<stage>/<sub>`` a folder inside it (a model of
    a fine-tuning stage); anything else is a path or hub id as given."""
    if ref in recipe.stages or ref_stage(ref) in recipe.stages:
        return str(recipe.run_dir / ref)
    return ref


def write_stage_files(out_dir: Path, recipe: Recipe, metrics: Mapping[str, Any]) -> None:
    """The resolved recipe, then ``metrics.json``: written last, it marks the folder done."""
    fault_point("stage_saved")
    atomic_write(out_dir / RECIPE, dump_recipe(recipe))
    write_json(out_dir / METRICS, metrics)
    fault_point("metrics_written")


def build_fresh(
    shape_spec: str | ModelShape | None, tokenizer: Any, vocab_size: int, seq_len: int
) -> PreTrainedModel:
    """A freshly initialised model of a preset or shape, checked to hold ``seq_len`` tokens."""
    assert shape_spec is not None  # the stage config demands `model` when there is no `init`
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


# --------------------------------------------------------------------------- held-out LM scores


def score_texts(
    model: PreTrainedModel, tokenizer: Any, items: list[tuple[str, str]], cfg: EvalConfig
) -> LMEval:
    """Perplexity and mask-filling accuracy; per language, pooled when there are several."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for text, lang in items:
        by_lang[lang].append(text)
    results = {
        lang: evaluate_lm(
            model,
            tokenizer,
            texts,
            language=lang,
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
        )
        for lang, texts in by_lang.items()
    }
    if len(results) == 1:
        only: LMEval = next(iter(results.values()))  # type: ignore[assignment]
        return only
    # Pool by counts; a language with nothing scored reports NaN and must not poison the pool.
    scored = [r for r in results.values() if r["masked_tokens"]]
    filled_sets = [r for r in results.values() if r["mask_fill_n"]]
    tokens = int(sum(r["masked_tokens"] for r in scored))
    loss = sum(r["loss"] * r["masked_tokens"] for r in scored) / tokens if tokens else math.nan
    filled = int(sum(r["mask_fill_n"] for r in filled_sets))
    acc = sum(r["mask_fill_accuracy"] * r["mask_fill_n"] for r in filled_sets)
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "masked_tokens": tokens,
        "mask_fill_accuracy": acc / filled if filled else math.nan,
        "mask_fill_n": filled,
        "by_language": results,
    }


def make_evaluator(
    recipe: Recipe, stage: LMStage, tokenizer: Any
) -> Callable[[PreTrainedModel], dict[str, LMEval]] | None:
    """Held-out LM evaluation over the stage's eval corpora (texts loaded once)."""
    if not stage.eval.corpora:
        return None
    sets = {
        c: heldout_texts(recipe.data.corpora[c], recipe.data, stage.eval.max_texts, recipe.seed)
        for c in stage.eval.corpora
    }

    def evaluate(model: PreTrainedModel) -> dict[str, LMEval]:
        return {c: score_texts(model, tokenizer, items, stage.eval) for c, items in sets.items()}

    return evaluate


# --------------------------------------------------------------------------- masked-LM stages


def stage_batches(recipe: Recipe, stage: LMStage, tokenizer: Any) -> Batches:
    """``make(skip)``: the stage's deterministic batch stream after ``skip`` batches."""
    cfg = stage.training
    make = partial(
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
    return lambda skip: make(skip=skip)


def train_masked_lm(
    recipe: Recipe,
    name: str,
    out_dir: Path,
    stage_hash: str,
    *,
    module: TrainedModule,
    objective: Objective[torch.Tensor],
    make_batches: Batches,
    tokenizer: Any,
) -> LoopState:
    """Train a pretraining or distillation stage's ``module`` with held-out LM evaluation of
    the model it saves (``module.inner``); resumes from ``out_dir``'s checkpoint."""
    stage = recipe.stages[name]
    assert isinstance(stage, PretrainStage | DistillStage)
    evaluator = make_evaluator(recipe, stage, tokenizer)

    def evaluate(trained: torch.nn.Module) -> dict[str, LMEval]:
        assert evaluator is not None and isinstance(trained, TrainedModule)
        return evaluator(trained.inner)

    keeper = None
    if stage.keep_snapshots:
        assert evaluator is not None  # the config demands eval.corpora with keep_snapshots
        keeper = SnapshotKeeper(name, out_dir, stage.snapshot_steps, tokenizer, evaluator)
    out_dir.mkdir(parents=True, exist_ok=True)
    return train_loop(
        model=module,
        objective=objective,
        make_batches=make_batches,
        cfg=stage.training,
        out_dir=out_dir,
        seed=recipe.seed,
        evaluate=evaluate if evaluator else None,
        desc=name,
        state_extra={"stage_hash": stage_hash},
        on_step=keeper,
    )


class SnapshotKeeper:
    """Keeps the model at the given steps: ``<stage>/snapshots/step-NNNNNN/``, a save_pretrained
    folder with the tokenizer and ``metrics.json`` (held-out scores on the stage's eval corpora).

    Each folder is written whole under a temporary name and renamed into place
    (:func:`~distilnlu.rundir.atomic_dir`). The loop calls the keeper before the step's
    checkpoint, so a resumed run finds every snapshot up to its checkpoint; one it finds again
    (kept after the checkpoint, before a kill) is left as it is: resuming reproduces the same
    weights, and nothing is kept twice.
    """

    def __init__(
        self,
        stage: str,
        out_dir: Path,
        steps: list[int],
        tokenizer: Any,
        evaluate: Callable[[PreTrainedModel], dict[str, LMEval]],
    ) -> None:
        self.stage, self.out_dir, self.steps = stage, out_dir, frozenset(steps)
        self.tokenizer, self.evaluate = tokenizer, evaluate

    def __call__(
        self, state: LoopState, model: torch.nn.Module, evaluated: dict[str, Any] | None
    ) -> None:
        folder = self.out_dir / SNAPSHOTS / snapshot_name(state.step)
        if state.step not in self.steps or folder.is_dir() or not is_main():
            return
        assert isinstance(model, TrainedModule)
        # The loop's evaluation when it made one at this step: no second scoring, and the
        # schedule of a distill stage (which counts evaluations) is left alone.
        scores = evaluated if evaluated is not None else self.evaluate(model.inner)
        metrics: SnapshotMetrics = {
            "stage": self.stage,
            "step": state.step,
            "tokens": state.tokens,
            "eval": scores,
        }
        with atomic_dir(folder) as tmp:
            model.inner.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            write_json(tmp / METRICS, metrics)
            fault_point("snapshot_staged")


def kept_snapshots(out_dir: Path) -> list[SnapshotMetrics]:
    """The metrics of every complete snapshot in a stage folder, by step."""
    found = (read_json(folder / METRICS) for _, folder in snapshot_folders(out_dir))
    return [cast(SnapshotMetrics, m) for m in found if m is not None]


def finish_masked_lm(
    recipe: Recipe,
    name: str,
    out_dir: Path,
    model: PreTrainedModel,
    tokenizer: Any,
    state: LoopState,
    **extra: Any,
) -> TrainedMetrics:
    """Write the stage's ``save_pretrained`` folder and metrics.json; drop its checkpoint (the
    main process writes; every process returns the metrics)."""
    stage = recipe.stages[name]
    if isinstance(stage, PretrainStage | DistillStage) and stage.keep_snapshots:
        # From the folders, not memory: a resumed run kept the earlier ones in another process.
        extra["snapshots"] = kept_snapshots(out_dir)
    metrics = cast(
        TrainedMetrics,
        {  # `extra`: the keys of the stage kind (e.g. teachers)
            "stage": name,
            "steps": state.step,
            "tokens": state.tokens,
            "nonfinite_skipped": state.nonfinite_total,
            "parameters": count_parameters(model),
            # Without the LM head: what the fine-tuning tables count, so the report's two tables
            # give one encoder one size.
            "encoder_parameters": count_parameters(model.base_model),
            **extra,
            "eval": state.last_eval,
        },
    )
    if is_main():
        # A sharded engine (FSDP, DeepSpeed) gathered the trained weights into the loop state.
        model.save_pretrained(out_dir, state_dict=trained_weights(state, model))
        tokenizer.save_pretrained(out_dir)
        write_stage_files(out_dir, recipe, metrics)
        remove_checkpoints(out_dir)
    barrier()
    return metrics
