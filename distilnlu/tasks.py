"""Fine-tuning tasks as a type: what differs between a joint intent + slot model and a
sentence-pair classifier, in one place (:data:`INTENT_SLOT`, :data:`PAIR`).

A task knows how to build its label vocabulary, encode its examples, whether the model has a
slot head, how to score predictions, which metric early stopping and the report rank by, and
which metrics the report shows. Code elsewhere asks the task instead of comparing its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

from distilnlu.data.finetune import Encoded, encode_nlu, encode_pairs
from distilnlu.data.labeled import LabelVocab
from distilnlu.errors import ConfigError
from distilnlu.evaluation.inference import Classifier, evaluate_nlu, evaluate_pairs

TaskName: TypeAlias = Literal["intent_slot", "pair"]
Evaluation: TypeAlias = tuple[dict[str, Any], list[dict[str, Any]]]


class Evaluate(Protocol):
    """Score ``model`` on ``examples``: (metrics, one prediction row per example)."""

    def __call__(
        self,
        model: Classifier,
        examples: Sequence[Any],
        tokenizer: Any,
        max_length: int,
        batch_size: int = 64,
    ) -> Evaluation: ...


def _utterance(example: Any) -> str | tuple[str, str]:
    return str(example.text)


def _pair(example: Any) -> str | tuple[str, str]:
    return (str(example.premise), str(example.hypothesis))


@dataclass(frozen=True)
class Task:
    """One fine-tuning task: what its model has, how its data is labelled, encoded and scored,
    and what the report shows of it. The tasks are the instances below, compared by identity."""

    name: TaskName
    has_slots: bool
    """The model has a slot head (BIO tags on each word's first sub-token)."""
    build_labels: Callable[[Sequence[Any]], LabelVocab]
    """The label vocabulary of a training set."""
    encode: Callable[[Sequence[Any], Any, LabelVocab, int], list[Encoded]]
    """``(examples, tokenizer, labels, max_length)`` -> model inputs."""
    evaluate: Evaluate
    text: Callable[[Any], str | tuple[str, str]]
    """What one request holds: an utterance, or a (premise, hypothesis) pair."""
    primary: tuple[str, str]
    """(metric key, label) that early stopping maximises and the report ranks by."""
    columns: tuple[tuple[str, str], ...]
    """(metric key, column label) the report shows, in column order."""
    relative: tuple[str, ...]
    """Metrics whose relative error change against the baseline the report shows."""
    by_language: tuple[tuple[str, str], ...]
    """(metric key, column label) the report's per-language table shows for each language."""
    zero_shot: bool
    """Trained on the dev set's language, scored zero-shot on the others: the report marks those,
    compares every model (frozen ones too) and shows its per-language section for one language."""
    language_title: str
    """Title of the report's per-language section."""

    def score(self, metrics: dict[str, Any]) -> float:
        """The primary metric of an evaluation (what early stopping maximises)."""
        return float(metrics[self.primary[0]])


INTENT_SLOT = Task(
    name="intent_slot",
    has_slots=True,
    build_labels=LabelVocab.build,
    encode=encode_nlu,
    evaluate=evaluate_nlu,
    text=_utterance,
    primary=("exact_match", "EM"),
    columns=(
        ("intent_accuracy", "Intent acc."),
        ("slot_f1", "Slot F1"),
        ("exact_match", "EM"),
        ("semer", "SemER"),
    ),
    relative=("exact_match", "intent_accuracy", "semer"),
    by_language=(("exact_match", "EM"), ("intent_accuracy", "intent")),
    zero_shot=False,
    language_title="Per-language results",
)
"""Joint intent classification + BIO slot tagging."""

PAIR = Task(
    name="pair",
    has_slots=False,
    build_labels=LabelVocab.build_pairs,
    encode=encode_pairs,
    evaluate=evaluate_pairs,
    text=_pair,
    primary=("accuracy", "Accuracy"),
    columns=(("accuracy", "Accuracy"),),
    relative=("accuracy",),
    by_language=(("accuracy", ""),),
    zero_shot=True,
    language_title="Pair classification by language",
)
"""Sentence-pair classification (XNLI-style) on ``<s> a </s></s> b </s>``."""

TASKS: dict[str, Task] = {INTENT_SLOT.name: INTENT_SLOT, PAIR.name: PAIR}


def task_named(name: str) -> Task:
    """The task of a recipe's ``task:`` value or a saved model's ``nlu_config.json``."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})") from None
