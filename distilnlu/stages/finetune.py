"""The ``finetune`` stage: every listed encoder × encoder mode, trained and evaluated (DESIGN §2).

Each model gets its own folder ``<stage>/<model>[-frozen]/`` with the fine-tuned model (HF
encoder + heads + label maps + tokenizer), its training curve (``metrics.jsonl``), predictions
on every evaluation set and ``metrics.json``. A model whose ``metrics.json`` exists is done: a
killed stage resumes with the next model (and the interrupted one from its checkpoint). The
stage's own ``metrics.json`` gathers all of them for the report.

With ``snapshots`` set, every snapshot that the named LM stages kept is fine-tuned briefly and
scored on dev (:class:`SnapshotRun`), one small folder each under ``<stage>/snapshots/``,
resumed the same way.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, cast

from safetensors.torch import load_file, save_file
from transformers import set_seed

from distilnlu.config import EvalConfig, FinetuneStage, Recipe, SupervisedStage, TrainingConfig
from distilnlu.data.corpus import heldout_texts
from distilnlu.data.finetune import Encoded, training_batches
from distilnlu.data.labeled import LabelVocab, load_labeled, unseen_labels
from distilnlu.distributed import is_main, world_size
from distilnlu.evaluation.decoding import TagPrior, tune_prior
from distilnlu.evaluation.inference import latency_ms, score_items
from distilnlu.evaluation.metrics import exact_match, slot_prf
from distilnlu.faults import fault_point
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder
from distilnlu.modeling.loading import is_masked_lm_folder, load_masked_lm, looks_like_hub_id
from distilnlu.modeling.presets import count_parameters
from distilnlu.rundir import (
    BEST_WEIGHTS,
    METRICS,
    SNAPSHOTS,
    FinetuneMetrics,
    ModelMetrics,
    SnapshotScore,
    atomic_path,
    predictions_file,
    read_json,
    snapshot_folders,
    write_json,
    write_jsonl,
)
from distilnlu.stages.common import resolve_ref, score_texts, write_stage_files
from distilnlu.tasks import Evaluation, Task, task_named
from distilnlu.tokenization import load_tokenizer
from distilnlu.training.checkpoint import remove_checkpoints
from distilnlu.training.loop import LoopState, train_loop
from distilnlu.training.objectives import ClassificationObjective, EarlyStopping

logger = logging.getLogger(__name__)
Sets = dict[str, list[Any]]


def model_key(recipe: Recipe, ref: str, mode: str) -> str:
    """Folder name of a fine-tuned model: the stage name (or folder name), ``-frozen`` suffix."""
    base = ref if ref in recipe.stages else Path(ref.rstrip("/")).name.replace(" ", "_")
    return base if mode == "full" else f"{base}-frozen"


def load_sets(recipe: Recipe, stage: SupervisedStage) -> Sets:
    return {
        name: load_labeled(recipe.data.labeled[name], recipe.data.root, recipe.data.on_error)
        for name in stage.labeled_sets
    }


def lm_metrics(source: str, items: list[tuple[str, str]]) -> dict[str, Any] | None:
    """Held-out perplexity and mask-filling accuracy of a masked-LM encoder (None otherwise)."""
    if not items or not (looks_like_hub_id(source) or is_masked_lm_folder(source)):
        return None
    result = score_texts(load_masked_lm(source), load_tokenizer(source), items, EvalConfig())
    keys = ("perplexity", "mask_fill_accuracy", "loss", "mask_fill_n")
    return {k: result[k] for k in keys}  # type: ignore[literal-required]


def run(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> FinetuneMetrics:
    stage = recipe.stages[name]
    assert isinstance(stage, FinetuneStage)
    task = task_named(stage.task)
    sets = load_sets(recipe, stage)
    labels = task.build_labels(sets[stage.train])
    warn_unseen(stage, sets, labels)
    lm_items = []
    if stage.lm_corpus:
        corpus = recipe.data.corpora[stage.lm_corpus]
        lm_items = heldout_texts(corpus, recipe.data, stage.lm_max_texts, recipe.seed)
    models: dict[str, ModelMetrics] = {}
    lm_cache: dict[str, Any] = {}
    for ref in stage.models:
        for mode in stage.encoder:
            key = model_key(recipe, ref, mode)
            done = out_dir / key / METRICS
            if done.is_file():
                models[key] = json.loads(done.read_text())
                drop_training_files(out_dir / key)  # what a kill after its metrics left
                continue
            if ref not in lm_cache:
                lm_cache[ref] = lm_metrics(resolve_ref(recipe, ref), lm_items)
            run = FinetuneRun(recipe, stage, task, ref, mode, out_dir / key, sets, labels)
            models[key] = run.run(stage_hash, lm_cache[ref])
    metrics: FinetuneMetrics = {
        "stage": name,
        "task": task.name,
        "baseline": stage.baseline,
        "lm_corpus": stage.lm_corpus,
        "dev": stage.dev,
        "primary": stage.test[0] if stage.test else stage.dev,
        "train_examples": len(sets[stage.train]),
        "labels": {"intents": len(labels.intents), "slot_tags": len(labels.slot_tags)},
        "models": models,
    }
    if stage.snapshots is not None:
        scores = score_snapshots(recipe, stage, task, out_dir, sets, labels, stage_hash)
        metrics["snapshots"] = scores
    if is_main():
        write_stage_files(out_dir, recipe, metrics)
    return metrics


def score_snapshots(
    recipe: Recipe,
    stage: FinetuneStage,
    task: Task,
    out_dir: Path,
    sets: Sets,
    labels: LabelVocab,
    stage_hash: str,
) -> dict[str, list[SnapshotScore]]:
    """Each kept snapshot of the ``snapshots.stages``, fine-tuned briefly and scored on dev; a
    snapshot whose score folder has its ``metrics.json`` is read back, not trained again."""
    assert stage.snapshots is not None
    budget = stage.snapshots.max_steps
    # Dev once, at the end of the budget: a score per snapshot, no model selection to pay for.
    short = stage.training.model_copy(
        update={"max_steps": budget, "epochs": None, "eval_every": budget}
    )
    scoring = stage.model_copy(update={"training": short})
    scores: dict[str, list[SnapshotScore]] = {}
    for lm_stage in stage.snapshots.stages:
        rows: list[SnapshotScore] = []
        for _, folder in snapshot_folders(recipe.run_dir / lm_stage):
            score_dir = out_dir / SNAPSHOTS / lm_stage / folder.name
            done = read_json(score_dir / METRICS)
            if done is not None:
                rows.append(cast(SnapshotScore, done))
                drop_training_files(score_dir)  # what a kill after its metrics left
                continue
            ref = f"{lm_stage}/{SNAPSHOTS}/{folder.name}"  # resolves inside the stage's folder
            run = SnapshotRun(recipe, scoring, task, ref, "full", score_dir, sets, labels)
            rows.append(run.score(stage_hash))
        scores[lm_stage] = rows
    return scores


def warn_unseen(stage: SupervisedStage, sets: Sets, labels: LabelVocab) -> None:
    """One warning per evaluated set whose labels the training set lacks (the accuracy ceiling
    they put there), said once for the stage rather than for every model."""
    for set_name in dict.fromkeys([stage.dev, *stage.test]):
        message = unseen_labels(sets[set_name], labels)
        if message:
            logger.warning("warning: labeled set '%s': %s", set_name, message)


def drop_training_files(model_dir: Path) -> None:
    """A finished model's checkpoints and best-weights file (main process)."""
    if is_main():
        remove_checkpoints(model_dir)
        (model_dir / BEST_WEIGHTS).unlink(missing_ok=True)


class FinetuneRun:
    """One encoder, one mode: build, train with early stopping, evaluate, save."""

    def __init__(
        self,
        recipe: Recipe,
        stage: SupervisedStage,
        task: Task,
        ref: str,
        mode: str,
        out_dir: Path,
        sets: Sets,
        labels: LabelVocab,
    ) -> None:
        self.recipe, self.stage, self.task, self.ref, self.mode = recipe, stage, task, ref, mode
        self.out_dir, self.sets, self.labels = out_dir, sets, labels
        self.source = resolve_ref(recipe, ref)
        self.row_source = ref  # what the report ranks and labels the model's row by
        self.tokenizer = load_tokenizer(self.source)

    def build(self) -> EncoderClassifier:
        set_seed(self.recipe.seed)  # the same heads for every encoder of one width
        model = EncoderClassifier(
            load_encoder(self.source),
            self.labels,
            task=self.task,
            pooling=self.stage.pooling,
            dropout=self.stage.dropout,
        )
        if self.mode == "frozen":
            model.freeze_encoder()
        return model

    def encode(self, examples: list[Any]) -> list[Encoded]:
        return self.task.encode(examples, self.tokenizer, self.labels, self.stage.max_length)

    def evaluate(self, model: EncoderClassifier, set_name: str) -> Evaluation:
        stage = self.stage
        return self.task.evaluate(
            model, self.sets[set_name], self.tokenizer, stage.max_length, stage.eval_batch_size
        )

    def run(self, stage_hash: str, lm: dict[str, Any] | None) -> ModelMetrics:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        model = self.build()
        stopper = EarlyStopping(self.stage.patience, self.stage.min_delta)
        state = self.train(model, stopper, stage_hash)
        if (self.out_dir / BEST_WEIGHTS).is_file():
            model.load_state_dict(load_file(str(self.out_dir / BEST_WEIGHTS)))
        return self.finish(model, state, stopper, lm, time.perf_counter() - start)

    def train(self, model: EncoderClassifier, stopper: EarlyStopping, stage_hash: str) -> LoopState:
        """Fine-tune ``model`` with early stopping on dev (resuming a killed run)."""
        stage = self.stage
        train_items = self.encode(self.sets[stage.train])
        cfg = self.training_config(len(train_items))
        objective = ClassificationObjective(
            stage.slot_weight, stopper, self.task.score, on_best=lambda step: self.keep_best(model)
        )
        return train_loop(
            model=model,
            objective=objective,
            make_batches=lambda skip: training_batches(
                train_items,
                batch_size=cfg.batch_size,
                seed=self.recipe.seed,
                pad_id=self.tokenizer.pad_token_id,
                with_slots=self.task.has_slots,
                skip=skip,
            ),
            cfg=cfg,
            out_dir=self.out_dir,
            seed=self.recipe.seed,
            evaluate=lambda _: {"dev": self.evaluate(model, stage.dev)[0]},
            desc=self.out_dir.name,
            state_extra={"stage_hash": stage_hash, "model": self.out_dir.name},
        )

    def training_config(self, n_train: int) -> TrainingConfig:
        """The stage's training settings with the step budget resolved (epochs → steps)."""
        cfg = self.stage.training
        frozen_lr = self.stage.frozen_lr if isinstance(self.stage, FinetuneStage) else None
        if self.mode == "frozen" and frozen_lr:
            cfg = cfg.model_copy(update={"lr": frozen_lr})
        # One optimizer step takes a micro-batch from every process.
        per_epoch = math.ceil(math.ceil(n_train / cfg.batch_size) / world_size())
        return cfg.for_epochs(per_epoch)

    def extra_metrics(self) -> dict[str, Any]:
        """Keys a subclass adds to the model's ``metrics.json``."""
        return {}

    def keep_best(self, model: EncoderClassifier) -> None:
        """Write the best weights so far (atomically; main process only)."""
        if not is_main():
            return
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_path(self.out_dir / BEST_WEIGHTS) as tmp:
            save_file(state, str(tmp))

    def tune_slot_prior(self, model: EncoderClassifier) -> dict[str, Any]:
        """Give ``model`` the training set's tag prior at the weight best on dev under
        ``slot_prior_metric`` (see :func:`tune_prior`); what was measured, for metrics.json."""
        stage, labels = self.stage, self.labels
        tags = labels.slot_tags
        train = [[labels.tag_id(t) for t in ex.tags] for ex in self.sets[stage.train]]
        counts = TagPrior.count((s for s in train if -1 not in s), len(tags))
        dev = self.sets[stage.dev]
        items = self.encode(dev)
        pad = self.tokenizer.pad_token_id
        intent_ids, _, scores = score_items(model, items, stage.eval_batch_size, pad)
        assert scores is not None  # a slot task's model has a slot head
        gold = [list(ex.tags) for ex in dev]
        gold_intents = [ex.intent for ex in dev]
        intents = [labels.intents[i] for i in intent_ids]

        def metric(predicted: list[list[str]]) -> float:
            if stage.slot_prior_metric == "exact_match":
                return exact_match(gold_intents, intents, gold, predicted)
            return slot_prf(gold, predicted)["f1"]

        starts = [it.word_starts for it in items]
        model.slot_prior, dev_scores = tune_prior(counts, tags, scores, starts, metric)
        return {
            "weight": model.slot_prior.weight,
            "metric": stage.slot_prior_metric,
            "dev": dev_scores,
        }

    def finish(
        self,
        model: EncoderClassifier,
        state: LoopState,
        stopper: EarlyStopping,
        lm: dict[str, Any] | None,
        seconds: float,
    ) -> ModelMetrics:
        """Evaluate the best weights on dev and every test set, time them, save everything.

        ``seconds`` is the training time; ``eval_seconds`` the scoring of the sets that follows.
        """
        stage, out_dir = self.stage, self.out_dir
        start = time.perf_counter()
        prior = self.tune_slot_prior(model) if self.task.has_slots and stage.slot_prior else None
        evaluations, predictions = {}, {}
        for set_name in dict.fromkeys([stage.dev, *stage.test]):
            evaluations[set_name], predictions[set_name] = self.evaluate(model, set_name)
        texts = [self.task.text(ex) for ex in self.sets[stage.dev][: stage.latency_texts]]
        model.to("cpu")  # latency is a CPU figure, whatever device trained the model
        metrics: ModelMetrics = {
            "source": self.row_source,
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
            **self.extra_metrics(),  # type: ignore[typeddict-item]
        }
        if prior is not None:
            metrics["slot_prior"] = prior
        if is_main():  # one writer under a multi-process launch
            for set_name, rows in predictions.items():
                write_jsonl(out_dir / predictions_file(set_name), rows)
            model.save_pretrained(
                out_dir, extra={"source": self.ref, "max_length": stage.max_length}
            )
            self.tokenizer.save_pretrained(out_dir)
            fault_point("stage_saved")
            write_json(out_dir / METRICS, metrics)
            fault_point("metrics_written")
            drop_training_files(out_dir)
        return metrics


class SnapshotRun(FinetuneRun):
    """One kept snapshot of an LM stage, fine-tuned (whole encoder) for the short budget of the
    stage's ``snapshots`` and scored once on dev, as it is during training (no slot prior).

    Only the score is kept (``metrics.json``, and the curve in ``metrics.jsonl``): the weights
    matter only for the number, and a run keeps many snapshots.
    """

    def keep_best(self, model: EncoderClassifier) -> None:
        return  # dev is scored once, at the end: the final weights are the scored ones

    def score(self, stage_hash: str) -> SnapshotScore:
        start = time.perf_counter()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        model = self.build()
        state = self.train(model, EarlyStopping(self.stage.patience), stage_hash)
        snapshot = read_json(Path(self.source) / METRICS) or {}
        keys = ("perplexity", "mask_fill_accuracy")
        score: SnapshotScore = {
            "stage": str(snapshot.get("stage", self.ref.partition("/")[0])),
            "step": int(snapshot.get("step", 0)),
            "lm": {
                corpus: {k: ev[k] for k in keys if k in ev}
                for corpus, ev in (snapshot.get("eval") or {}).items()
            },
            "metric": self.task.primary[0],
            "dev": state.last_eval.get("dev", {}),
            "steps": state.step,
            "seconds": round(time.perf_counter() - start, 1),
        }
        if is_main():
            write_json(self.out_dir / METRICS, score)
            drop_training_files(self.out_dir)
        return score
