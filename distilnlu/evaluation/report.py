"""Run report: Markdown and HTML pages with PNG figures, made from a run folder.

Reads only what the stages wrote (``manifest.json``, each stage's ``metrics.json`` and
``metrics.jsonl``, each fine-tuned model's ``metrics.jsonl``), so a report can be (re)made at any
time, also for a run that is still going or was killed: whatever is missing shows as "—" with a
note. The content is built once as a list of sections and rendered twice, so ``report.md`` and
``index.html`` always say the same thing.

Relative errors compare each fine-tuned model with the stage's baseline model fine-tuned in the
same encoder mode (full or frozen) on the same evaluation set (DESIGN.md §6).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from distilnlu.errors import DataError
from distilnlu.evaluation import plots
from distilnlu.evaluation.metrics import relative_error_change, spearman
from distilnlu.evaluation.render import (
    DASH,
    MINUS,
    Block,
    Image,
    Section,
    Table,
    fmt_change,
    fmt_count,
    fmt_float,
    fmt_int,
    fmt_pct,
    fmt_seconds,
    html_page,
    markdown,
    slug,
    text_table,
    with_dash_note,
)

LM_KINDS = ("pretrain", "distill")
# (metrics key, column label) shown for each task, in column order.
TASK_METRICS: dict[str, list[tuple[str, str]]] = {
    "intent_slot": [
        ("intent_accuracy", "Intent acc."),
        ("slot_f1", "Slot F1"),
        ("exact_match", "EM"),
        ("semer", "SemER"),
    ],
    "pair": [("accuracy", "Accuracy")],
}
ERROR_RATES = frozenset({"semer"})  # lower is better; every other metric is accuracy-like
RELATIVE = {"intent_slot": ("exact_match", "intent_accuracy", "semer"), "pair": ("accuracy",)}
SCORE = {"intent_slot": ("exact_match", "EM"), "pair": ("accuracy", "Accuracy")}
PAPER = (
    "FitzGerald et al. (KDD 2022) relate pretraining metrics (held-out perplexity, mask-filling "
    "accuracy) to downstream accuracy across checkpoints; here each point is one full-encoder "
    "model fine-tuned in this stage, and ρ is Spearman's rank correlation (with a handful of "
    "models, a rough indication only)."
)

Model = dict[str, Any]
Cell = Callable[[Model], str]

# --------------------------------------------------------------------------- reading


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing or unreadable (a stage still going)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one a line; lines that do not parse (a killed run) skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a finite number."""
    return float(value) if plots.is_number(value) else math.nan


@dataclass(frozen=True)
class Finetune:
    """One finished ``finetune`` stage: its ``metrics.json`` and derived look-ups."""

    name: str
    metrics: dict[str, Any]
    stage_order: tuple[str, ...] = ()  # the run's stages in execution order

    @property
    def task(self) -> str:
        return "pair" if self.metrics.get("task") == "pair" else "intent_slot"

    @cached_property
    def models(self) -> dict[str, Model]:
        """Models by the order their source stage ran in (folders and hub ids last, as listed)."""
        models = self.metrics.get("models") or {}
        rank = {stage: i for i, stage in enumerate(self.stage_order)}
        items = [(k, m) for k, m in models.items() if isinstance(m, dict)]
        return dict(sorted(items, key=lambda km: rank.get(str(km[1].get("source")), len(rank))))

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

    def mode(self, encoder: str) -> list[tuple[str, Model]]:
        return [(k, m) for k, m in self.models.items() if m.get("encoder", "full") == encoder]

    def is_baseline(self, model: Model) -> bool:
        return self.baseline is not None and model.get("source") == self.baseline

    def baseline_for(self, model: Model) -> Model | None:
        encoder = model.get("encoder", "full")
        return next((m for _, m in self.mode(encoder) if self.is_baseline(m)), None)

    def value(self, model: Model, key: str, eval_set: str | None = None) -> float:
        metrics = (model.get("eval") or {}).get(eval_set or self.primary) or {}
        return number(metrics.get(key))

    def relative_error(self, model: Model, key: str) -> float:
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


@dataclass(frozen=True)
class Run:
    path: Path
    stages: dict[str, dict[str, Any]]  # manifest entries, in execution order
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

    @cached_property
    def finetunes(self) -> list[Finetune]:
        order = tuple(self.stages)
        return [Finetune(name, self.metrics[name], order) for name in self.of_kind("finetune")]


def load_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"{run_dir} is not a run folder: it has no manifest.json")
    data = read_json(manifest)
    if data is None or not isinstance(data.get("stages"), dict):
        raise DataError(f"{manifest} is not a valid run manifest (no 'stages' object)")
    stages = {k: v for k, v in data["stages"].items() if isinstance(v, dict)}
    metrics = {name: read_json(run_dir / name / "metrics.json") or {} for name in stages}
    return Run(run_dir, stages, metrics)


class Figures:
    """Draws PNGs into the report folder; without matplotlib, figures are simply left out."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.enabled = plots.available()

    def make(self, name: str, caption: str, draw: Callable[[Path], bool]) -> list[Block]:
        if not self.enabled:
            return []
        path = self.out_dir / f"{slug(name)}.png"
        return [Image(path.name, caption)] if draw(path) else []


# --------------------------------------------------------------------------- run and stages


def header_section(run: Run, figures: Figures) -> Section:
    rows = [
        [
            name,
            str(e.get("kind", "?")),
            fmt_seconds(number(e.get("seconds"))),
            str(e.get("finished", "")),
        ]
        for name, e in run.stages.items()
    ]
    rows.append(["Total", "", fmt_seconds(run.seconds), ""])
    last = list(run.stages.values())[-1].get("finished", DASH) if run.stages else DASH
    blocks: list[Block] = [
        f"Run {run.name}: {len(run.stages)} stages; the last one finished at {last}.",
        Table(["Stage", "Kind", "Wall time", "Finished"], rows),
    ]
    if not run.finetunes:
        blocks.append(
            "Note: no fine-tune stage has finished yet, so there is no model comparison, "
            "full-vs-frozen, correlation or per-language section."
        )
    if not figures.enabled:
        blocks.append("Note: matplotlib is not installed, so the figures are left out.")
    return Section("Stages", blocks)


def lm_corpora(run: Run) -> list[str]:
    names = (c for s in run.of_kind(*LM_KINDS) for c in run.metrics[s].get("eval") or {})
    return list(dict.fromkeys(names))


def lm_table(run: Run, corpora: Sequence[str]) -> Table:
    header = ["Stage", "Kind", "Steps", "Tokens", "Emb. params", "Non-emb. params"]
    for corpus in corpora:
        header += [f"{corpus} perplexity", f"{corpus} mask-fill (%)"]
    rows = []
    for name in run.of_kind(*LM_KINDS):
        m = run.metrics[name]
        params = m.get("parameters") or {}
        row = [name, run.stages[name]["kind"], fmt_int(m.get("steps"))]
        row += [fmt_count(m.get("tokens")), fmt_count(params.get("embedding"))]
        row.append(fmt_count(params.get("non_embedding")))
        for corpus in corpora:
            ev = (m.get("eval") or {}).get(corpus) or {}
            row += [
                fmt_float(number(ev.get("perplexity"))),
                fmt_pct(number(ev.get("mask_fill_accuracy"))),
            ]
        rows.append(row)
    return Table(header, rows)


def training_section(run: Run, figures: Figures) -> Section:
    stages = run.of_kind(*LM_KINDS)
    if not stages:
        return Section(
            "Pretraining and distillation", ["No pretrain or distill stage in this run."]
        )
    blocks: list[Block] = [
        "Final held-out evaluation of each pretrain/distill stage. Perplexities compare only "
        "between models that share a tokenizer.",
        *with_dash_note(lm_table(run, lm_corpora(run))),
    ]
    for name in stages:
        metrics = run.metrics[name]
        teachers = ", ".join(metrics.get("teachers") or [])
        title = (
            f"{name} ({run.stages[name]['kind']}{', teachers: ' + teachers if teachers else ''})"
        )
        rows = read_jsonl(run.path / name / "metrics.jsonl")
        blocks += figures.make(
            f"training_{name}",
            f"Training curves of {name}; dashed lines mark teacher switches.",
            lambda path, t=title, r=rows, m=metrics: plots.draw_training(path, t, r, m),
        )
    return Section("Pretraining and distillation", blocks)


# --------------------------------------------------------------------------- fine-tuning


def lm_values(run: Run, ft: Finetune, model: Model) -> tuple[float, float, str | None]:
    """Perplexity, mask-filling accuracy and, when not measured by the fine-tune stage itself, the
    corpus of the source stage's own evaluation they were taken from."""
    lm = model.get("lm")
    if isinstance(lm, dict):
        return number(lm.get("perplexity")), number(lm.get("mask_fill_accuracy")), None
    evals = run.metrics.get(str(model.get("source")), {}).get("eval") or {}
    if not evals:
        return math.nan, math.nan, None
    corpus = ft.metrics.get("lm_corpus")
    corpus = corpus if corpus in evals else next(iter(evals))
    ev = evals[corpus] or {}
    return number(ev.get("perplexity")), number(ev.get("mask_fill_accuracy")), corpus


def lm_cell(run: Run, ft: Finetune, model: Model, which: int) -> str:
    values = lm_values(run, ft, model)
    text = fmt_float(values[0]) if which == 0 else fmt_pct(values[1])
    return text + "*" if values[2] and text != DASH else text


def params_cell(run: Run, model: Model, key: str) -> str:
    params = model.get("parameters") or run.metrics.get(str(model.get("source")), {}).get(
        "parameters"
    )
    return fmt_count((params or {}).get(key))


def comparison_columns(run: Run, ft: Finetune) -> list[tuple[str, Cell]]:
    columns: list[tuple[str, Cell]] = [
        ("Emb. params", lambda m: params_cell(run, m, "embedding")),
        ("Non-emb. params", lambda m: params_cell(run, m, "non_embedding")),
        ("Perplexity", lambda m: lm_cell(run, ft, m, 0)),
        ("Mask-fill (%)", lambda m: lm_cell(run, ft, m, 1)),
    ]
    labels = dict(TASK_METRICS[ft.task])
    columns += [(f"{labels[k]} (%)", _value_cell(ft, k)) for k in labels]
    columns += [(f"Δerr {labels[k]}", _change_cell(ft, k)) for k in RELATIVE[ft.task]]
    columns.append(
        ("p50 (ms)", lambda m: fmt_float(number((m.get("latency_ms") or {}).get("p50"))))
    )
    return columns


def _value_cell(ft: Finetune, key: str) -> Cell:
    return lambda m: fmt_pct(ft.value(m, key))


def _change_cell(ft: Finetune, key: str) -> Cell:
    return lambda m: fmt_change(ft.relative_error(m, key))


def model_table(
    ft: Finetune, models: Sequence[tuple[str, Model]], columns: Sequence[tuple[str, Cell]]
) -> Table:
    rows = [
        [key + (" (baseline)" if ft.is_baseline(m) else ""), *[cell(m) for _, cell in columns]]
        for key, m in models
    ]
    return Table(["Model", *[label for label, _ in columns]], rows)


def comparison_notes(run: Run, ft: Finetune) -> list[str]:
    notes = [f"Task {ft.task}; scores in % on {ft.primary}."]
    if ft.metrics.get("lm_corpus"):
        notes[0] += (
            " Perplexity and mask-filling accuracy: the pretrained encoder's, on "
            f"{ft.metrics['lm_corpus']}."
        )
    if ft.baseline:
        notes.append(
            "Δerr: relative change of the error (1 − accuracy; SemER itself) against "
            f"{ft.baseline} fine-tuned in the same encoder mode; negative = fewer errors."
        )
    else:
        notes.append("No baseline is set for this stage, so there are no relative errors.")
    corpora = {lm_values(run, ft, m)[2] for m in ft.models.values()} - {None}
    if corpora:
        notes.append(
            "Values with *: not scored by the fine-tune stage, taken from the source stage's own "
            f"evaluation on {', '.join(sorted(corpora))}."
        )
    return notes


def comparison_blocks(run: Run, ft: Finetune) -> list[Block]:
    columns = comparison_columns(run, ft)
    blocks: list[Block] = list(comparison_notes(run, ft))
    for encoder, label in (("full", "Full encoder fine-tuned"), ("frozen", "Frozen encoder")):
        models = ft.mode(encoder)
        if models:
            blocks += [f"{label}:", *with_dash_note(model_table(ft, models, columns))]
    return blocks


def curve_blocks(run: Run, ft: Finetune, figures: Figures) -> list[Block]:
    metric, label = SCORE[ft.task]
    curves = [
        plots.Curve(
            key,
            *plots.score_series(read_jsonl(run.path / ft.name / key / "metrics.jsonl"), metric),
            group=str(m.get("source", key)),
            dashed=m.get("encoder") == "frozen",
        )
        for key, m in ft.models.items()
    ]
    title = f"{ft.name}: dev {label} during fine-tuning"
    caption = f"Dev {label} vs step (dashed: frozen encoder)."
    return figures.make(
        f"finetune_{ft.name}",
        caption,
        lambda path: plots.draw_curves(path, title, f"dev {label} (%)", curves),
    )


def frozen_section(ft: Finetune, figures: Figures) -> Section | None:
    if not ft.mode("frozen"):
        return None
    metric, label = SCORE[ft.task]
    by_source: dict[str, dict[str, float]] = {}
    for _, m in ft.models.items():
        source = str(m.get("source", "?"))
        by_source.setdefault(source, {})[m.get("encoder", "full")] = ft.value(m, metric)
    rows = []
    for source, scores in by_source.items():
        full, frozen = scores.get("full", math.nan), scores.get("frozen", math.nan)
        rows.append([source, fmt_pct(full), fmt_pct(frozen), fmt_float(100 * (frozen - full), 1)])
    header = ["Source model", f"{label} full (%)", f"{label} frozen (%)", "Frozen − full (points)"]
    bars = {
        mode: [s.get(mode, math.nan) for s in by_source.values()] for mode in ("full", "frozen")
    }
    blocks: list[Block] = [
        f"{label} on {ft.primary}, whole encoder fine-tuned vs only the task heads trained.",
        *with_dash_note(Table(header, rows)),
        *figures.make(
            f"frozen_{ft.name}",
            f"{label} per source model, full vs frozen encoder.",
            lambda path: plots.draw_bars(
                path, f"{ft.name}: full vs frozen encoder", f"{label} (%)", list(by_source), bars
            ),
        ),
    ]
    return Section("Full vs frozen encoder", blocks, level=3)


def correlation(run: Run, ft: Finetune) -> tuple[list[plots.Point], list[plots.Point]]:
    """``(perplexity, score)`` and ``(mask-filling accuracy, score)`` points, full encoders."""
    metric = SCORE[ft.task][0]
    ppl, fill = [], []
    for key, m in ft.mode("full"):
        perplexity, mask_fill, _ = lm_values(run, ft, m)
        ppl.append(plots.Point(key, perplexity, ft.value(m, metric)))
        fill.append(plots.Point(key, mask_fill, ft.value(m, metric)))
    return ppl, fill


def rho(points: Sequence[plots.Point]) -> tuple[float, int]:
    """Spearman ρ of the points and how many had both values."""
    usable = [p for p in points if not (math.isnan(p.x) or math.isnan(p.y))]
    return spearman([p.x for p in points], [p.y for p in points]), len(usable)


def fmt_rho(value: float) -> str:
    return DASH if math.isnan(value) else f"{value:.3f}".replace("-", MINUS)


def correlation_section(run: Run, ft: Finetune, figures: Figures) -> Section:
    label = SCORE[ft.task][1]
    ppl, fill = correlation(run, ft)
    (rho_ppl, n_ppl), (rho_fill, n_fill) = rho(ppl), rho(fill)
    table = Table(
        ["Pretraining metric", f"Spearman ρ with {label}", "Models"],
        [
            ["Perplexity", fmt_rho(rho_ppl), str(n_ppl)],
            ["Mask-filling accuracy", fmt_rho(rho_fill), str(n_fill)],
        ],
    )
    blocks: list[Block] = [PAPER, *with_dash_note(table)]
    if min(n_ppl, n_fill) < 2:
        blocks.append("Note: ρ needs at least two models with both values (and not all equal).")
    blocks += figures.make(
        f"correlation_{ft.name}",
        f"Pretraining metrics vs {label} on {ft.primary} (full encoders).",
        lambda path: plots.draw_correlation(
            path,
            label,
            (ppl, f"Perplexity vs {label} (ρ = {fmt_rho(rho_ppl)})"),
            (fill, f"Mask-filling accuracy vs {label} (ρ = {fmt_rho(rho_fill)})"),
        ),
    )
    return Section("Pretraining metrics vs downstream accuracy", blocks, level=3)


def language_columns(ft: Finetune, languages: dict[str, str]) -> list[tuple[str, Cell]]:
    train = ft.language(ft.dev)
    columns: list[tuple[str, Cell]] = []
    for language, eval_set in languages.items():
        if ft.task == "pair":
            mark = "" if language == train else " (zero-shot)"
            columns.append((f"{language}{mark} (%)", _set_cell(ft, "accuracy", eval_set)))
        else:
            columns.append((f"{language} EM (%)", _set_cell(ft, "exact_match", eval_set)))
            columns.append((f"{language} intent (%)", _set_cell(ft, "intent_accuracy", eval_set)))
    return columns


def _set_cell(ft: Finetune, key: str, eval_set: str) -> Cell:
    return lambda m: fmt_pct(ft.value(m, key, eval_set))


def language_section(ft: Finetune, figures: Figures) -> Section | None:
    languages = ft.language_sets()
    if ft.task != "pair" and len(languages) < 2:
        return None
    metric, label = SCORE[ft.task]
    models = list(ft.models.items()) if ft.task == "pair" else ft.mode("full")
    sets = ", ".join(f"{lang} = {s}" for lang, s in languages.items())
    blocks: list[Block] = [f"Scores in % per language; evaluation sets: {sets}."]
    if ft.task == "pair":
        blocks.append(
            f"Trained on {ft.language(ft.dev) or '?'} (the language of the dev set, {ft.dev}); "
            "the other languages are zero-shot."
        )
    blocks += with_dash_note(model_table(ft, models, language_columns(ft, languages)))
    bars = {lang: [ft.value(m, metric, s) for _, m in models] for lang, s in languages.items()}
    blocks += figures.make(
        f"languages_{ft.name}",
        f"{label} per model and language.",
        lambda path: plots.draw_bars(
            path, f"{ft.name}: {label} per language", f"{label} (%)", [k for k, _ in models], bars
        ),
    )
    title = "Pair classification by language" if ft.task == "pair" else "Per-language results"
    return Section(title, blocks, level=3)


def finetune_sections(run: Run, ft: Finetune, figures: Figures) -> list[Section]:
    title = f"Fine-tuning: {ft.name} ({ft.task})"
    if not ft.models:
        return [Section(title, [f"Note: {ft.name} has no fine-tuned models in its metrics.json."])]
    main = Section(title, [*comparison_blocks(run, ft), *curve_blocks(run, ft, figures)])
    extra = [
        frozen_section(ft, figures),
        correlation_section(run, ft, figures),
        language_section(ft, figures),
    ]
    return [main, *[s for s in extra if s is not None]]


def build_sections(run: Run, figures: Figures) -> list[Section]:
    sections = [header_section(run, figures), training_section(run, figures)]
    for ft in run.finetunes:
        sections += finetune_sections(run, ft, figures)
    return sections


# --------------------------------------------------------------------------- entry points


def write_report(run_dir: Path, out_dir: Path | None = None) -> Path:
    """Write ``report.md``, ``index.html`` and the PNG figures of a run; return index.html's path.

    ``out_dir`` defaults to ``run_dir/report``. ``DataError`` when ``run_dir`` has no manifest.
    """
    run = load_run(Path(run_dir))
    out_dir = Path(out_dir) if out_dir is not None else run.path / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(run, Figures(out_dir))
    title = f"Run report: {run.name}"
    (out_dir / "report.md").write_text(markdown(title, sections), encoding="utf-8")
    index = out_dir / "index.html"
    index.write_text(html_page(title, sections), encoding="utf-8")
    return index


def summary_columns(run: Run, ft: Finetune) -> list[tuple[str, Cell]]:
    metric, label = SCORE[ft.task]
    columns: list[tuple[str, Cell]] = [("Perplexity", lambda m: lm_cell(run, ft, m, 0))]
    columns += [(f"{lab} (%)", _value_cell(ft, key)) for key, lab in TASK_METRICS[ft.task]]
    columns.append((f"Δerr {label}", _change_cell(ft, metric)))
    columns.append(
        ("p50 (ms)", lambda m: fmt_float(number((m.get("latency_ms") or {}).get("p50"))))
    )
    return columns


def lm_summary(run: Run, corpus: str) -> Table:
    rows = []
    for name in run.of_kind(*LM_KINDS):
        m = run.metrics[name]
        ev = (m.get("eval") or {}).get(corpus) or {}
        row = [name, run.stages[name]["kind"], fmt_int(m.get("steps"))]
        row += [
            fmt_float(number(ev.get("perplexity"))),
            fmt_pct(number(ev.get("mask_fill_accuracy"))),
        ]
        rows.append([*row, fmt_seconds(number(run.stages[name].get("seconds")))])
    return Table(["Stage", "Kind", "Steps", "Perplexity", "Mask-fill (%)", "Wall time"], rows)


def report_summary(run_dir: Path) -> str:
    """A short plain-text overview for the terminal: stages, then models × key metrics."""
    run = load_run(Path(run_dir))
    parts = [f"Run {run.name}: {len(run.stages)} stages, {fmt_seconds(run.seconds)}"]
    if run.of_kind(*LM_KINDS):
        corpus = next(iter(lm_corpora(run)), "")
        parts += [f"Pretrained models (held out: {corpus}):", text_table(lm_summary(run, corpus))]
    for ft in run.finetunes:
        parts.append(f"{ft.name} ({ft.task}, scores on {ft.primary}):")
        columns = summary_columns(run, ft)
        parts.append(text_table(model_table(ft, list(ft.models.items()), columns)))
    if not run.finetunes:
        parts.append("No fine-tune stage yet.")
    return "\n\n".join(parts) + "\n"
