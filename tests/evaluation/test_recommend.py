"""Which model to ship: the most accurate on dev within the latency budget, said at the top."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from distilnlu import rundir
from distilnlu.config import ReportConfig
from distilnlu.errors import ConfigError
from distilnlu.evaluation import recommend, report
from distilnlu.evaluation.run_view import load_run

SMALL = {"embedding": 100_000, "non_embedding": 400_000}
LARGE = {"embedding": 300_000, "non_embedding": 4_000_000}
# key -> (source stage, encoder, dev EM, test EM, p50 ms, size). The situation the issue met:
# the last model listed (final) is worse than the baseline, the teacher is best at 3× the
# latency, and a task-distilled student of final's size is best within the budget.
MODELS: dict[str, tuple[str, str, float, float, float, dict[str, int]]] = {
    "teacher": ("teacher", "full", 0.70, 0.69, 3.0, LARGE),
    "baselines": ("baselines", "full", 0.60, 0.61, 1.0, SMALL),
    "baselines-frozen": ("baselines", "frozen", 0.30, 0.31, 0.9, SMALL),
    "final": ("final", "full", 0.58, 0.57, 1.1, SMALL),
    "final_task": ("final_task", "full", 0.66, 0.67, 1.05, SMALL),
}
KINDS = {"teacher": "pretrain", "baselines": "pretrain", "final": "distill"}
KINDS |= {"finetune": "finetune", "final_task": "task_distill"}


def _model(source: str, encoder: str, dev: float, test: float, p50: float, size: dict) -> dict:
    return {
        "source": source,
        "encoder": encoder,
        "parameters": size,
        "steps": 100,
        "best_step": 50,
        "eval": {"dev": {"exact_match": dev}, "test": {"exact_match": test}},
        "latency_ms": {"p50": p50, "p99": 2 * p50, "n": 100},
    }


def make_run(root: Path, models: dict = MODELS, report_section: dict | None = None) -> Path:
    run = root / "fake"
    entries = {n: {"hash": "0" * 16, "kind": k, "seconds": 1.0} for n, k in KINDS.items()}
    (run / "finetune").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stages": entries}))
    own = {k: _model(*v) for k, v in models.items() if v[0] != "final_task"}
    common = {"task": "intent_slot", "dev": "dev", "primary": "test", "baseline": "baselines"}
    metrics = common | {"stage": "finetune", "models": own}
    (run / "finetune" / "metrics.json").write_text(json.dumps(metrics))
    if "final_task" in models:
        task = _model(*models["final_task"]) | {"folder": str(run / "final_task" / "final")}
        joined = common | {"stage": "final_task", "joins": "finetune"}
        joined["models"] = {"final_task": task}
        (run / "final_task").mkdir()
        (run / "final_task" / "metrics.json").write_text(json.dumps(joined))
    if report_section is not None:
        (run / rundir.RECIPE).write_text(yaml.safe_dump({"report": report_section}))
    return run


def test_the_most_accurate_model_within_twice_the_smallest_students_latency(tmp_path) -> None:
    run = load_run(make_run(tmp_path))
    rec = recommend.recommend(run, run.finetunes[0])
    assert rec is not None and rec.chosen is not None
    # The smallest students: final and final_task (distilled); their size's rows: baselines,
    # baselines-frozen, final, final_task -> median p50 of 0.9, 1.0, 1.05, 1.1 = 1.025.
    assert rec.budget.ms == pytest.approx(2 * 1.025)
    assert rec.chosen.key == "final_task"  # not final, the last model listed
    assert rec.best.key == "teacher"
    assert rec.folder == Path("final_task") / "final"
    sentence = rec.sentence()
    assert sentence.startswith("Ship final_task: the most accurate model on dev within")
    assert "EM 66.0% on dev and 67.0% on test, p50 1.02 ms" in sentence
    assert "teacher, is 4.0 EM points better on dev (69.0% on test) at 2.9× its latency" in sentence


def test_one_slow_timing_does_not_decide(tmp_path) -> None:
    """Models of one size share one shape: each is judged on the median of their timings."""
    models = dict(MODELS)
    models["final_task"] = ("final_task", "full", 0.66, 0.67, 3.5, SMALL)  # a noisy 3.5 ms
    run = load_run(make_run(tmp_path, models))
    rec = recommend.recommend(run, run.finetunes[0])
    assert rec is not None and rec.chosen is not None and rec.chosen.key == "final_task"
    assert rec.chosen.measured == 3.5 and rec.chosen.p50 == pytest.approx(1.05)  # of 0.9-3.5
    assert rec.chosen.peers == 4


def test_the_choice_is_made_on_dev_not_test(tmp_path) -> None:
    models = dict(MODELS)
    models["baselines"] = ("baselines", "full", 0.67, 0.50, 1.0, SMALL)  # best dev, poor test
    run = load_run(make_run(tmp_path, models))
    rec = recommend.recommend(run, run.finetunes[0])
    assert rec is not None and rec.chosen is not None and rec.chosen.key == "baselines"


def test_a_budget_in_the_recipe_wins(tmp_path) -> None:
    run = load_run(make_run(tmp_path, report_section={"latency_budget_ms": 5.0}))
    rec = recommend.recommend(run, run.finetunes[0])
    assert rec is not None and rec.chosen is not None and rec.chosen.key == "teacher"
    assert "It is also the most accurate model of finetune." in rec.sentence()
    assert "report.latency_budget_ms" in rec.sentence()


def test_no_model_within_the_budget_says_what_to_do(tmp_path) -> None:
    run = load_run(make_run(tmp_path))
    rec = recommend.recommend(run, run.finetunes[0], ReportConfig(latency_budget_ms=0.5))
    assert rec is not None and rec.chosen is None and rec.folder is None
    assert "No model of finetune is within the latency budget of 0.50 ms" in rec.sentence()
    assert "the fastest, baselines, takes 1.02 ms" in rec.sentence()


def test_without_a_distilled_student_the_smallest_model_sets_the_budget(tmp_path) -> None:
    models = {k: v for k, v in MODELS.items() if k in ("teacher", "baselines")}
    run = load_run(make_run(tmp_path, models))
    rec = recommend.recommend(run, run.finetunes[0])
    assert rec is not None and rec.budget.ms == pytest.approx(2.0)
    assert rec.budget.rule == "2 × the p50 of baselines, 1.00 ms"


def test_no_latency_no_recommendation(tmp_path) -> None:
    run_dir = make_run(tmp_path)
    path = run_dir / "finetune" / "metrics.json"
    metrics = json.loads(path.read_text())
    for m in metrics["models"].values():
        m["latency_ms"] = {}
    path.write_text(json.dumps(metrics))
    (run_dir / "final_task" / "metrics.json").unlink()
    run = load_run(run_dir)
    assert recommend.recommend(run, run.finetunes[0]) is None
    # The run's hint falls back to the last full-encoder model.
    assert recommend.shipping_folder(run_dir) == run_dir / "finetune" / "final"


def _candidate(key: str, dev: float, p50: float) -> recommend.Candidate:
    return recommend.Candidate(key, {}, dev, math.nan, p50, 1.0)  # type: ignore[typeddict-item]


def test_pareto_front_by_hand() -> None:
    found = [
        _candidate("a", 0.5, 1.0),
        _candidate("b", 0.4, 1.5),  # slower and worse than a
        _candidate("c", 0.7, 2.0),
        _candidate("d", 0.7, 3.0),  # as good as c, slower
        _candidate("e", 0.9, 4.0),
        _candidate("f", 0.3, 0.5),
    ]
    assert [c.key for c in recommend.pareto_front(found)] == ["f", "a", "c", "e"]


def test_ties_go_to_the_faster_model() -> None:
    found = [_candidate("slow", 0.5, 2.0), _candidate("fast", 0.5, 1.0)]
    assert recommend.most_accurate(found).key == "fast"


def test_report_opens_with_the_recommendation_and_its_plot(tmp_path) -> None:
    run_dir = make_run(tmp_path)
    index = report.write_report(run_dir)
    md = (index.parent / rundir.REPORT_MARKDOWN).read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Recommendation: finetune"
    assert sections.index("## Stages") > sections.index("## Fine-tuning: finetune (intent_slot)")
    rows = [line for line in md.splitlines() if line.startswith("| final_task (ship)")]
    assert rows == ["| final_task (ship) | 66.0 | 67.0 | 1.02 | 1.05 | yes | yes |"]
    assert (index.parent / "tradeoff_finetune.png").stat().st_size > 1000
    summary = report.report_summary(run_dir)
    assert summary.splitlines()[2].startswith("Ship final_task:")


def test_report_command_flags_override_the_recipe(tmp_path) -> None:
    run_dir = make_run(tmp_path, report_section={"latency_factor": 3.0})
    assert recommend.report_config(run_dir).latency_factor == 3.0
    config = recommend.report_config(run_dir, budget_ms=1.2)
    assert config.latency_budget_ms == 1.2 and config.latency_factor == 3.0
    with pytest.raises(ConfigError, match=r"--latency-factor 0\.5: must be at least 1"):
        recommend.report_config(run_dir, factor=0.5)
    with pytest.raises(ConfigError, match="--latency-budget-ms 0: must be more than 0"):
        recommend.report_config(run_dir, budget_ms=0)


def test_a_damaged_run_recipe_falls_back_to_the_defaults(tmp_path) -> None:
    run_dir = make_run(tmp_path, report_section={"latency_factor": "lots"})
    assert recommend.run_report_config(load_run(run_dir)) == ReportConfig()
    (run_dir / rundir.RECIPE).write_text("{{{ not yaml")
    assert recommend.run_report_config(load_run(run_dir)) == ReportConfig()


def test_unknown_report_keys_are_recipe_errors() -> None:
    with pytest.raises(ValueError, match="latency_budget"):
        ReportConfig.model_validate({"latency_budget": 3})
