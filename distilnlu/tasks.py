"""Fine-tuning tasks as types: what differs between a joint intent + slot model and a
sentence-pair classifier, in one place.

A task knows how to build its label vocabulary, encode its examples, whether the model has a
slot head, how to score predictions, which metric early stopping and the report rank by, and
which metrics the report shows. Code elsewhere asks the task instead of comparing its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from distilnlu.data.finetune import Encoded, encode_nlu, encode_pairs
from distilnlu.data.labeled import LabelVocab
from distilnlu.errors import ConfigError
from distilnlu.evaluation.inference import Classifier, evaluate_nlu, evaluate_pairs

TaskName: TypeAlias = Literal["intent_slot", "pair"]
Evaluation: TypeAlias = tuple[dict[str, Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class IntentSlotTask:
    """Joint intent classification + BIO slot tagging on each word's first sub-token."""

    name: TaskName = "intent_slot"
    has_slots: bool = True
    primary: tuple[str, str] = ("exact_match", "EM")
    """(metric key, label) that early stopping maximises and the report ranks by."""
    columns: tuple[tuple[str, str], ...] = (
        ("intent_accuracy", "Intent acc."),
        ("slot_f1", "Slot F1"),
        ("exact_match", "EM"),
        ("semer", "SemER"),
    )
    """(metric key, column label) the report shows, in column order."""
    relative: tuple[str, ...] = ("exact_match", "intent_accuracy", "semer")
    """Metrics whose relative error change against the baseline the report shows."""
    by_language: tuple[tuple[str, str], ...] = (
        ("exact_match", "EM"),
        ("intent_accuracy", "intent"),
    )
    """(metric key, column label) the report's per-language table shows for each language."""
    zero_shot: bool = False
    """Trained on the dev set's language, scored zero-shot on the others: the report marks those,
    compares every model (frozen ones too) and shows its per-language section for one language."""
    language_title: str = "Per-language results"
    """Title of the report's per-language section."""

    def build_labels(self, train: Sequence[Any]) -> LabelVocab:
        return LabelVocab.build(train)

    def encode(
        self, examples: Sequence[Any], tokenizer: Any, labels: LabelVocab, max_length: int
    ) -> list[Encoded]:
        return encode_nlu(examples, tokenizer, labels, max_length)

    def evaluate(
        self,
        model: Classifier,
        examples: Sequence[Any],
        tokenizer: Any,
        max_length: int,
        batch_size: int = 64,
    ) -> Evaluation:
        return evaluate_nlu(model, examples, tokenizer, max_length, batch_size)

    def text(self, example: Any) -> str | tuple[str, str]:
        """What one request holds: the utterance."""
        return str(example.text)

    def score(self, metrics: dict[str, Any]) -> float:
        return float(metrics[self.primary[0]])


@dataclass(frozen=True)
class PairTask:
    """Sentence-pair classification (XNLI-style) on ``<s> a </s></s> b </s>``."""

    name: TaskName = "pair"
    has_slots: bool = False
    primary: tuple[str, str] = ("accuracy", "Accuracy")
    columns: tuple[tuple[str, str], ...] = (("accuracy", "Accuracy"),)
    relative: tuple[str, ...] = ("accuracy",)
    by_language: tuple[tuple[str, str], ...] = (("accuracy", ""),)
    zero_shot: bool = True
    language_title: str = "Pair classification by language"

    def build_labels(self, train: Sequence[Any]) -> LabelVocab:
        return LabelVocab.build_pairs(train)

    def encode(
        self, examples: Sequence[Any], tokenizer: Any, labels: LabelVocab, max_length: int
    ) -> list[Encoded]:
        return encode_pairs(examples, tokenizer, labels, max_length)

    def evaluate(
        self,
        model: Classifier,
        examples: Sequence[Any],
        tokenizer: Any,
        max_length: int,
        batch_size: int = 64,
    ) -> Evaluation:
        return evaluate_pairs(model, examples, tokenizer, max_length, batch_size)

    def text(self, example: Any) -> str | tuple[str, str]:
        """What one request holds: the (premise, hypothesis) pair."""
        return (str(example.premise), str(example.hypothesis))

    def score(self, metrics: dict[str, Any]) -> float:
        return float(metrics[self.primary[0]])


Task: TypeAlias = IntentSlotTask | PairTask
INTENT_SLOT = IntentSlotTask()
PAIR = PairTask()
TASKS: dict[str, Task] = {INTENT_SLOT.name: INTENT_SLOT, PAIR.name: PAIR}


def task_named(name: str) -> Task:
    """The task of a recipe's ``task:`` value or a saved model's ``nlu_config.json``."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})") from None
