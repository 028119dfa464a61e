"""Run-folder views: tasks as types, held-out LM rows, and lenient reading of partial metrics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from distilnlu.evaluation import run_view
from distilnlu.tasks import INTENT_SLOT, PAIR


def _run(metrics: dict[str, dict[str, Any]], kinds: dict[str, str]) -> run_view.Run:
    stages: Any = {name: {"kind": kind} for name, kind in kinds.items()}
    return run_view.Run(Path("x"), stages, metrics)


def test_finetune_task_is_a_task_object() -> None:
    tasks: list[Any] = [{"task": "pair"}, {"task": "intent_slot"}, {"task": "other"}, {}]
    found = [run_view.Finetune("ft", metrics).task for metrics in tasks]
    assert found == [PAIR, INTENT_SLOT, INTENT_SLOT, INTENT_SLOT]  # unknown: read as intent_slot


def test_heldout_rows_notes_and_missing_values() -> None:
    switch = {"step": 7, "from_teacher": "a", "to_teacher": "b", "reason": "plateau"}
    metrics = {
        "pre": {
            "eval": {"c1": {"perplexity": 12.5, "mask_fill_accuracy": 0.25, "mask_fill_n": 40}}
        },
        "dist": {"eval": {"c1": {"perplexity": "nan?"}, "c2": None}, "teacher_switches": [switch]},
        "ft": {"eval": {"c3": {"perplexity": 1.0}}},  # not an LM stage: left out
    }
    run = _run(metrics, {"pre": "pretrain", "dist": "distill", "ft": "finetune"})
    held = run_view.heldout_lm(run)
    assert held.corpora == ["c1", "c2"]
    assert held.rows[0] == run_view.HeldOut("pre", "c1", 12.5, 0.25, 40.0)
    assert [(r.stage, r.corpus) for r in held.rows] == [
        ("pre", "c1"),
        ("dist", "c1"),
        ("dist", "c2"),
    ]
    assert all(math.isnan(r.perplexity) for r in held.rows[1:])
    assert held.switches == ["dist: teacher a -> b after step 7 (plateau)"]
    missing = held.get("pre", "c2")
    assert (missing.stage, missing.corpus) == ("pre", "c2") and math.isnan(missing.mask_fill_n)
    only = run_view.heldout_lm(run, stages={"pre"})
    assert [r.stage for r in only.rows] == ["pre"] and only.switches == []


def test_lm_values_fall_back_to_the_source_stage() -> None:
    lm = {"c1": {"perplexity": 20.0, "mask_fill_accuracy": 0.1}}
    lm["c2"] = {"perplexity": 30.0, "mask_fill_accuracy": 0.2}
    run = _run({"pre": {"eval": lm}}, {"pre": "pretrain"})
    named: Any = {"lm_corpus": "c2"}
    model: Any = {"source": "pre", "lm": None}
    assert run_view.lm_values(run, run_view.Finetune("ft", named), model) == (30.0, 0.2, "c2")
    # No corpus named (or one the stage did not score): the stage's first evaluation.
    unnamed: Any = {}
    assert run_view.lm_values(run, run_view.Finetune("ft", unnamed), model) == (20.0, 0.1, "c1")
    scored: Any = {"source": "pre", "lm": {"perplexity": 5.0, "mask_fill_accuracy": 0.5}}
    assert run_view.lm_values(run, run_view.Finetune("ft", named), scored) == (5.0, 0.5, None)
    unknown: Any = {"source": "hub/model", "lm": None}
    values = run_view.lm_values(run, run_view.Finetune("ft", named), unknown)
    assert math.isnan(values[0]) and math.isnan(values[1]) and values[2] is None
