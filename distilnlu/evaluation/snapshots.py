"""The report's monitoring section: held-out metrics against downstream accuracy across the
snapshots of one model.

FitzGerald et al. (KDD 2022) watch held-out perplexity and mask-filling accuracy across model
updates of one model, because they track what fine-tuning will get from it. An LM stage with
``keep_snapshots`` keeps such updates; a finetune stage with ``snapshots`` fine-tunes each one
briefly and scores it on dev. This section puts the two side by side, with Spearman's ρ, one
block per LM stage. The report's correlation section does the same across different models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

from distilnlu.evaluation import plots
from distilnlu.evaluation.plots import Figures
from distilnlu.evaluation.render import (
    Block,
    Section,
    Table,
    fmt_float,
    fmt_int,
    fmt_pct,
    fmt_rho,
    with_dash_note,
)
from distilnlu.evaluation.run_view import Finetune, SnapshotPoint

TITLE = "Pretraining metrics vs downstream accuracy across snapshots"


def corpora(points: Sequence[SnapshotPoint]) -> list[str]:
    """The eval corpora the snapshots were scored on, in the order recorded."""
    return list(dict.fromkeys(c for p in points for c in p.lm))


def plotted_corpus(ft: Finetune, names: Sequence[str]) -> str | None:
    """The corpus the figure shows: the finetune stage's ``lm_corpus`` when the snapshots were
    scored on it (the corpus of its correlation section), else the LM stage's first."""
    wanted = ft.metrics.get("lm_corpus")
    return wanted if wanted in names else (names[0] if names else None)


def series(
    points: Sequence[SnapshotPoint], corpus: str
) -> tuple[list[plots.Point], list[plots.Point]]:
    """``(perplexity, score)`` and ``(mask-filling accuracy, score)`` points, labelled by step."""
    nan = (math.nan, math.nan)
    ppl = [plots.Point(f"step {p.step}", p.lm.get(corpus, nan)[0], p.score) for p in points]
    fill = [plots.Point(f"step {p.step}", p.lm.get(corpus, nan)[1], p.score) for p in points]
    return ppl, fill


def stage_blocks(
    ft: Finetune, stage: str, points: list[SnapshotPoint], figures: Figures
) -> list[Block]:
    label = ft.task.primary[1]
    names = corpora(points)
    steps = sorted({p.steps for p in points if p.steps})
    budget = f"{'/'.join(map(str, steps))} steps" if steps else "a short budget"
    train = fmt_int(ft.metrics.get("train_examples"))
    blocks: list[Block] = [
        f"{stage}: {len(points)} snapshots, each fine-tuned (whole encoder) for {budget} on the "
        f"{train} training examples and scored once on dev ({ft.dev}, no slot prior); the "
        "held-out metrics are the snapshot's own, before fine-tuning."
    ]
    header = ["Step"]
    for corpus in names:
        header += [f"{corpus} perplexity", f"{corpus} mask-fill (%)"]
    header.append(f"dev {label} (%)")
    rows = []
    for p in points:
        row = [fmt_int(p.step)]
        for corpus in names:
            perplexity, mask_fill = p.lm.get(corpus, (math.nan, math.nan))
            row += [fmt_float(perplexity), fmt_pct(mask_fill)]
        rows.append([*row, fmt_pct(p.score)])
    blocks += with_dash_note(Table(header, rows))
    rho_rows, undefined = [], False
    for corpus in names:
        ppl, fill = series(points, corpus)
        for metric, pts in (("Perplexity", ppl), ("Mask-filling accuracy", fill)):
            value, n = plots.rho(pts)
            rho_rows.append([f"{metric} on {corpus}", fmt_rho(value), str(n)])
            undefined = undefined or math.isnan(value)
    rho_header = ["Held-out metric", f"Spearman ρ with dev {label}", "Snapshots"]
    blocks += with_dash_note(Table(rho_header, rho_rows))
    if undefined:
        blocks.append(
            "Note: ρ needs at least two snapshots with both values, and values that are not all"
            f" equal (the same dev {label} for every snapshot: raise snapshots.max_steps)."
        )
    shown = plotted_corpus(ft, names)
    if shown is not None:
        ppl, fill = series(points, shown)
        blocks += figures.make(
            f"snapshots_{ft.name}_{stage}",
            f"Snapshots of {stage}: held-out metrics on {shown} vs dev {label} after short"
            " fine-tuning; points labelled by step, joined in step order.",
            partial(
                plots.draw_correlation,
                joined=True,
                score=f"dev {label}",
                perplexity=(ppl, f"Perplexity vs dev {label} (ρ = {fmt_rho(plots.rho(ppl)[0])})"),
                mask_fill=(
                    fill,
                    f"Mask-filling vs dev {label} (ρ = {fmt_rho(plots.rho(fill)[0])})",
                ),
            ),
        )
    return blocks


def snapshot_section(ft: Finetune, figures: Figures) -> Section | None:
    """The monitoring section of a finetune stage that scored snapshots (None otherwise)."""
    scored = ft.snapshot_scores
    if not scored:
        return None
    blocks: list[Block] = [
        "FitzGerald et al. (KDD 2022) relate held-out perplexity and mask-filling accuracy to "
        "downstream accuracy across model updates of one model. Each point here is a snapshot "
        "kept during one LM stage (keep_snapshots); ρ is Spearman's rank correlation (with a "
        "handful of snapshots and a short fine-tuning, a rough indication only)."
    ]
    for stage, points in scored.items():
        if points:
            blocks += stage_blocks(ft, stage, points, figures)
        else:
            blocks.append(f"Note: {stage} has no scored snapshots in {ft.name}'s metrics.json.")
    return Section(TITLE, blocks, level=3)


def snapshot_summary(ft: Finetune) -> list[str]:
    """One line per scored LM stage for the terminal summary: ρ of each held-out metric (on the
    plotted corpus) with dev accuracy across its snapshots."""
    label = ft.task.primary[1]
    lines = []
    for stage, points in ft.snapshot_scores.items():
        corpus = plotted_corpus(ft, corpora(points))
        if corpus is None:
            continue
        ppl, fill = series(points, corpus)
        lines.append(
            f"Snapshots of {stage} ({len(points)}, scored by {ft.name}): Spearman ρ with dev "
            f"{label}: perplexity on {corpus} {fmt_rho(plots.rho(ppl)[0])}, mask-filling accuracy "
            f"{fmt_rho(plots.rho(fill)[0])}."
        )
    return lines
