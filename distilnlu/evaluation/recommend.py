"""Which model to ship: the most accurate one on dev within a latency budget.

A fine-tune view's models are compared on the dev set's primary metric (EM for intent + slot):
the test sets stay for reporting, so choosing among models does not tune on them. The budget is
the recipe's ``report.latency_budget_ms``, else ``report.latency_factor`` (default 2) × the p50
of the smallest student: the smallest model (non-embedding parameters) that a ``distill`` or
``task_distill`` stage trained, or the view's smallest model when no stage distilled one. The
recommendation says why, and what it gives up against the most accurate model of the view.

Latency is the p50 the fine-tune stage measured: one utterance at a time on one thread with the
PyTorch model (``latency_texts``), so all rows of a view were timed alike.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from distilnlu.config import ReportConfig
from distilnlu.errors import ConfigError
from distilnlu.evaluation import plots
from distilnlu.evaluation.render import Block, Section, Table, fmt_float, fmt_pct
from distilnlu.evaluation.run_view import TASK_DISTILL, Finetune, Run, load_run, number
from distilnlu.rundir import ModelMetrics

STUDENT_KINDS = frozenset({"distill", TASK_DISTILL})


@dataclass(frozen=True)
class Candidate:
    """One fine-tuned model of a view, with what the choice looks at."""

    key: str
    model: ModelMetrics
    dev: float  # the primary metric on the dev set (a fraction; higher is better)
    test: float  # the same on the view's primary evaluation set
    p50: float  # ms: the median of the measured p50s of the models of this size (see below)
    non_embedding: float
    measured: float = math.nan  # ms: this model's own p50
    peers: int = 1  # models of this size whose measurements the median is over

    @property
    def encoder(self) -> str:
        return str(self.model.get("encoder", "full"))


@dataclass(frozen=True)
class Budget:
    ms: float
    rule: str  # how it was set, for the sentence: "2 × the p50 of final (0.61 ms)"


@dataclass(frozen=True)
class Recommendation:
    view: str
    label: str  # the metric's short name ("EM")
    dev_set: str
    primary_set: str
    budget: Budget
    candidates: tuple[Candidate, ...]
    chosen: Candidate | None
    best: Candidate  # the most accurate model of the view, whatever its latency
    folder: Path | None  # the chosen model's folder, relative to the run folder

    def sentence(self) -> str:
        """Why this model, and what it costs against the most accurate one."""
        within = f"within the latency budget of {fmt_float(self.budget.ms)} ms ({self.budget.rule})"
        if self.chosen is None:
            fastest = min(self.candidates, key=lambda c: c.p50)
            return (
                f"No model of {self.view} is {within}; the fastest, {fastest.key}, takes "
                f"{fmt_float(fastest.p50)} ms. Raise report.latency_budget_ms or train a smaller "
                "student."
            )
        c, b = self.chosen, self.best
        text = (
            f"Ship {c.key}: the most accurate model on {self.dev_set} {within}, at "
            f"{self.label} {fmt_pct(c.dev)}% on {self.dev_set} and {fmt_pct(c.test)}% on "
            f"{self.primary_set}, p50 {fmt_float(c.p50)} ms."
        )
        if b.key == c.key:
            return text + f" It is also the most accurate model of {self.view}."
        points = 100 * (b.dev - c.dev)
        return text + (
            f" The most accurate model, {b.key}, is {points:.1f} {self.label} points better on"
            f" {self.dev_set} ({fmt_pct(b.test)}% on {self.primary_set}) at"
            f" {b.p50 / c.p50:.1f}× its latency ({fmt_float(b.p50)} ms)."
        )


def candidates(run: Run, ft: Finetune) -> list[Candidate]:
    """The view's models that have a dev score and a measured latency.

    Models of one size (embedding and non-embedding parameters) share one shape and so one
    cost, whatever their weights; each gets the median of their measured p50s, which damps the
    noise of a single timing (one model timed at 1.8× its same-shape peer has been seen)."""
    metric, _ = ft.task.primary
    found: list[Candidate] = []
    sizes: list[object] = []  # the group of each model: its size, or its key when unknown
    for key, model in ft.models.items():
        dev = ft.value(model, metric, ft.dev)
        p50 = number((model.get("latency_ms") or {}).get("p50"))
        if math.isnan(dev) or math.isnan(p50) or p50 <= 0:
            continue
        params = model.get("parameters") or run.trained(str(model.get("source"))).get("parameters")
        size = tuple(number((params or {}).get(k)) for k in ("embedding", "non_embedding"))
        sizes.append(key if any(math.isnan(v) for v in size) else size)
        found.append(Candidate(key, model, dev, ft.value(model, metric), p50, size[1], p50))
    shared = []
    for c, group in zip(found, sizes, strict=True):
        same = [o.measured for o, g in zip(found, sizes, strict=True) if g == group]
        shared.append(replace(c, p50=statistics.median(same), peers=len(same)))
    return shared


def smallest_student(run: Run, found: Sequence[Candidate]) -> Candidate:
    """The smallest model a distillation stage trained (full encoder first, then the fastest);
    the view's smallest model when none was distilled."""
    students = [c for c in found if run.kind(str(c.model.get("source"))) in STUDENT_KINDS]
    pool = students or list(found)
    unknown = math.inf  # a size not recorded: never the smallest

    def order(c: Candidate) -> tuple[float, bool, float]:
        return (
            unknown if math.isnan(c.non_embedding) else c.non_embedding,
            c.encoder != "full",
            c.p50,
        )

    return min(pool, key=order)


def budget_of(run: Run, found: Sequence[Candidate], config: ReportConfig) -> Budget:
    """The recipe's budget, or the factor × the smallest student's latency."""
    if config.latency_budget_ms is not None:
        return Budget(config.latency_budget_ms, "report.latency_budget_ms")
    small = smallest_student(run, found)
    factor = config.latency_factor
    if small.peers == 1:
        rule = f"{factor:g} × the p50 of {small.key}, {fmt_float(small.p50)} ms"
    else:
        rule = (
            f"{factor:g} × {fmt_float(small.p50)} ms, the median p50 of the {small.peers} models"
            f" of {small.key}'s size"
        )
    return Budget(factor * small.p50, rule)


def most_accurate(found: Sequence[Candidate]) -> Candidate:
    """Highest dev score; among equals the faster, then the full encoder."""
    return max(found, key=lambda c: (c.dev, -c.p50, c.encoder == "full"))


def recommend(run: Run, ft: Finetune, config: ReportConfig | None = None) -> Recommendation | None:
    """The recommendation of one fine-tune view; None when no model has a dev score and a
    latency (latency_texts: 0, or a stage still running)."""
    found = candidates(run, ft)
    if not found:
        return None
    budget = budget_of(run, found, config or run_report_config(run))
    fitting = [c for c in found if c.p50 <= budget.ms]
    chosen = most_accurate(fitting) if fitting else None
    folder = ft.model_dir(chosen.key) if chosen is not None else None
    _, label = ft.task.primary
    return Recommendation(
        ft.name, label, ft.dev, ft.primary, budget, tuple(found), chosen, most_accurate(found),
        folder,
    )  # fmt: skip


def run_report_config(run: Run) -> ReportConfig:
    """The ``report`` settings of the recipe the run was last run with (defaults without one)."""
    section = run.recipe.get("report")
    try:
        return ReportConfig.model_validate(section if isinstance(section, dict) else {})
    except ValueError:  # a hand-edited recipe.yaml: recommend with the defaults
        return ReportConfig()


def pareto_front(found: Sequence[Candidate]) -> list[Candidate]:
    """The models no other model beats on both dev score and latency, fastest first."""
    front: list[Candidate] = []
    for c in sorted(found, key=lambda c: (c.p50, -c.dev)):
        if not front or c.dev > front[-1].dev:
            front.append(c)
    return front


def tradeoff_table(rec: Recommendation) -> Table:
    front = {c.key for c in pareto_front(rec.candidates)}
    rows = [
        [
            c.key + (" (ship)" if rec.chosen is not None and c.key == rec.chosen.key else ""),
            fmt_pct(c.dev),
            fmt_pct(c.test),
            fmt_float(c.p50),
            fmt_float(c.measured),
            "yes" if c.p50 <= rec.budget.ms else "no",
            "yes" if c.key in front else "",
        ]
        for c in sorted(rec.candidates, key=lambda c: c.p50)
    ]
    header = ["Model", f"{rec.dev_set} {rec.label} (%)", f"{rec.primary_set} {rec.label} (%)"]
    return Table([*header, "p50 (ms)", "Own p50 (ms)", "Within budget", "Pareto front"], rows)


SHARED_P50 = (
    "p50: one utterance at a time on one thread; the median over the models of the same size"
    " (one shape, one cost), which damps the noise of a single timing. Own p50: the model's own"
    " measurement."
)


def recommendation_sections(
    run: Run, figures: plots.Figures, config: ReportConfig | None = None
) -> list[Section]:
    """Per fine-tune view: the model to ship, the trade-off table and the accuracy-vs-latency
    plot with its Pareto front."""
    sections = []
    for ft in run.finetunes:
        rec = recommend(run, ft, config)
        if rec is None:
            continue
        points = [plots.Point(c.key, c.p50, c.dev) for c in rec.candidates]
        front = [plots.Point(c.key, c.p50, c.dev) for c in pareto_front(rec.candidates)]
        chosen = rec.chosen.key if rec.chosen is not None else None
        title = f"{ft.name}: {rec.label} on {rec.dev_set} against latency"
        blocks: list[Block] = [rec.sentence(), tradeoff_table(rec), SHARED_P50]
        blocks += figures.make(
            f"tradeoff_{ft.name}",
            "Each model at its dev score and one-utterance p50 latency (one thread); the line"
            " joins the models no other model beats on both, the dashed one is the budget.",
            partial(
                plots.draw_tradeoff, title=title, ylabel=f"{rec.label} on {rec.dev_set} (%)",
                points=points, front=front, budget_ms=rec.budget.ms, chosen=chosen,
            ),
        )  # fmt: skip
        sections.append(Section(f"Recommendation: {ft.name}", blocks))
    return sections


def shipping_folder(run_dir: Path, config: ReportConfig | None = None) -> Path | None:
    """The folder of the intent + slot model the report recommends (of the last such view);
    without a recommendation (no latency measured), that view's last full-encoder model."""
    run = load_run(run_dir)
    for ft in reversed(run.finetunes):
        if not ft.task.has_slots:
            continue
        rec = recommend(run, ft, config)
        if rec is not None and rec.folder is not None:
            return run.path / rec.folder
        full = [key for key, _ in ft.mode("full")]
        if full:
            return run.path / ft.model_dir(full[-1])
    return None


def report_config(
    run_dir: Path, budget_ms: float | None = None, factor: float | None = None
) -> ReportConfig:
    """The run's ``report`` settings with the ``report`` command's flags applied over them."""
    config = run_report_config(load_run(run_dir))
    for flag, value, key in (
        ("--latency-budget-ms", budget_ms, "latency_budget_ms"),
        ("--latency-factor", factor, "latency_factor"),
    ):
        if value is None:
            continue
        try:
            config = ReportConfig.model_validate(config.model_dump() | {key: value})
        except ValueError:
            least = "more than 0" if key == "latency_budget_ms" else "at least 1"
            raise ConfigError(f"{flag} {value:g}: must be {least}") from None
    return config
