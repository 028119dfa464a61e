"""The report's snapshot section on a fake run folder: table, ρ, figure, summary line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from distilnlu.evaluation import plots, report, run_view, snapshots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# step -> (domain_dev perplexity, domain_dev mask-fill, dev EM). Ranks: perplexity 5 4 3 1 2,
# mask-fill 1 2 3 5 4, EM 1 2 3 4 5, so ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·38/120 = −0.9 and
# 1 − 6·2/120 = +0.9. Step 600 has no dev score (a half-written row): shown, left out of ρ.
POINTS = {
    100: (400.0, 0.01, 0.05),
    200: (200.0, 0.05, 0.10),
    300: (100.0, 0.10, 0.20),
    400: (80.0, 0.12, 0.25),
    500: (90.0, 0.11, 0.26),
    600: (70.0, 0.13, None),
}


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def _score(step: int) -> dict[str, Any]:
    ppl, fill, em = POINTS[step]
    dev = {} if em is None else {"exact_match": em, "intent_accuracy": 0.5, "n": 300}
    return {
        "stage": "teacher_stage1",
        "step": step,
        "lm": {
            "domain_dev": {"perplexity": ppl, "mask_fill_accuracy": fill},
            "public_dev": {"perplexity": 50.0, "mask_fill_accuracy": 0.02},  # constant: no ρ
        },
        "metric": "exact_match",
        "dev": dev,
        "steps": 60,
        "seconds": 3.2,
    }


def fake_run(root: Path, with_snapshots: bool = True) -> Path:
    run = root / "fake"
    stages = {"teacher_stage1": "pretrain", "finetune": "finetune"}
    entries = {
        name: {"hash": "0" * 16, "kind": kind, "output": f"{run}/{name}", "seconds": 1.0}
        for name, kind in stages.items()
    }
    _write(run / "manifest.json", {"stages": entries})
    _write(run / "teacher_stage1" / "metrics.json", {"stage": "teacher_stage1", "eval": {}})
    model = {
        "source": "teacher_stage1",
        "encoder": "full",
        "lm": None,
        "eval": {"nlu_dev": {"exact_match": 0.3, "n": 300}},
    }
    metrics: dict[str, Any] = {
        "stage": "finetune",
        "task": "intent_slot",
        "baseline": None,
        "lm_corpus": "domain_dev",
        "dev": "nlu_dev",
        "primary": "nlu_dev",
        "train_examples": 500,
        "models": {"teacher_stage1": model},
    }
    if with_snapshots:  # written out of order: the view sorts by step
        metrics["snapshots"] = {
            "teacher_stage1": [_score(s) for s in (300, 100, 600, 500, 200, 400)]
        }
    _write(run / "finetune" / "metrics.json", metrics)
    return run


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    index = report.write_report(fake_run(tmp_path_factory.mktemp("snap")))
    return index, (index.parent / "report.md").read_text()


def _section(markdown: str) -> str:
    start = markdown.index(f"### {snapshots.TITLE}")
    end = markdown.find("\n#", start + 4)
    return markdown[start : end if end > 0 else None]


def _cells(section: str, first: str) -> list[str]:
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}")


def test_the_view_reads_the_scores_by_step_leniently(tmp_path: Path) -> None:
    ft = run_view.load_run(fake_run(tmp_path)).finetunes[0]
    points = ft.snapshot_scores["teacher_stage1"]
    assert [p.step for p in points] == sorted(POINTS)
    assert points[0].lm["domain_dev"] == (400.0, 0.01) and points[0].score == 0.05
    assert points[0].steps == 60 and math.isnan(points[-1].score)
    assert run_view.snapshot_point({"lm": {}}, "exact_match") is None  # no step: dropped


def test_the_section_tabulates_every_snapshot_and_prints_rho(written: tuple[Path, str]) -> None:
    _, markdown = written
    section = _section(markdown)
    assert "teacher_stage1: 6 snapshots, each fine-tuned (whole encoder) for 60 steps" in section
    assert _cells(section, "100") == ["100", "400.00", "1.0", "50.00", "2.0", "5.0"]
    assert _cells(section, "600")[-1] == "—"  # no dev score recorded
    assert _cells(section, "Perplexity on domain_dev") == [
        "Perplexity on domain_dev",
        "−0.900",
        "5",
    ]
    assert _cells(section, "Mask-filling accuracy on domain_dev")[1:] == ["0.900", "5"]
    assert _cells(section, "Perplexity on public_dev")[1] == "—"  # constant: undefined
    assert "Note: ρ needs at least two snapshots" in section


def test_the_figure_is_drawn_with_rho_in_its_titles(written: tuple[Path, str]) -> None:
    index, markdown = written
    if not plots.available():
        pytest.skip("matplotlib is not installed")
    png = index.parent / "snapshots_finetune_teacher_stage1.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "(snapshots_finetune_teacher_stage1.png)" in _section(markdown)


def test_the_summary_gains_one_line_with_rho(tmp_path: Path) -> None:
    summary = report.report_summary(fake_run(tmp_path))
    line = (
        "Snapshots of teacher_stage1 (6, scored by finetune): Spearman ρ with dev EM: "
        "perplexity on domain_dev −0.900, mask-filling accuracy 0.900."
    )
    assert line in summary.splitlines()


def test_no_section_and_no_summary_line_without_snapshot_scores(tmp_path: Path) -> None:
    run = fake_run(tmp_path, with_snapshots=False)
    index = report.write_report(run)
    assert snapshots.TITLE not in (index.parent / "report.md").read_text()
    assert "Snapshots of" not in report.report_summary(run)


def test_joined_snapshots_draw_nothing_without_usable_points(tmp_path: Path) -> None:
    empty = [plots.Point("step 1", math.nan, 0.1)]
    draw = plots.draw_correlation
    assert not draw(tmp_path / "x.png", "EM", (empty, "a"), (empty, "b"), joined=True)
    assert not (tmp_path / "x.png").exists()
