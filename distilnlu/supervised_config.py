"""Config of the stages that train on labeled data: ``finetune`` and ``task_distill``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distilnlu.config_base import StrictModel, TrainingConfig
from distilnlu.tasks import TaskName


def ref_stage(ref: str) -> str:
    """The stage a reference reads: ``final`` → ``final``, ``finetune/teacher`` → ``finetune``
    (a model folder inside a stage's output). Paths and hub ids come back unchanged."""
    return ref.partition("/")[0] if "/" in ref else ref


class SupervisedStage(StrictModel):
    """What fine-tuning and task-aware distillation share: labeled sets, heads, early stopping."""

    train: str = Field(description="Labeled set (data.labeled) to train on.")
    dev: str = Field(description="Labeled set for evaluation during training and early stopping.")
    test: list[str] = Field(
        default_factory=list,
        description="Labeled sets scored with the best checkpoint; the first is the primary one.",
    )
    max_length: int = Field(64, ge=8, description="Tokens per utterance (pair) incl. specials.")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="Sentence vector for the intent/pair head: mean of tokens or <s>."
    )
    slot_weight: float = Field(1.0, ge=0.0, description="Weight of the slot loss (intent: 1).")
    slot_prior: bool = Field(
        True,
        description="Decode slots with the training set's tag-bigram prior, weighted by the"
        " weight (0 to 1) best on dev (slot_prior_metric); false: constrained decoding alone.",
    )
    slot_prior_metric: Literal["slot_f1", "exact_match"] = Field(
        "slot_f1", description="The dev metric the slot prior's weight is chosen on."
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the heads.")
    patience: int = Field(5, ge=1, description="Evaluations without dev improvement = stop.")
    min_delta: float = Field(
        0.0,
        ge=0.0,
        description="Dev gain of the primary score (a fraction: 0.002 = 0.2 points) at or below"
        " which an evaluation counts as no improvement for `patience`; the best weights are"
        " kept whatever the gain.",
    )
    eval_batch_size: int = Field(64, gt=0, description="Batch size of evaluation.")
    latency_texts: int = Field(
        100, ge=0, description="Dev utterances timed one by one on one thread (0: skip)."
    )
    training: TrainingConfig

    @property
    def labeled_sets(self) -> list[str]:
        return list(dict.fromkeys([self.train, self.dev, *self.test]))


class SnapshotScoring(StrictModel):
    """Downstream scores of the snapshots an LM stage kept (its ``keep_snapshots``): each one
    fine-tuned briefly, whole encoder, on the stage's ``train`` set and scored once on ``dev``.
    The report plots them against the snapshots' held-out metrics (FitzGerald et al.'s
    monitoring across updates of one model); a short budget keeps it cheap, since only the
    ranking of the snapshots matters."""

    stages: list[str] = Field(
        min_length=1,
        description="pretrain / distill stages whose snapshots are scored (each with"
        " keep_snapshots set).",
    )
    max_steps: int = Field(
        100,
        gt=0,
        description="Fine-tuning steps per snapshot; the other settings are the stage's"
        " `training` (dev is scored once, at the end).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> SnapshotScoring:
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("`stages` lists a stage twice")
        return self


class FinetuneStage(SupervisedStage):
    """Fine-tune every listed encoder on labeled data and evaluate it (DESIGN.md §2, §5, §6).

    Each model × encoder mode gets its own folder ``<stage>/<model>[-frozen]/`` (encoder, heads,
    label maps, tokenizer, metrics); the stage's ``metrics.json`` collects them for the report.
    """

    kind: Literal["finetune"]
    task: TaskName = Field(
        "intent_slot", description="Joint intent + slot model, or sentence-pair classification."
    )
    models: list[str] = Field(
        min_length=1, description="Encoders to fine-tune: stage names, local folders or hub ids."
    )
    encoder: list[Literal["full", "frozen"]] = Field(
        ["full"], min_length=1, description="Train the whole model, only the heads, or both."
    )
    baseline: str | None = Field(
        None, description="The model (one of `models`) that relative errors are measured against."
    )
    lm_corpus: str | None = Field(
        None, description="Held-out corpus for each encoder's perplexity and mask-filling accuracy."
    )
    lm_max_texts: int = Field(300, gt=0, description="Texts of lm_corpus scored per encoder.")
    frozen_lr: float | None = Field(
        None, gt=0, description="Learning rate of head-only training (default: training.lr)."
    )
    snapshots: SnapshotScoring | None = Field(
        None, description="Score the snapshots of LM stages downstream (none by default)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FinetuneStage:
        if len(set(self.models)) != len(self.models):
            raise ValueError("`models` lists a model twice")
        if self.baseline is not None and self.baseline not in self.models:
            raise ValueError(f"baseline '{self.baseline}' is not one of `models`")
        return self

    def corpora_used(self) -> list[str]:
        return [self.lm_corpus] if self.lm_corpus else []

    def stage_refs(self) -> list[str]:
        return list(dict.fromkeys(self.references().values()))

    def references(self) -> dict[str, str]:
        refs = {f"models[{i}]": ref for i, ref in enumerate(self.models)}
        if self.snapshots is not None:  # absent: the stage's upstream (and hash) as before
            refs.update({f"snapshots.stages[{i}]": s for i, s in enumerate(self.snapshots.stages)})
        return refs


class TaskDistillLossConfig(StrictModel):
    """Weights of the task-aware distillation loss (docs/distillation.md)."""

    hard_weight: float = Field(
        1.0, ge=0.0, description="CE against the gold intent and slot tags (labeled utterances)."
    )
    soft_weight: float = Field(
        1.0,
        ge=0.0,
        description="T²·soft-CE against the teacher's intent and per-word slot distributions.",
    )
    temperature: float = Field(2.0, gt=0.0, description="Softmax temperature T of soft-CE.")
    hidden_weight: float = Field(
        0.0, ge=0.0, description="Hidden-state MSE against the fine-tuned teacher (0 = off)."
    )
    layer_map: list[int] | None = Field(
        None, description="Teacher layer (1-based) for each student layer; default uniform."
    )


class AugmentConfig(StrictModel):
    """TinyBERT-style augmentation: words replaced by a masked LM's top predictions."""

    model: str = Field(description="Masked LM that proposes words: stage, folder or hub id.")
    copies: int = Field(1, ge=1, description="Augmented variants made of each utterance.")
    word_prob: float = Field(
        0.3, gt=0.0, le=1.0, description="Chance that a word is replaced in a variant."
    )
    top_k: int = Field(5, ge=1, description="A replacement is drawn from the LM's k best words.")
    max_texts: int | None = Field(
        None, gt=0, description="Utterances augmented (default: all training and unlabeled ones)."
    )
    seed: int = Field(0, description="Seed of the word choices and the draws.")


class TaskDistillStage(SupervisedStage):
    """Train a student intent + slot model against a fine-tuned teacher (docs/distillation.md).

    Labeled utterances give hard CE plus soft CE against the teacher; unlabeled in-domain
    utterances (and their augmented variants) give the soft terms only. The output is a
    fine-tuned model folder, ``<stage>/<student>/``, like a ``finetune`` stage's.
    """

    kind: Literal["task_distill"]
    teacher: str | list[str] = Field(
        description="The fine-tuned teacher, '<finetune stage>/<model>' or a model folder; or a"
        " list of them, whose tempered distributions are averaged (an ensemble teacher)."
    )
    student: str = Field(
        description="Encoder the student starts from: stage name, local folder or hub id."
    )
    unlabeled: list[str] = Field(
        default_factory=list, description="Corpora of unlabeled in-domain utterances (soft only)."
    )
    unlabeled_max_texts: int = Field(50_000, gt=0, description="Unlabeled utterances used.")
    loss: TaskDistillLossConfig = Field(default_factory=TaskDistillLossConfig)
    augment: AugmentConfig | None = Field(None, description="Augment the training utterances.")

    @model_validator(mode="after")
    def _teachers(self) -> TaskDistillStage:
        if not self.teachers:
            raise ValueError("`teacher` lists no model; name one fine-tuned model or several")
        if len(set(self.teachers)) != len(self.teachers):
            raise ValueError("`teacher` lists a model twice")
        if len(self.teachers) > 1 and self.loss.hidden_weight > 0:
            raise ValueError(
                "loss.hidden_weight needs one teacher (hidden states of an ensemble are not"
                " defined): name one teacher or set loss.hidden_weight: 0"
            )
        return self

    @property
    def teachers(self) -> list[str]:
        """The teacher references, one or more."""
        return [self.teacher] if isinstance(self.teacher, str) else list(self.teacher)

    def corpora_used(self) -> list[str]:
        return list(self.unlabeled)

    def stage_refs(self) -> list[str]:
        return list(dict.fromkeys(ref_stage(r) for r in self.references().values()))

    def references(self) -> dict[str, str]:
        if isinstance(self.teacher, str):
            refs = {"teacher": self.teacher}
        else:
            refs = {f"teacher[{i}]": ref for i, ref in enumerate(self.teacher)}
        refs["student"] = self.student
        if self.augment is not None:
            refs["augment.model"] = self.augment.model
        return refs
