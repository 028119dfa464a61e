"""task_distill stages in the report: a row of the fine-tune stage they join, a view of their own
when they join none, and the headline of what each stage bought."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from distilnlu.evaluation import headline, plots, report, run_view

# EM on the primary set "test" of each full-encoder row; "baselines" is the finetune stage's
# baseline, as small as "final"; "ext" is a folder, not a stage of the run.
EM = {"teacher_stage1": 0.75, "teacher_stage2": 0.769, "baselines": 0.70, "final": 0.713}
EM |= {"ext": 0.60, "final_task": 0.765, "outside": 0.74}
BIG = {"embedding": 625440, "non_embedding": 351408, "total": 976848}
SMALL = {"embedding": 312720, "non_embedding": 90000, "total": 402720}
KINDS = {"tokenizer": "tokenizer", "teacher_stage1": "pretrain", "teacher_stage2": "pretrain"}
KINDS |= {"baselines": "pretrain", "final": "distill", "finetune": "finetune"}
KINDS |= {"final_task": "task_distill", "outside": "task_distill"}
STAGES: dict[str, dict[str, Any]] = {
    "tokenizer": {"kind": "tokenizer", "corpora": ["public", "domain"]},
    "teacher_stage1": {"kind": "pretrain", "model": "big", "data": {"public": 1.0}},
    "teacher_stage2": {"kind": "pretrain", "init": "teacher_stage1", "data": {"domain": 1.0}},
    "baselines": {"kind": "pretrain", "model": "small", "data": {"domain": 0.8, "public": 0.2}},
    "final": {"kind": "distill", "model": "small", "teachers": [{"model": "teacher_stage2"}]},
    "finetune": {"kind": "finetune", "models": ["teacher_stage1", "teacher_stage2"]},
    "final_task": {"kind": "task_distill", "teacher": "finetune/teacher_stage2"},
    "outside": {"kind": "task_distill", "teacher": "/models/teacher", "student": "final"},
}
STAGES["finetune"]["models"] += ["baselines", "final", "/models/ext"]
STAGES["final_task"]["student"] = "final"


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def _model(source: str, em: float, folder: str) -> dict[str, Any]:
    params = SMALL if source in ("baselines", "final", "final_task", "outside") else BIG
    test = {"exact_match": em, "intent_accuracy": 0.9, "slot_f1": 0.8, "semer": 0.2, "n": 100}
    return {
        "source": source,
        "encoder": "full",
        "folder": folder,
        "parameters": params,
        "lm": None,
        "eval": {"dev": test | {"exact_match": em + 0.01}, "test": test},
        "latency_ms": {"p50": 1.5},
    }


def _stage_metrics(name: str, models: dict[str, Any], baseline: str | None) -> dict[str, Any]:
    metrics = {"stage": name, "task": "intent_slot", "baseline": baseline, "lm_corpus": None}
    return metrics | {"dev": "dev", "primary": "test", "models": models}


def _task_distill(run: Path, name: str, joins: str | None, teacher: str | list[str]) -> None:
    folder = f"/elsewhere/{run.name}/{name}/final"  # written on another machine: only its name
    metrics = _stage_metrics(name, {name: _model(name, EM[name], folder)}, None)
    metrics |= {"joins": joins, "teacher": teacher}
    metrics["pool"] = {"labeled": 500, "unlabeled": 3000, "augmented": 3500}
    _write(run / name / "metrics.json", metrics)
    rows = [{"step": 50, "eval": {"dev": {"exact_match": 0.5}}}]
    log = run / name / "final" / "metrics.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _make_run(run: Path) -> Path:
    entries = {
        name: {"hash": "0" * 16, "kind": kind, "output": str(run / name), "seconds": 10.0}
        for name, kind in KINDS.items()
    }
    _write(run / "manifest.json", {"stages": entries})
    recipe = yaml.safe_dump({"name": run.name, "stages": STAGES})
    for name in KINDS:
        (run / name).mkdir(parents=True, exist_ok=True)
        (run / name / "recipe.yaml").write_text(recipe)
    for name in ("teacher_stage1", "teacher_stage2", "baselines", "final"):
        params = SMALL if name in ("baselines", "final") else BIG
        trained = {"stage": name, "steps": 10, "parameters": params}
        _write(run / name / "metrics.json", trained)
    sources = ["final", "/models/ext", "teacher_stage2", "baselines", "teacher_stage1"]  # unsorted
    models = {}
    for source in sources:
        key = Path(source).name
        models[key] = _model(source, EM[key], f"/elsewhere/finetune/{key}")
    _write(run / "finetune" / "metrics.json", _stage_metrics("finetune", models, "baselines"))
    _task_distill(run, "final_task", "finetune", "finetune/teacher_stage2")
    _task_distill(run, "outside", None, "/models/teacher")
    return run


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_run(tmp_path_factory.mktemp("td") / "fake")


@pytest.fixture(scope="module")
def md(fake_run: Path) -> str:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "available", lambda: False)  # no figures: keeps these tests fast
        index = report.write_report(fake_run)
    return (index.parent / "report.md").read_text()


def _table(markdown: str, after: str) -> dict[str, dict[str, str]]:
    """The first Markdown table after ``after``, as {first cell: {header: cell}}."""
    lines = markdown[markdown.index(after) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Model |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


HEADLINE = [
    "What each stage bought, in EM points on test (finetune), against the model it was built from:",
    "teacher_stage1 (pretrain from scratch on public): 75.0 EM.",
    "teacher_stage2 (pretrain, continued on domain): +1.9 EM over teacher_stage1.",
    "baselines (pretrain from scratch on domain, public): 70.0 EM (the baseline).",
    "final (distill from teacher_stage2): +1.3 EM over baselines, the same-size no-teacher"
    " baseline.",
    "final_task (task_distill from finetune/teacher_stage2): +5.2 EM over final, 0.4 under its"
    " teacher.",
    "What each stage bought, in EM points on test (outside), against the model it was built from:",
    "outside (task_distill from /models/teacher): 74.0 EM.",
]


def test_joined_row_after_the_stage_own_models(md: str) -> None:
    rows = _table(md, "## Fine-tuning: finetune (intent_slot)")
    assert list(rows) == [
        "teacher_stage1",
        "teacher_stage2",
        "baselines (baseline)",
        "final",
        "ext",  # a folder: after the stages, but still one of the stage's own models
        "final_task",
    ]
    row = rows["final_task"]
    assert row["EM (%)"] == "76.5"
    assert row["Δerr EM"] == "−21.7%"  # error 0.235 vs the baseline's 0.30
    assert row["Non-emb. params"] == "90.0K" and row["p50 (ms)"] == "1.50"
    assert "final_task: task_distill from finetune/teacher_stage2, trained on 500 labeled" in md


def test_joined_model_in_the_view(fake_run: Path) -> None:
    run = run_view.load_run(fake_run)
    assert [(ft.name, ft.kind) for ft in run.finetunes] == [
        ("finetune", "finetune"),
        ("outside", "task_distill"),
    ]
    ft = run.finetunes[0]
    assert ft.model_dir("final_task") == Path("final_task/final")  # its training log
    assert ft.model_dir("final") == Path("finetune/final")
    assert ft.find("finetune/teacher_stage2") is ft.models["teacher_stage2"]
    assert ft.relative_error(ft.models["final_task"], "exact_match") == pytest.approx(-0.065 / 0.3)
    assert run.finetunes[1].model_dir("outside") == Path("outside/final")


def test_standalone_task_distill_section(md: str) -> None:
    at = "## Fine-tuning: outside (task distillation, intent_slot)"
    rows = _table(md, at)
    assert list(rows) == ["outside"]
    assert rows["outside"]["EM (%)"] == "74.0" and rows["outside"]["Δerr EM"] == "—"
    section = md[md.index(at) :]
    assert "No baseline is set for this stage" in section
    assert "outside: task_distill from /models/teacher, trained on 500 labeled" in section
    assert "Pretraining metrics vs downstream accuracy" not in section  # one model: no ρ


def test_headline_sentences(fake_run: Path, md: str) -> None:
    run = run_view.load_run(fake_run)
    assert headline.headline(run) == HEADLINE
    assert md.index("## Headline") < md.index("## Stages")
    for line in HEADLINE:
        assert line in md
    summary = report.report_summary(fake_run)
    assert "\n".join(HEADLINE) in summary
    assert "outside (task distillation, intent_slot, scores on test):" in summary


def test_summary_shows_the_joined_row(fake_run: Path) -> None:
    summary = report.report_summary(fake_run)
    at = summary.index("finetune (intent_slot, scores on test):")
    line = next(x for x in summary[at:].splitlines() if x.startswith("final_task "))
    assert line.split()[-2:] == ["−21.7%", "1.50"]  # Δerr EM, p50


def test_headline_without_a_same_size_baseline(tmp_path: Path) -> None:
    """No same-size no-teacher row: a distill stage is measured against its teacher; a stage
    whose reference has no row gets its score alone."""
    run = _make_run(tmp_path / "fake")
    metrics = json.loads((run / "finetune" / "metrics.json").read_text())
    del metrics["models"]["baselines"], metrics["models"]["teacher_stage1"]
    metrics["baseline"] = None
    (run / "finetune" / "metrics.json").write_text(json.dumps(metrics))
    lines = headline.headline(run_view.load_run(run))
    assert lines[1:4] == [
        "teacher_stage2 (pretrain, continued on domain): 76.9 EM.",
        "final (distill from teacher_stage2): 5.6 under its teacher teacher_stage2.",
        "final_task (task_distill from finetune/teacher_stage2): +5.2 EM over final, 0.4 under"
        " its teacher.",
    ]


def test_task_distill_chains_and_dangling_joins() -> None:
    kinds = {"ft": "finetune", "td1": "task_distill", "td2": "task_distill"}
    kinds |= {"td3": "task_distill", "td4": "task_distill"}
    stages: Any = {name: {"kind": kind} for name, kind in kinds.items()}
    model = {"source": "x", "encoder": "full"}
    metrics: dict[str, dict[str, Any]] = {"ft": {"models": {"a": model}}}
    for name, joins in {"td1": "ft", "td2": "td1", "td3": "gone", "td4": "td3"}.items():
        metrics[name] = {"joins": joins, "models": {name: model | {"source": name}}}
    run = run_view.Run(Path("x"), stages, metrics)
    views = {ft.name: list(ft.models) for ft in run.finetunes}
    assert views == {"ft": ["a", "td1", "td2"], "td3": ["td3", "td4"]}


def test_fmt_points_and_gap() -> None:
    assert headline.fmt_points(0.019) == "+1.9"
    assert headline.fmt_points(-0.0331) == "−3.3"
    assert headline.fmt_points(-0.0001) == "0.0"
    assert headline.fmt_gap(0.765, 0.769) == "0.4 under"
    assert headline.fmt_gap(0.8, 0.769) == "3.1 over"
    assert headline.fmt_gap(0.7691, 0.769) == "level with"


def test_a_same_size_model_pretrained_from_a_distilled_one_is_not_a_no_teacher_baseline(
    tmp_path: Path,
) -> None:
    """``adapted`` (pretrain with init: final) has final's size but learned from a teacher."""
    run = _make_run(tmp_path / "fake")
    metrics = json.loads((run / "finetune" / "metrics.json").read_text())
    del metrics["models"]["baselines"]
    metrics["baseline"] = None
    metrics["models"]["adapted"] = _model("adapted", 0.72, "/elsewhere/finetune/adapted")
    metrics["models"]["adapted"]["parameters"] = SMALL
    (run / "finetune" / "metrics.json").write_text(json.dumps(metrics))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["adapted"] = {"hash": "0" * 16, "kind": "pretrain", "seconds": 1.0}
    (run / "manifest.json").write_text(json.dumps(manifest))
    stages = STAGES | {"adapted": {"kind": "pretrain", "init": "final", "data": {"domain": 1.0}}}
    (run / "adapted").mkdir()
    (run / "adapted" / "recipe.yaml").write_text(yaml.safe_dump({"name": "x", "stages": stages}))
    lines = headline.headline(run_view.load_run(run))
    assert "final (distill from teacher_stage2): 5.6 under its teacher teacher_stage2." in lines


def test_an_ensemble_teacher_is_named_and_its_best_member_compared(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "fake")
    shutil.rmtree(run / "final_task" / "final")
    ensemble = ["finetune/teacher_stage1", "finetune/teacher_stage2", "finetune/final"]
    _task_distill(run, "final_task", "finetune", ensemble)
    lines = headline.headline(run_view.load_run(run))
    assert lines[5] == (
        "final_task (task_distill from finetune/teacher_stage1, finetune/teacher_stage2,"
        " finetune/final): +5.2 EM over final, 0.4 under its best teacher"
        " finetune/teacher_stage2."
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "available", lambda: False)
        index = report.write_report(run)
    md = (index.parent / "report.md").read_text()
    assert (
        "final_task: task_distill from the ensemble of finetune/teacher_stage1,"
        " finetune/teacher_stage2, finetune/final, trained on 500 labeled"
    ) in md
