import pytest

from distilnlu.data.examples import NLUExample, PairExample
from distilnlu.data.labeled import LabelVocab
from distilnlu.errors import ConfigError
from distilnlu.tasks import INTENT_SLOT, PAIR, TASKS, task_named


def test_tasks_by_name():
    assert task_named("intent_slot") is INTENT_SLOT
    assert task_named("pair") is PAIR
    assert sorted(TASKS) == ["intent_slot", "pair"]
    with pytest.raises(ConfigError, match="unknown task 'slots' \\(tasks: intent_slot, pair\\)"):
        task_named("slots")


def test_what_each_task_scores_and_shows():
    metrics = {"exact_match": 0.25, "accuracy": 0.75}
    assert INTENT_SLOT.score(metrics) == 0.25
    assert PAIR.score(metrics) == 0.75
    assert INTENT_SLOT.has_slots and not PAIR.has_slots
    assert [key for key, _ in INTENT_SLOT.columns] == [
        "intent_accuracy",
        "slot_f1",
        "exact_match",
        "semer",
    ]
    assert [key for key, _ in PAIR.columns] == ["accuracy"]


def test_each_task_builds_its_own_labels_and_text():
    utterance = NLUExample(("wake", "me", "at", "seven"), ("O", "O", "O", "B-time"), "alarm_set")
    assert INTENT_SLOT.build_labels([utterance]) == LabelVocab(["alarm_set"], TAGS)
    assert INTENT_SLOT.text(utterance) == "wake me at seven"
    pair = PairExample("it rains", "the street is wet", "entailment", "en")
    assert PAIR.build_labels([pair]) == LabelVocab(["entailment", "neutral", "contradiction"], [])
    assert PAIR.text(pair) == ("it rains", "the street is wet")


TAGS = ["O", "B-time", "I-time"]
