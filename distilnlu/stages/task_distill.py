"""The ``task_distill`` stage: a student intent + slot model trained against a fine-tuned teacher.

TinyBERT's and DistilBERT's second step, on top of the paper's recipe: the student (any encoder,
typically the general-distilled final student) gets new heads with the teacher's label maps and
learns from the gold labels and the teacher's intent and per-word slot distributions on the
labeled set, and from the teacher alone on unlabeled in-domain utterances and on variants of
the utterances that a masked LM rewrote (docs/distillation.md).

Output: ``<stage>/<student>/``, a fine-tuned model folder exactly as a ``finetune`` stage writes
one (``export``, ``predict``, ``serve``, ``evaluate`` take it), and the stage's ``metrics.json``
in the ``finetune`` layout, which the report adds to the table of the teacher's stage.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

from distilnlu.config import Recipe, TaskDistillStage
from distilnlu.data.augment import Augmenter
from distilnlu.data.corpus import in_file_order
from distilnlu.data.finetune import Encoded, eval_batches, index_batches
from distilnlu.data.task_distill import (
    TeacherTargets,
    collate_distill,
    encode_unlabeled,
    ensemble_logits,
    new_texts,
    targets_from_logits,
)
from distilnlu.distributed import is_main
from distilnlu.errors import ModelError
from distilnlu.evaluation.inference import no_grad_eval
from distilnlu.modeling.classifier import NLU_CONFIG, EncoderClassifier, load_nlu_model
from distilnlu.modeling.loading import load_masked_lm
from distilnlu.rundir import METRICS, FinetuneMetrics, ModelMetrics, read_json
from distilnlu.stages.common import resolve_ref, write_stage_files
from distilnlu.stages.finetune import (
    FinetuneRun,
    Sets,
    drop_training_files,
    load_sets,
    model_key,
    warn_unseen,
)
from distilnlu.supervised_config import ref_stage
from distilnlu.tasks import Task
from distilnlu.tokenization import load_tokenizer
from distilnlu.training.loop import LoopState, train_loop
from distilnlu.training.losses import HiddenStateLoss, TaskDistillLoss, uniform_layer_map
from distilnlu.training.objectives import EarlyStopping
from distilnlu.training.task_distill import TaskDistillObjective, TaskDistillStudent


def check_tokenizers(recipe: Recipe, stage: TaskDistillStage, name: str) -> None:
    """Teachers, student (and augmenting LM) must split text the same way; checked before any
    data is read or model loaded, since the soft targets are per sub-token position."""
    teachers = stage.teachers
    refs = {("teacher" if len(teachers) == 1 else f"teacher {t}"): t for t in teachers}
    refs["student"] = stage.student
    if stage.augment is not None:
        refs["augment.model"] = stage.augment.model
    vocabs = {}
    for key, ref in refs.items():
        try:
            vocabs[key] = load_tokenizer(resolve_ref(recipe, ref)).get_vocab()
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"stage '{name}': cannot load the {key}'s tokenizer ({ref}): {exc}"
            ) from None
    first = next(iter(refs))
    for key in refs:
        if vocabs[key] != vocabs[first]:
            raise ModelError(
                f"stage '{name}': the {key} ({refs[key]}) and the teacher ({teachers[0]}) use"
                f" different tokenizers ({len(vocabs[key])} vs {len(vocabs[first])} tokens);"
                " task distillation needs one tokenizer: start the student from an encoder"
                " trained with the teacher's tokenizer"
            )


def load_teachers(recipe: Recipe, stage: TaskDistillStage, name: str) -> list[EncoderClassifier]:
    """The fine-tuned teachers: intent + slot models with one label vocabulary."""
    teachers: list[EncoderClassifier] = []
    for ref in stage.teachers:
        folder = Path(resolve_ref(recipe, ref))
        if not (folder / NLU_CONFIG).is_file():
            raise ModelError(
                f"stage '{name}': teacher '{ref}' ({folder}) is not a fine-tuned model folder;"
                " name one model of a finetune stage, e.g. finetune/teacher_stage2"
            )
        teacher = load_nlu_model(folder)
        if not teacher.task.has_slots:
            raise ModelError(
                f"stage '{name}': teacher '{ref}' is a {teacher.task.name!r} model; task"
                " distillation takes intent + slot teachers"
            )
        if teachers and teacher.labels != teachers[0].labels:
            raise ModelError(
                f"stage '{name}': teachers '{stage.teachers[0]}' and '{ref}' have different"
                " intent or slot labels; an ensemble needs teachers fine-tuned on one label set"
            )
        teachers.append(teacher)
    return teachers


def run(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> FinetuneMetrics:
    stage = recipe.stages[name]
    assert isinstance(stage, TaskDistillStage)
    check_tokenizers(recipe, stage, name)
    teachers = load_teachers(recipe, stage, name)
    task, labels = teachers[0].task, teachers[0].labels
    sets = load_sets(recipe, stage)
    warn_unseen(stage, sets, labels)
    key = model_key(recipe, stage.student, "full")
    job = TaskDistillRun(recipe, stage, task, out_dir / key, sets, teachers, name)
    done = out_dir / key / METRICS
    # A kill after the model was saved but before the stage's summary: the model is done.
    saved = read_json(done) if done.is_file() else None
    if saved is not None:
        drop_training_files(out_dir / key)
    model = cast(ModelMetrics, saved) if saved is not None else job.run(stage_hash, None)
    joins = ref_stage(stage.teachers[0])
    metrics: FinetuneMetrics = {
        "stage": name,
        "task": task.name,
        "baseline": None,
        "lm_corpus": None,
        "dev": stage.dev,
        "primary": stage.test[0] if stage.test else stage.dev,
        "train_examples": len(sets[stage.train]),
        "labels": {
            "intents": len(labels.intents),
            "slot_tags": len(labels.slot_tags),
        },
        "models": {name: model},
        "joins": joins if joins in recipe.stages else None,
        "teacher": stage.teacher,
        "pool": model.get("pool", {}),
    }
    if is_main():
        write_stage_files(out_dir, recipe, metrics)
    return metrics


class TaskDistillRun(FinetuneRun):
    """Build the student as fine-tuning builds a model (the student encoder, new heads with the
    teacher's label maps), pool labeled + unlabeled + augmented utterances, score them with the
    teacher (or the teachers' ensemble) once, train against :class:`TaskDistillLoss`, then
    finish as fine-tuning does."""

    def __init__(
        self,
        recipe: Recipe,
        stage: TaskDistillStage,
        task: Task,
        out_dir: Path,
        sets: Sets,
        teachers: list[EncoderClassifier],
        name: str,
    ) -> None:
        labels = teachers[0].labels
        super().__init__(recipe, stage, task, stage.student, "full", out_dir, sets, labels)
        self.distill, self.teachers = stage, teachers
        self.row_source = name
        self.pool_sizes: dict[str, int] = {}

    def extra_metrics(self) -> dict[str, Any]:
        return {"teacher": self.distill.teacher, "pool": self.pool_sizes}

    def unlabeled_words(self) -> list[list[str]]:
        """Distinct utterances of the unlabeled corpora that are not training utterances."""
        stage, data = self.distill, self.recipe.data
        texts = (doc.text for c in stage.unlabeled for doc in in_file_order(data.corpora[c], data))
        train = [" ".join(ex.words) for ex in self.sets[stage.train]]
        return [t.split() for t in new_texts(texts, train, stage.unlabeled_max_texts)]

    def augmented_words(self, words: list[list[str]]) -> list[list[str]]:
        cfg = self.distill.augment
        if cfg is None:
            return []
        source = words[: cfg.max_texts] if cfg.max_texts else words
        mlm = load_masked_lm(resolve_ref(self.recipe, cfg.model)).eval()
        return Augmenter(mlm, self.tokenizer, cfg, self.stage.max_length).variants(source)

    def pool(self) -> list[Encoded]:
        """Labeled items first (with their gold labels), then unlabeled and augmented ones."""
        labeled = self.encode(self.sets[self.stage.train])
        train_words = [list(ex.words) for ex in self.sets[self.stage.train]]
        unlabeled = self.unlabeled_words()
        augmented = self.augmented_words(train_words + unlabeled)
        self.pool_sizes = {
            "labeled": len(labeled),
            "unlabeled": len(unlabeled),
            "augmented": len(augmented),
        }
        extra = encode_unlabeled(unlabeled + augmented, self.tokenizer, self.stage.max_length)
        return labeled + extra

    def score(self, items: list[Encoded]) -> list[TeacherTargets]:
        """The teachers' scores for every item (eval mode: the same on every call); several
        teachers' are averaged at the loss's temperature (:func:`ensemble_logits`)."""
        targets: list[TeacherTargets | None] = [None] * len(items)
        temperature = self.distill.loss.temperature
        with ExitStack() as stack:
            devices = [stack.enter_context(no_grad_eval(t)) for t in self.teachers]
            for indices, batch in eval_batches(items, self.stage.eval_batch_size, self.pad_id):
                outputs = [
                    teacher(batch["input_ids"].to(d), batch["attention_mask"].to(d))
                    for teacher, d in zip(self.teachers, devices, strict=True)
                ]
                intent = ensemble_logits([i for i, _ in outputs], temperature)
                slots = [s for _, s in outputs if s is not None]
                both = ensemble_logits(slots, temperature) if slots else None
                rows = targets_from_logits([items[i] for i in indices], intent, both)
                for i, target in zip(indices, rows, strict=True):
                    targets[i] = target
        return [t for t in targets if t is not None]

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def student_module(self, model: EncoderClassifier) -> TaskDistillStudent:
        loss = self.distill.loss
        if loss.hidden_weight <= 0:
            return TaskDistillStudent(model, None)
        s_cfg, t_cfg = model.encoder.config, self.teachers[0].encoder.config
        layer_map = loss.layer_map or uniform_layer_map(
            s_cfg.num_hidden_layers, t_cfg.num_hidden_layers
        )
        return TaskDistillStudent(
            model, HiddenStateLoss(s_cfg.hidden_size, t_cfg.hidden_size, layer_map)
        )

    def train(self, model: EncoderClassifier, stopper: EarlyStopping, stage_hash: str) -> LoopState:
        stage, loss = self.distill, self.distill.loss
        items = self.pool()
        targets = self.score(items)
        lengths = [len(x.input_ids) for x in items]
        cfg = self.training_config(len(items))
        objective = TaskDistillObjective(
            TaskDistillLoss(
                loss.hard_weight, loss.soft_weight, loss.temperature, stage.slot_weight
            ),
            stopper,
            self.task.score,
            on_best=lambda step: self.keep_best(model),
            teacher=self.teachers[0],
            hidden_weight=loss.hidden_weight,
        )
        with_slots = self.task.has_slots

        def batches(skip: int) -> Any:
            for idx in index_batches(lengths, cfg.batch_size, self.recipe.seed, skip):
                picked = [items[i] for i in idx]
                yield collate_distill(picked, [targets[i] for i in idx], self.pad_id, with_slots)

        return train_loop(
            model=self.student_module(model),
            objective=objective,
            make_batches=batches,
            cfg=cfg,
            out_dir=self.out_dir,
            seed=self.recipe.seed,
            evaluate=lambda _: {"dev": self.evaluate(model, stage.dev)[0]},
            desc=self.out_dir.parent.name,
            state_extra={"stage_hash": stage_hash, "model": self.out_dir.name},
        )
