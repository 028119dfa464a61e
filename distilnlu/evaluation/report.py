"""Run report: Markdown and HTML pages with PNG figures, made from a run folder.

Reads only what the stages wrote (``manifest.json``, each stage's ``metrics.json`` and
``metrics.jsonl``, each fine-tuned model's ``metrics.jsonl``; read into views by
:mod:`~distilnlu.evaluation.run_view`), so a report can be (re)made at any time, also for a run
that is still going or was killed: whatever is missing shows as "—" with a note. The content is
built once as a list of sections and rendered twice, so ``report.md`` and ``index.html`` always
say the same thing; :func:`report_summary` prints the key tables of it on the terminal.

Relative errors compare each fine-tuned model with the stage's baseline model fine-tuned in the
same encoder mode (full or frozen) on the same evaluation set (DESIGN.md §6). A task_distill
stage's model is a row of the fine-tune stage it joins (:mod:`~distilnlu.evaluation.run_view`);
the headline (:mod:`~distilnlu.evaluation.headline`) says what each stage bought.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from distilnlu import rundir
from distilnlu.config import ReportConfig
from distilnlu.evaluation import plots
from distilnlu.evaluation.headline import headline
from distilnlu.evaluation.plots import Figures
from distilnlu.evaluation.recommend import recommend, recommendation_sections
from distilnlu.evaluation.render import (
    DASH,
    Block,
    Section,
    Table,
    fmt_change,
    fmt_count,
    fmt_float,
    fmt_int,
    fmt_pct,
    fmt_rho,
    fmt_seconds,
    html_page,
    markdown,
    text_table,
    with_dash_note,
)
from distilnlu.evaluation.run_view import (
    TASK_DISTILL,
    Finetune,
    HeldOutLM,
    Run,
    heldout_lm,
    lm_values,
    load_run,
    number,
)
from distilnlu.evaluation.snapshots import snapshot_section, snapshot_summary
from distilnlu.rundir import ModelMetrics

PAPER = (
    "FitzGerald et al. (KDD 2022) relate pretraining metrics (held-out perplexity, mask-filling "
    "accuracy) to downstream accuracy across checkpoints; here each point is one full-encoder "
    "model fine-tuned in this stage, and ρ is Spearman's rank correlation (with a handful of "
    "models, a rough indication only)."
)

Cell = Callable[[ModelMetrics], str]


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
        f"Run {run.name}: {stage_count(len(run.stages))}; the last one finished at {last}.",
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


def stage_table(run: Run, heldout: HeldOutLM) -> Table:
    """One row per LM stage: its size and training, then its held-out metrics per corpus."""
    header = ["Stage", "Kind", "Steps", "Tokens", "Emb. params", "Non-emb. params"]
    for corpus in heldout.corpora:
        header += [f"{corpus} perplexity", f"{corpus} mask-fill (%)"]
    rows = []
    for name in run.lm_stages():
        m = run.trained(name)
        params = encoder_size(m)
        row = [name, run.stages[name]["kind"], fmt_int(m.get("steps"))]
        row += [fmt_count(m.get("tokens")), fmt_count(params.get("embedding"))]
        row.append(fmt_count(params.get("non_embedding")))
        for corpus in heldout.corpora:
            ev = heldout.get(name, corpus)
            row += [fmt_float(ev.perplexity), fmt_pct(ev.mask_fill_accuracy)]
        rows.append(row)
    return Table(header, rows)


def heldout_table(heldout: HeldOutLM) -> Table:
    """One row per LM stage and held-out corpus, for the terminal."""
    rows = []
    for r in heldout.rows:
        ppl, fill = fmt_float(r.perplexity), fmt_pct(r.mask_fill_accuracy)
        rows.append([r.stage, r.corpus, ppl, fill, fmt_int(r.mask_fill_n)])
    return Table(["Stage", "Held-out corpus", "Perplexity", "Mask-fill (%)", "n"], rows)


def training_section(run: Run, figures: Figures) -> Section:
    stages = run.lm_stages()
    if not stages:
        return Section(
            "Pretraining and distillation", ["No pretrain or distill stage in this run."]
        )
    blocks: list[Block] = [
        "Final held-out evaluation of each pretrain/distill stage. Perplexities compare only "
        "between models that share a tokenizer.",
        *with_dash_note(stage_table(run, heldout_lm(run))),
    ]
    for name in stages:
        metrics = run.trained(name)
        teachers = ", ".join(metrics.get("teachers") or [])
        title = (
            f"{name} ({run.stages[name]['kind']}{', teachers: ' + teachers if teachers else ''})"
        )
        rows = rundir.read_jsonl(run.path / name / rundir.METRICS_LOG)
        blocks += figures.make(
            f"training_{name}",
            f"Training curves of {name}; dashed lines mark teacher switches.",
            partial(plots.draw_training, title=title, rows=rows, metrics=metrics),
        )
    return Section("Pretraining and distillation", blocks)


# --------------------------------------------------------------------------- fine-tuning


def lm_cell(run: Run, ft: Finetune, model: ModelMetrics, which: int) -> str:
    values = lm_values(run, ft, model)
    text = fmt_float(values[0]) if which == 0 else fmt_pct(values[1])
    return text + "*" if values[2] and text != DASH else text


def encoder_size(metrics: Mapping[str, Any]) -> dict[str, int]:
    """An LM stage's encoder parameters without the LM head (folders written before they were
    recorded: the whole masked LM's)."""
    return dict(metrics.get("encoder_parameters") or metrics.get("parameters") or {})


def params_cell(run: Run, model: ModelMetrics, key: str) -> str:
    params = model.get("parameters") or encoder_size(run.trained(str(model.get("source"))))
    return fmt_count(params.get(key))


def latency_cell(model: ModelMetrics) -> str:
    return fmt_float(number((model.get("latency_ms") or {}).get("p50")))


def comparison_columns(run: Run, ft: Finetune) -> list[tuple[str, Cell]]:
    columns: list[tuple[str, Cell]] = [
        ("Emb. params", lambda m: params_cell(run, m, "embedding")),
        ("Non-emb. params", lambda m: params_cell(run, m, "non_embedding")),
        ("Perplexity", lambda m: lm_cell(run, ft, m, 0)),
        ("Mask-fill (%)", lambda m: lm_cell(run, ft, m, 1)),
    ]
    labels = dict(ft.task.columns)
    columns += [(f"{labels[k]} (%)", _value_cell(ft, k)) for k in labels]
    columns += [(f"Δerr {labels[k]}", _change_cell(ft, k)) for k in ft.task.relative]
    columns.append(("p50 (ms)", latency_cell))
    return columns


def _value_cell(ft: Finetune, key: str) -> Cell:
    return lambda m: fmt_pct(ft.value(m, key))


def _change_cell(ft: Finetune, key: str) -> Cell:
    return lambda m: fmt_change(ft.relative_error(m, key))


IMPROVING = "†"
IMPROVING_NOTE = (
    f"{IMPROVING}: its best dev score came at its last evaluation, so it was still improving when"
    " its step budget ran out; more steps (training.max_steps / epochs) may help."
)


def still_improving(model: ModelMetrics) -> bool:
    """The model's best dev score came at its last step: early stopping never had its say."""
    steps, best = model.get("steps"), model.get("best_step")
    return isinstance(steps, int) and steps > 0 and best == steps


def model_name(ft: Finetune, key: str, model: ModelMetrics) -> str:
    marks = IMPROVING if still_improving(model) else ""
    return key + marks + (" (baseline)" if ft.is_baseline(model) else "")


def model_table(
    ft: Finetune, models: Sequence[tuple[str, ModelMetrics]], columns: Sequence[tuple[str, Cell]]
) -> Table:
    rows = [[model_name(ft, key, m), *[cell(m) for _, cell in columns]] for key, m in models]
    return Table(["Model", *[label for label, _ in columns]], rows)


def comparison_notes(run: Run, ft: Finetune) -> list[str]:
    notes = [f"Task {ft.task.name}; scores in % on {ft.primary}."]
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
    notes += distill_notes(ft)
    if any(still_improving(m) for m in ft.models.values()):
        notes.append(IMPROVING_NOTE)
    corpora = {c for m in ft.models.values() if (c := lm_values(run, ft, m)[2])}
    if corpora:
        notes.append(
            "Values with *: not scored by the fine-tune stage, taken from the source stage's own "
            f"evaluation on {', '.join(sorted(corpora))}."
        )
    return notes


def distill_notes(ft: Finetune) -> list[str]:
    """Where each task_distill row of the view came from: its teacher and what it trained on."""
    notes = []
    for stage, metrics in ft.distilled:
        pool = metrics.get("pool") or {}
        counts = [f"{fmt_int(pool.get(k))} {k}" for k in ("labeled", "unlabeled", "augmented")]
        teacher = metrics.get("teacher", "?")
        source = teacher if isinstance(teacher, str) else f"the ensemble of {', '.join(teacher)}"
        notes.append(
            f"{stage}: task_distill from {source}, trained on "
            f"{', '.join(counts[:2])} and {counts[2]} utterances."
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
    metric, label = ft.task.primary
    log = rundir.METRICS_LOG
    curves = [
        plots.Curve(
            key,
            *plots.score_series(rundir.read_jsonl(run.path / ft.model_dir(key) / log), metric),
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
    metric, label = ft.task.primary
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
    metric = ft.task.primary[0]
    ppl, fill = [], []
    for key, m in ft.mode("full"):
        perplexity, mask_fill, _ = lm_values(run, ft, m)
        ppl.append(plots.Point(key, perplexity, ft.value(m, metric)))
        fill.append(plots.Point(key, mask_fill, ft.value(m, metric)))
    return ppl, fill


def correlation_section(run: Run, ft: Finetune, figures: Figures) -> Section:
    label = ft.task.primary[1]
    ppl, fill = correlation(run, ft)
    (rho_ppl, n_ppl), (rho_fill, n_fill) = plots.rho(ppl), plots.rho(fill)
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
        name = language + (" (zero-shot)" if ft.task.zero_shot and language != train else "")
        for key, label in ft.task.by_language:
            title = f"{name} {label}" if label else name
            columns.append((f"{title} (%)", _set_cell(ft, key, eval_set)))
    return columns


def _set_cell(ft: Finetune, key: str, eval_set: str) -> Cell:
    return lambda m: fmt_pct(ft.value(m, key, eval_set))


def language_section(ft: Finetune, figures: Figures) -> Section | None:
    languages = ft.language_sets()
    task = ft.task
    if not task.zero_shot and len(languages) < 2:
        return None
    metric, label = task.primary
    models = list(ft.models.items()) if task.zero_shot else ft.mode("full")
    sets = ", ".join(f"{lang} = {s}" for lang, s in languages.items())
    blocks: list[Block] = [f"Scores in % per language; evaluation sets: {sets}."]
    if task.zero_shot:
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
    return Section(task.language_title, blocks, level=3)


def view_title(ft: Finetune, extra: str = "") -> str:
    """The view's name and task, e.g. ``finetune (intent_slot)``; a task_distill stage that is
    a view of its own says so."""
    kind = "task distillation, " if ft.kind == TASK_DISTILL else ""
    return f"{ft.name} ({kind}{ft.task.name}{extra})"


def finetune_sections(run: Run, ft: Finetune, figures: Figures) -> list[Section]:
    title = f"Fine-tuning: {view_title(ft)}"
    if not ft.models:
        return [
            Section(title, [f"Note: {ft.name} has no fine-tuned models in its {rundir.METRICS}."])
        ]
    main = Section(title, [*comparison_blocks(run, ft), *curve_blocks(run, ft, figures)])
    extra = [
        frozen_section(ft, figures),
        # one task-distilled model alone: no correlation to speak of
        None if ft.kind == TASK_DISTILL else correlation_section(run, ft, figures),
        snapshot_section(ft, figures),
        language_section(ft, figures),
    ]
    return [main, *[s for s in extra if s is not None]]


def build_sections(run: Run, figures: Figures, config: ReportConfig | None = None) -> list[Section]:
    """What to ship first, then what each stage bought, the model comparison, then how the
    stages ran."""
    sections = recommendation_sections(run, figures, config)
    lines = headline(run)
    sections += [Section("Headline", [*lines])] if lines else []
    for ft in run.finetunes:
        sections += finetune_sections(run, ft, figures)
    sections += [header_section(run, figures), training_section(run, figures)]
    return sections


# --------------------------------------------------------------------------- entry points


def write_report(
    run_dir: Path, out_dir: Path | None = None, config: ReportConfig | None = None
) -> Path:
    """Write ``report.md``, ``index.html`` and the PNG figures of a run; return index.html's path.

    ``out_dir`` defaults to ``run_dir/report``; ``config`` to the ``report`` settings of the
    recipe last run. ``DataError`` when ``run_dir`` has no manifest.
    """
    run = load_run(Path(run_dir))
    out_dir = Path(out_dir) if out_dir is not None else run.path / rundir.REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(run, Figures(out_dir), config)
    title = f"Run report: {run.name}"
    rundir.atomic_write(out_dir / rundir.REPORT_MARKDOWN, markdown(title, sections))
    index = out_dir / rundir.REPORT_PAGE
    rundir.atomic_write(index, html_page(title, sections))
    return index


def summary_columns(run: Run, ft: Finetune) -> list[tuple[str, Cell]]:
    metric, label = ft.task.primary
    columns: list[tuple[str, Cell]] = [("Perplexity", lambda m: lm_cell(run, ft, m, 0))]
    columns += [(f"{lab} (%)", _value_cell(ft, key)) for key, lab in ft.task.columns]
    columns.append((f"Δerr {label}", _change_cell(ft, metric)))
    columns.append(("p50 (ms)", latency_cell))
    return columns


def heldout_text(run: Run, stages: Collection[str] | None = None) -> str:
    """The held-out LM table for the terminal, teacher switches below it ("" without one)."""
    heldout = heldout_lm(run, stages)
    if not heldout.rows:
        return ""
    lines = ["Held-out language-model metrics:", "", text_table(heldout_table(heldout))]
    return "\n".join(lines + heldout.switches)


def heldout_summary(run_dir: Path, stages: Collection[str] | None = None) -> str:
    """:func:`heldout_text` of a run folder, for a run that fine-tuned nothing ("" without one)."""
    if not (Path(run_dir) / rundir.MANIFEST).is_file():
        return ""
    return heldout_text(load_run(Path(run_dir)), stages)


def stage_count(n: int) -> str:
    return f"{n} stage" if n == 1 else f"{n} stages"


def report_summary(run_dir: Path, config: ReportConfig | None = None) -> str:
    """A short plain-text overview for the terminal: stages, what to ship, held-out LM metrics,
    models × key metrics."""
    run = load_run(Path(run_dir))
    parts = [f"Run {run.name}: {stage_count(len(run.stages))}, {fmt_seconds(run.seconds)}"]
    parts += [rec.sentence() for ft in run.finetunes if (rec := recommend(run, ft, config))]
    parts += ["\n".join(lines) for lines in [headline(run)] if lines]
    parts += [text for text in [heldout_text(run)] if text]
    for ft in run.finetunes:
        parts.append(view_title(ft, f", scores on {ft.primary}") + ":")
        columns = summary_columns(run, ft)
        parts.append(text_table(model_table(ft, list(ft.models.items()), columns)))
        if any(still_improving(m) for m in ft.models.values()):
            parts.append(IMPROVING_NOTE)
        parts += snapshot_summary(ft)
    if not run.finetunes:
        parts.append("No fine-tune stage yet.")
    return "\n\n".join(parts) + "\n"
