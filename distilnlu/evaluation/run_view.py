"""A run folder read into views for the report: stages, fine-tune stages, held-out LM metrics.

Reads only what the stages wrote (the layout is :mod:`distilnlu.rundir`'s) and reads it
leniently: a missing or half-written file reads as empty and a value that is not a finite number
as NaN, so a report can be made for a run that is still going or was killed.

A ``task_distill`` stage writes its ``metrics.json`` in the ``finetune`` layout; its model joins
the view of the fine-tune stage it ``joins`` (the stage of its teacher), so every table, plot and
summary shows it as one more row of that stage. One that joins none (its teacher a folder) is a
view of its own.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import yaml

from distilnlu import rundir
from distilnlu.errors import DataError
from distilnlu.evaluation.metrics import relative_error_change
from distilnlu.evaluation.render import is_number
from distilnlu.rundir import FinetuneMetrics, ManifestEntry, ModelMetrics, TrainedMetrics
from distilnlu.tasks import INTENT_SLOT, TASKS, Task

ERROR_RATES = frozenset({"semer"})  # lower is better; every other metric is accuracy-like
TASK_DISTILL = "task_distill"


def number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a finite number."""
    return float(value) if is_number(value) else math.nan


@dataclass(frozen=True)
class Finetune:
    """One finished ``finetune`` stage: its ``metrics.json`` and derived look-ups."""

    name: str
    metrics: FinetuneMetrics
    stage_order: tuple[str, ...] = ()  # the run's stages in execution order
    joined: tuple[tuple[str, FinetuneMetrics], ...] = ()
    """task_distill stages whose models join this view, in execution order: (stage, metrics)."""
    kind: str = "finetune"  # or "task_distill": a task_distill stage that joins no other view

    @property
    def task(self) -> Task:
        return TASKS.get(str(self.metrics.get("task")), INTENT_SLOT)

    def ranked(self, metrics: FinetuneMetrics) -> list[tuple[str, ModelMetrics]]:
        """Models of ``metrics`` by the order their source stage ran in (folders, hub ids last)."""
        models = metrics.get("models") or {}
        rank = {stage: i for i, stage in enumerate(self.stage_order)}
        items = [(k, m) for k, m in models.items() if isinstance(m, dict)]
        return sorted(items, key=lambda km: rank.get(str(km[1].get("source")), len(rank)))

    @cached_property
    def rows(self) -> dict[str, tuple[ModelMetrics, str, str]]:
        """Model key -> (metrics, stage folder, model folder inside it): this stage's own models
        first, then those of the joining task_distill stages. A finetune stage keys a model by
        its folder; a task_distill stage by its own name (the folder is named after the student)."""
        rows: dict[str, tuple[ModelMetrics, str, str]] = {}
        for stage, metrics in [(self.name, self.metrics), *self.joined]:
            distilled = stage != self.name or self.kind == TASK_DISTILL
            for key, m in self.ranked(metrics):
                folder = Path(str(m.get("folder") or key)).name if distilled else key
                rows[key if key not in rows else f"{stage}/{key}"] = (m, stage, folder)
        return rows

    @cached_property
    def models(self) -> dict[str, ModelMetrics]:
        """Own models by the order their source stage ran in (folders and hub ids last, as
        listed), then the models of the task_distill stages that join this one."""
        return {key: m for key, (m, _, _) in self.rows.items()}

    def model_dir(self, key: str) -> Path:
        """The folder of a model's files, relative to the run folder."""
        _, stage, folder = self.rows.get(key, (None, self.name, key))
        return Path(stage) / folder

    def find(self, ref: str) -> ModelMetrics | None:
        """The model of a '<stage>/<model folder>' reference (a task_distill teacher)."""
        stage, _, folder = ref.partition("/")
        found = (m for m, s, f in self.rows.values() if (s, f) == (stage, folder))
        return next(found, None)

    @property
    def distilled(self) -> list[tuple[str, FinetuneMetrics]]:
        """The task_distill stages shown in this view: itself, or those that join it."""
        own = [(self.name, self.metrics)] if self.kind == TASK_DISTILL else []
        return own + list(self.joined)

    @cached_property
    def sets(self) -> list[str]:
        """Evaluation sets of all models, in the order written (the dev set first)."""
        names = (name for m in self.models.values() for name in m.get("eval") or {})
        return list(dict.fromkeys(names))

    @property
    def primary(self) -> str:
        primary = self.metrics.get("primary")
        return primary if primary in self.sets or not self.sets else self.sets[0]

    @property
    def dev(self) -> str:
        dev = self.metrics.get("dev", "dev")
        return dev if dev in self.sets or not self.sets else self.sets[0]

    @property
    def baseline(self) -> str | None:
        return self.metrics.get("baseline")

    def mode(self, encoder: str) -> list[tuple[str, ModelMetrics]]:
        return [(k, m) for k, m in self.models.items() if m.get("encoder", "full") == encoder]

    def is_baseline(self, model: ModelMetrics) -> bool:
        return self.baseline is not None and model.get("source") == self.baseline

    def baseline_for(self, model: ModelMetrics) -> ModelMetrics | None:
        encoder = model.get("encoder", "full")
        return next((m for _, m in self.mode(encoder) if self.is_baseline(m)), None)

    def value(self, model: ModelMetrics, key: str, eval_set: str | None = None) -> float:
        metrics = (model.get("eval") or {}).get(eval_set or self.primary) or {}
        return number(metrics.get(key))

    def relative_error(self, model: ModelMetrics, key: str) -> float:
        base = self.baseline_for(model)
        if base is None:
            return math.nan
        higher = key not in ERROR_RATES
        try:
            return relative_error_change(
                self.value(model, key), self.value(base, key), higher_is_better=higher
            )
        except ValueError:  # a value outside its range: show "—" rather than fail the report
            return math.nan

    def language(self, eval_set: str) -> str | None:
        for model in self.models.values():
            language = ((model.get("eval") or {}).get(eval_set) or {}).get("language")
            if language:
                return str(language)
        return None

    def language_sets(self) -> dict[str, str]:
        """``{language: eval set}``, preferring the primary set, then other test sets, then dev."""
        preferred = [self.primary, *[s for s in self.sets if s not in (self.primary, self.dev)]]
        chosen: dict[str, str] = {}
        for eval_set in [*preferred, self.dev]:
            language = self.language(eval_set)
            if language and language not in chosen:
                chosen[language] = eval_set
        order = [self.language(s) for s in self.sets]  # columns in the order the sets were written
        return {lang: chosen[lang] for lang in dict.fromkeys(order) if lang in chosen}

    @cached_property
    def snapshot_scores(self) -> dict[str, list[SnapshotPoint]]:
        """LM stage -> its kept snapshots as this stage scored them (``snapshots``), by step;
        {} when the stage scored none."""
        found = self.metrics.get("snapshots")
        scored: dict[str, list[SnapshotPoint]] = {}
        for stage, rows in (found if isinstance(found, dict) else {}).items():
            points = [snapshot_point(r, self.task.primary[0]) for r in rows or []]
            scored[str(stage)] = sorted((p for p in points if p), key=lambda p: p.step)
        return scored


@dataclass(frozen=True)
class Run:
    path: Path
    stages: dict[str, ManifestEntry]  # manifest entries, in execution order
    metrics: dict[str, dict[str, Any]]  # stage -> metrics.json ({} when missing)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def seconds(self) -> float:
        """Wall time of all stages run (those that recorded one)."""
        return math.fsum(number(e.get("seconds")) for e in self.stages.values() if "seconds" in e)

    def of_kind(self, *kinds: str) -> list[str]:
        return [name for name, entry in self.stages.items() if entry.get("kind") in kinds]

    def kind(self, name: str) -> str | None:
        """The kind of a stage of the run; None for a folder, a hub id or an unknown stage."""
        entry = self.stages.get(name)
        return entry.get("kind") if entry else None

    def lm_stages(self) -> list[str]:
        """The stages that trained a masked LM (pretrain, distill), in execution order."""
        return self.of_kind(*rundir.LM_KINDS)

    def trained(self, name: str) -> TrainedMetrics:
        """The metrics of a pretrain/distill stage (empty when it has none)."""
        return cast(TrainedMetrics, self.metrics.get(name, {}))

    def host(self, name: str, seen: frozenset[str] = frozenset()) -> str | None:
        """The view a task_distill stage's model joins: the finetune stage it ``joins``, or the
        view of the task_distill stage it joins (a teacher from that stage's folder); None when
        it joins none, so that it is a view of its own."""
        joins = self.metrics.get(name, {}).get("joins")
        if not isinstance(joins, str) or joins in seen:
            return None
        kind = self.kind(joins)
        if kind == "finetune":
            return joins
        if kind == TASK_DISTILL:
            return self.host(joins, seen | {name}) or joins
        return None

    @cached_property
    def finetunes(self) -> list[Finetune]:
        """A view per finetune stage (the task_distill models that join it as rows) and per
        task_distill stage that joins none, in execution order."""
        order = tuple(self.stages)
        joined: dict[str, list[tuple[str, FinetuneMetrics]]] = {}
        for name in self.of_kind(TASK_DISTILL):
            if (host := self.host(name)) is not None:
                joined.setdefault(host, []).append(
                    (name, cast(FinetuneMetrics, self.metrics[name]))
                )
        views = []
        for name in self.of_kind("finetune", TASK_DISTILL):
            kind = self.stages[name]["kind"]
            if kind == TASK_DISTILL and self.host(name) is not None:
                continue
            metrics = cast(FinetuneMetrics, self.metrics[name])
            views.append(Finetune(name, metrics, order, tuple(joined.get(name, [])), kind))
        return views

    @cached_property
    def configs(self) -> dict[str, dict[str, Any]]:
        """Each stage's own config, from the resolved recipe in its folder ({} when unreadable)."""
        configs: dict[str, dict[str, Any]] = {}
        for name in self.stages:
            try:
                recipe = yaml.safe_load((self.path / name / rundir.RECIPE).read_text("utf-8"))
            except (OSError, yaml.YAMLError):
                recipe = None
            stages = recipe.get("stages") if isinstance(recipe, dict) else None
            config = stages.get(name) if isinstance(stages, dict) else None
            configs[name] = config if isinstance(config, dict) else {}
        return configs

    @cached_property
    def recipe(self) -> dict[str, Any]:
        """The recipe the run was last run with (``{}`` when missing or unreadable)."""
        try:
            recipe = yaml.safe_load((self.path / rundir.RECIPE).read_text("utf-8"))
        except (OSError, yaml.YAMLError):
            return {}
        return recipe if isinstance(recipe, dict) else {}


def load_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    manifest = run_dir / rundir.MANIFEST
    if not manifest.is_file():
        raise DataError(f"{run_dir} is not a run folder: it has no {rundir.MANIFEST}")
    data = rundir.read_json(manifest)
    if data is None or not isinstance(data.get("stages"), dict):
        raise DataError(f"{manifest} is not a valid run manifest (no 'stages' object)")
    stages = {k: cast(ManifestEntry, v) for k, v in data["stages"].items() if isinstance(v, dict)}
    metrics = {name: rundir.read_json(run_dir / name / rundir.METRICS) or {} for name in stages}
    return Run(run_dir, stages, metrics)


# --------------------------------------------------------------------------- held-out LM metrics


@dataclass(frozen=True)
class HeldOut:
    """A pretrain/distill stage's final held-out evaluation on one corpus (NaN: not recorded)."""

    stage: str
    corpus: str
    perplexity: float = math.nan
    mask_fill_accuracy: float = math.nan
    mask_fill_n: float = math.nan


@dataclass(frozen=True)
class HeldOutLM:
    """Every held-out evaluation of a run's LM stages; its teacher switches as notes."""

    rows: list[HeldOut]
    switches: list[str]

    @property
    def corpora(self) -> list[str]:
        return list(dict.fromkeys(row.corpus for row in self.rows))

    def get(self, stage: str, corpus: str) -> HeldOut:
        found = (r for r in self.rows if (r.stage, r.corpus) == (stage, corpus))
        return next(found, HeldOut(stage, corpus))


def heldout_lm(run: Run, stages: Collection[str] | None = None) -> HeldOutLM:
    """Held-out perplexity, mask-filling accuracy and n of each LM stage (only ``stages`` when
    given) on each corpus it was evaluated on; a distill stage's teacher switches as notes."""
    rows, switches = [], []
    for name in run.lm_stages():
        if stages is not None and name not in stages:
            continue
        metrics = run.trained(name)
        for corpus, value in (metrics.get("eval") or {}).items():
            ev: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
            rows.append(
                HeldOut(
                    name,
                    corpus,
                    number(ev.get("perplexity")),
                    number(ev.get("mask_fill_accuracy")),
                    number(ev.get("mask_fill_n")),
                )
            )
        for s in metrics.get("teacher_switches") or []:
            if isinstance(s, dict):
                switches.append(
                    f"{name}: teacher {s.get('from_teacher', '?')} -> {s.get('to_teacher', '?')} "
                    f"after step {s.get('step', '?')} ({s.get('reason', '?')})"
                )
    return HeldOutLM(rows, switches)


@dataclass(frozen=True)
class SnapshotPoint:
    """One kept snapshot of an LM stage, as a finetune stage scored it (NaN: not recorded)."""

    step: int
    lm: dict[str, tuple[float, float]]
    """Eval corpus of the LM stage -> (perplexity, mask-filling accuracy) of the snapshot."""
    score: float
    """The task's primary metric on dev after the short fine-tuning (a fraction)."""
    steps: int = 0
    """Fine-tuning steps it had (0: not recorded)."""


def snapshot_point(row: Any, metric: str) -> SnapshotPoint | None:
    """A score row of a finetune stage's ``snapshots`` (None when it names no step)."""
    if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        return None
    lm: dict[str, Any] = row["lm"] if isinstance(row.get("lm"), dict) else {}
    dev: dict[str, Any] = row["dev"] if isinstance(row.get("dev"), dict) else {}
    values = {
        str(corpus): (number(ev.get("perplexity")), number(ev.get("mask_fill_accuracy")))
        for corpus, ev in lm.items()
        if isinstance(ev, dict)
    }
    score = number(dev.get(str(row.get("metric") or metric)))
    steps = row.get("steps")
    return SnapshotPoint(row["step"], values, score, steps if isinstance(steps, int) else 0)


def lm_values(run: Run, ft: Finetune, model: ModelMetrics) -> tuple[float, float, str | None]:
    """Perplexity, mask-filling accuracy and, when not measured by the fine-tune stage itself, the
    corpus of the source stage's own evaluation they were taken from."""
    lm = model.get("lm")
    if isinstance(lm, dict):
        return number(lm.get("perplexity")), number(lm.get("mask_fill_accuracy")), None
    evals = run.trained(str(model.get("source"))).get("eval") or {}
    if not evals:
        return math.nan, math.nan, None
    named = ft.metrics.get("lm_corpus")
    corpus = named if named is not None and named in evals else next(iter(evals))
    ev = evals[corpus] or {}
    return number(ev.get("perplexity")), number(ev.get("mask_fill_accuracy")), corpus
