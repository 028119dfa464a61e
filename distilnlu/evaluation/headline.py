"""The report's headline: one sentence per stage saying what it bought in the task's primary
metric (EM for intent + slot) on the primary test set.

Each full-encoder model of a fine-tune view that a run stage trained is compared with the model
it was built from, fine-tuned in the same view and scored on the same set:

- pretrain with ``init``: the ``init`` model ("+1.9 EM over teacher_stage1");
- pretrain from scratch: nothing it was built from, so its score alone;
- distill: the same-size model pretrained without a teacher (the view's baseline first, then the
  other pretrain rows of equal non-embedding size); without one, the gap to its last teacher;
- task_distill: its student fine-tuned without a teacher, and the gap to its teacher's row.

Differences are in points of the metric (percentage points), rounded to 0.1. A model whose
reference has no row (or no score) in the view gets its score alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from distilnlu.evaluation.render import MINUS, fmt_pct
from distilnlu.evaluation.run_view import TASK_DISTILL, Finetune, Run, number
from distilnlu.rundir import ModelMetrics


def fmt_points(delta: float) -> str:
    """A signed difference of two fractions in points: 0.019 -> "+1.9", -0.0001 -> "0.0"."""
    text = f"{100 * delta:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text.replace("-", MINUS)


def fmt_gap(model: float, teacher: float) -> str:
    """How far a student is from its teacher: "0.4 under", "0.3 over" or "level with"."""
    points = round(100 * (teacher - model), 1)
    if points == 0:
        return "level with"
    return f"{abs(points):.1f} {'under' if points > 0 else 'over'}"


Said = tuple[str, str]
"""What a stage did ("pretrain, continued on domain") and what it bought ("" when unknown)."""


def names(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


class Headline:
    """The sentences of one fine-tune view."""

    def __init__(self, run: Run, ft: Finetune) -> None:
        self.run, self.ft = run, ft
        self.metric, self.label = ft.task.primary

    def score(self, model: ModelMetrics | None) -> float:
        return math.nan if model is None else self.ft.value(model, self.metric)

    def full_row(self, source: Any) -> ModelMetrics | None:
        """The full-encoder row of ``source`` that has a score."""
        rows = (m for _, m in self.ft.mode("full") if m.get("source") == source)
        return next((m for m in rows if not math.isnan(self.score(m))), None)

    def size(self, model: ModelMetrics) -> float:
        params = model.get("parameters") or self.run.trained(str(model.get("source"))).get(
            "parameters"
        )
        return number((params or {}).get("non_embedding"))

    def same_size_no_teacher(self, model: ModelMetrics) -> ModelMetrics | None:
        """The view's baseline, else the first other row of ``model``'s size pretrained from
        scratch (a pretrain stage with ``init`` may have started from a distilled model)."""
        rows = sorted(self.ft.mode("full"), key=lambda km: not self.ft.is_baseline(km[1]))
        for _, row in rows:
            source = str(row.get("source"))
            if row is model or self.run.kind(source) != "pretrain":
                continue
            if (self.run.configs.get(source) or {}).get("init") is not None:
                continue
            if self.size(row) == self.size(model) and not math.isnan(self.score(row)):
                return row
        return None

    def over(self, value: float, ref: ModelMetrics, what: str) -> str:
        return f"{fmt_points(value - self.score(ref))} {self.label} over {what}"

    def pretrain(self, model: ModelMetrics, value: float, config: dict[str, Any]) -> Said:
        corpora = names(config.get("data") or {})
        init = config.get("init")
        if init is None:
            what = f"pretrain from scratch on {corpora}" if corpora else "pretrain"
            return what, ""
        what = f"pretrain, continued on {corpora}" if corpora else "pretrain, continued"
        ref = self.full_row(init)
        return what, self.over(value, ref, str(init)) if ref is not None else ""

    def distill(self, model: ModelMetrics, value: float, config: dict[str, Any]) -> Said:
        name = str(model.get("source"))
        teachers = [t.get("model") for t in config.get("teachers") or [] if isinstance(t, dict)]
        teachers = teachers or list(self.run.trained(name).get("teachers") or [])
        what = f"distill from {names(teachers)}" if teachers else "distill"
        ref = self.same_size_no_teacher(model)
        if ref is not None:
            source = ref.get("source")
            if self.ft.is_baseline(ref):
                return what, self.over(value, ref, f"{source}, the same-size no-teacher baseline")
            return what, self.over(value, ref, f"{source} (same size, no teacher)")
        for teacher in reversed(teachers):
            row = self.full_row(teacher)
            if row is not None:
                which = "its teacher" if len(teachers) == 1 else "its last teacher"
                return what, f"{fmt_gap(value, self.score(row))} {which} {teacher}"
        return what, ""

    def task_distill(self, model: ModelMetrics, value: float, config: dict[str, Any]) -> Said:
        name = str(model.get("source"))
        written = (m.get("teacher") for stage, m in self.ft.distilled if stage == name)
        teacher = next(written, None) or config.get("teacher")
        teachers = [teacher] if isinstance(teacher, str) else [str(t) for t in teacher or []]
        what = f"task_distill from {names(teachers)}" if teachers else TASK_DISTILL
        student = config.get("student")
        ref = self.full_row(student) if student is not None else None
        parts = [self.over(value, ref, str(student))] if ref is not None else []
        scored = [(self.score(self.ft.find(t)), t) for t in teachers]
        scored = [(s, t) for s, t in scored if not math.isnan(s)]
        if scored:
            best, which = max(scored)
            its = "its teacher" if len(teachers) == 1 else f"its best teacher {which}"
            parts.append(f"{fmt_gap(value, best)} {its}")
        return what, ", ".join(parts)

    def sentence(self, model: ModelMetrics) -> str | None:
        """What the stage that trained ``model`` bought; None for folders, hub ids and stages
        that train no encoder of their own."""
        name = str(model.get("source"))
        kind = self.run.kind(name)
        explain = {"pretrain": self.pretrain, "distill": self.distill}
        explain[TASK_DISTILL] = self.task_distill
        if kind is None or kind not in explain:
            return None
        value = self.score(model)
        if math.isnan(value):
            return f"{name} ({kind}): no {self.label} on {self.ft.primary}."
        what, compared = explain[kind](model, value, self.run.configs.get(name) or {})
        if not compared:
            compared = f"{fmt_pct(value)} {self.label}"
            compared += " (the baseline)" if self.ft.is_baseline(model) else ""
        return f"{name} ({what}): {compared}."

    def sentences(self) -> list[str]:
        found = (self.sentence(m) for _, m in self.ft.mode("full"))
        return [s for s in found if s is not None]


def headline(run: Run) -> list[str]:
    """Per fine-tune view with a stage-trained model: a lead line, then one sentence per stage."""
    lines = []
    for ft in run.finetunes:
        sentences = Headline(run, ft).sentences()
        if sentences:
            label = ft.task.primary[1]
            lead = f"What each stage bought, in {label} points on {ft.primary} ({ft.name}),"
            lines += [f"{lead} against the model it was built from:", *sentences]
    return lines
