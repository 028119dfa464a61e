"""The ``finetune`` stage: every listed encoder × encoder mode, trained and evaluated (DESIGN §2).

Each model gets its own folder ``<stage>/<model>[-frozen]/`` with the fine-tuned model (HF
encoder + heads + label maps + tokenizer), its training curve (``metrics.jsonl``), predictions
on every evaluation set and ``metrics.json``. A model whose ``metrics.json`` exists is done: a
killed stage resumes with the next model (and the interrupted one from its checkpoint). The
stage's own ``metrics.json`` gathers all of them for the report.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from transformers import set_seed

from distilnlu.config import EvalConfig, FinetuneStage, Recipe, dump_recipe
from distilnlu.data.corpus import heldout_texts
from distilnlu.data.finetune import encode_nlu, encode_pairs, training_batches
from distilnlu.data.labeled import LabelVocab, load_labeled
from distilnlu.distributed import is_main
from distilnlu.evaluation.inference import evaluate_examples, latency_ms, primary_score
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder
from distilnlu.modeling.loading import is_masked_lm_folder, load_masked_lm, looks_like_hub_id
from distilnlu.modeling.presets import count_parameters
from distilnlu.stages import METRICS, resolve_ref, score_texts, write_json
from distilnlu.tokenization import load_tokenizer
from distilnlu.training.checkpoint import remove_checkpoints
from distilnlu.training.loop import train_loop
from distilnlu.training.objectives import ClassificationObjective, EarlyStopping

BEST = "best.safetensors"


def model_key(recipe: Recipe, ref: str, mode: str) -> str:
    """Folder name of a fine-tuned model: the stage name (or folder name), ``-frozen`` suffix."""
    base = ref if ref in recipe.stages else Path(ref.rstrip("/")).name.replace(" ", "_")
    return base if mode == "full" else f"{base}-frozen"


def load_sets(recipe: Recipe, stage: FinetuneStage) -> dict[str, list]:
    return {
        name: load_labeled(recipe.data.labeled[name], recipe.data.root, recipe.data.on_error)
        for name in stage.labeled_sets
    }


def build_labels(stage: FinetuneStage, train: list) -> LabelVocab:
    return LabelVocab.build_pairs(train) if stage.task == "pair" else LabelVocab.build(train)


def lm_metrics(source: str, items: list[tuple[str, str]]) -> dict[str, Any] | None:
    """Held-out perplexity and mask-filling accuracy of a masked-LM encoder (None otherwise)."""
    if not items or not (looks_like_hub_id(source) or is_masked_lm_folder(source)):
        return None
    result = score_texts(load_masked_lm(source), load_tokenizer(source), items, EvalConfig())
    keys = ("perplexity", "mask_fill_accuracy", "loss", "mask_fill_n")
    return {k: result[k] for k in keys}


def run_finetune(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> dict[str, Any]:
    stage = recipe.stages[name]
    assert isinstance(stage, FinetuneStage)
    sets = load_sets(recipe, stage)
    labels = build_labels(stage, sets[stage.train])
    lm_items = []
    if stage.lm_corpus:
        corpus = recipe.data.corpora[stage.lm_corpus]
        lm_items = heldout_texts(corpus, recipe.data, stage.lm_max_texts, recipe.seed)
    models: dict[str, Any] = {}
    lm_cache: dict[str, Any] = {}
    for ref in stage.models:
        for mode in stage.encoder:
            key = model_key(recipe, ref, mode)
            done = out_dir / key / METRICS
            if done.is_file():
                models[key] = json.loads(done.read_text())
                continue
            if ref not in lm_cache:
                lm_cache[ref] = lm_metrics(resolve_ref(recipe, ref), lm_items)
            run = FinetuneRun(recipe, stage, ref, mode, out_dir / key, sets, labels)
            models[key] = run.run(stage_hash, lm_cache[ref])
    metrics = {
        "stage": name,
        "task": stage.task,
        "baseline": stage.baseline,
        "lm_corpus": stage.lm_corpus,
        "dev": stage.dev,
        "primary": stage.test[0] if stage.test else stage.dev,
        "train_examples": len(sets[stage.train]),
        "labels": {"intents": len(labels.intents), "slot_tags": len(labels.slot_tags)},
        "models": models,
    }
    if is_main():
        (out_dir / "recipe.yaml").write_text(dump_recipe(recipe))
        write_json(out_dir / METRICS, metrics)
    return metrics


class FinetuneRun:
    """One encoder, one mode: build, train with early stopping, evaluate, save."""

    def __init__(
        self, recipe, stage: FinetuneStage, ref: str, mode: str, out_dir: Path, sets, labels
    ):
        self.recipe, self.stage, self.ref, self.mode = recipe, stage, ref, mode
        self.out_dir, self.sets, self.labels = out_dir, sets, labels
        self.source = resolve_ref(recipe, ref)
        self.tokenizer = load_tokenizer(self.source)

    def build(self) -> EncoderClassifier:
        set_seed(self.recipe.seed)  # the same heads for every encoder of one width
        model = EncoderClassifier(
            load_encoder(self.source),
            self.labels,
            task=self.stage.task,
            pooling=self.stage.pooling,
            dropout=self.stage.dropout,
        )
        if self.mode == "frozen":
            model.freeze_encoder()
        return model

    def encode(self, examples: list) -> list:
        encode = encode_pairs if self.stage.task == "pair" else encode_nlu
        return encode(examples, self.tokenizer, self.labels, self.stage.max_length)

    def evaluate(self, model, set_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        stage = self.stage
        return evaluate_examples(
            model, self.sets[set_name], self.tokenizer, stage.max_length, stage.eval_batch_size
        )

    def run(self, stage_hash: str, lm: dict[str, Any] | None) -> dict[str, Any]:
        stage, out_dir = self.stage, self.out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        model = self.build()
        cfg = stage.training
        if self.mode == "frozen" and stage.frozen_lr:
            cfg = cfg.model_copy(update={"lr": stage.frozen_lr})
        train_items = self.encode(self.sets[stage.train])
        stopper = EarlyStopping(stage.patience)
        objective = ClassificationObjective(
            stage.slot_weight, stopper, primary_score, on_best=lambda step: self.keep_best(model)
        )
        state = train_loop(
            model=model,
            objective=objective,
            make_batches=lambda skip: training_batches(
                train_items,
                batch_size=cfg.batch_size,
                seed=self.recipe.seed,
                pad_id=self.tokenizer.pad_token_id,
                with_slots=stage.task == "intent_slot",
                skip=skip,
            ),
            cfg=cfg,
            out_dir=out_dir,
            seed=self.recipe.seed,
            evaluate=lambda m: {"dev": self.evaluate(m, stage.dev)[0]},
            desc=out_dir.name,
            state_extra={"stage_hash": stage_hash, "model": out_dir.name},
        )
        if (out_dir / BEST).is_file():
            model.load_state_dict(load_file(str(out_dir / BEST)))
        return self.finish(model, state, stopper, lm, time.perf_counter() - start)

    def keep_best(self, model) -> None:
        """Write the best weights so far (atomically; main process only)."""
        if not is_main():
            return
        tmp = self.out_dir / (BEST + ".tmp")
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp))
        os.replace(tmp, self.out_dir / BEST)

    def finish(self, model, state, stopper, lm, seconds: float) -> dict[str, Any]:
        """Evaluate the best weights on dev and every test set, time them, save everything.

        ``seconds`` is the training time; ``eval_seconds`` the scoring of the sets that follows.
        """
        stage, out_dir = self.stage, self.out_dir
        start = time.perf_counter()
        evaluations, predictions = {}, {}
        for set_name in dict.fromkeys([stage.dev, *stage.test]):
            evaluations[set_name], predictions[set_name] = self.evaluate(model, set_name)
        texts = [_text(ex) for ex in self.sets[stage.dev][: stage.latency_texts]]
        model.to("cpu")  # latency is a CPU figure, whatever device trained the model
        metrics = {
            "source": self.ref,
            "encoder": self.mode,
            "folder": str(out_dir),
            "parameters": count_parameters(model.encoder),
            "lm": lm,
            "steps": state.step,
            "best_step": stopper.best_step,
            "seconds": round(seconds, 1),
            "eval_seconds": round(time.perf_counter() - start, 1),
            "eval": evaluations,
            "latency_ms": latency_ms(model, self.tokenizer, texts, stage.max_length),
        }
        if is_main():  # one writer under a multi-process launch
            for set_name, rows in predictions.items():
                write_jsonl(out_dir / f"predictions-{set_name}.jsonl", rows)
            model.save_pretrained(
                out_dir, extra={"source": self.ref, "max_length": stage.max_length}
            )
            self.tokenizer.save_pretrained(out_dir)
            write_json(out_dir / METRICS, metrics)
            remove_checkpoints(out_dir)
            (out_dir / BEST).unlink(missing_ok=True)
        return metrics


def _text(example) -> str | tuple[str, str]:
    return example.text if hasattr(example, "text") else (example.premise, example.hypothesis)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
