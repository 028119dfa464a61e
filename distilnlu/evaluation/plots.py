"""Figures of the run report: training curves, fine-tuning curves, bar charts, scatter plots.

Matplotlib is used through its object-oriented API (``Figure`` saved with the Agg renderer),
never pyplot: making a report then touches no global backend state and leaves no open figures
behind, which matters when it runs inside a longer CLI process or a test session. Matplotlib is
imported only when a figure is drawn, so the series helpers work without it.

Every ``draw_*`` function writes one PNG and returns False (writing nothing) when it has no data.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilnlu.evaluation.metrics import spearman
from distilnlu.evaluation.render import Block, Image, is_number, slug

Series = tuple[list[int], list[float]]

SMOOTH_WINDOW = 20
DPI = 110
# Columns of a training row that are bookkeeping, not losses.
NON_LOSS_KEYS = frozenset({"step", "lr", "tokens", "time", "epoch", "grad_norm"})
LM_METRICS = ("perplexity", "mask_fill_accuracy")


@dataclass(frozen=True)
class Curve:
    """One line of a fine-tuning plot; lines sharing ``group`` share a colour."""

    label: str
    steps: list[int]
    values: list[float]
    group: str
    dashed: bool = False


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float


def rho(points: Sequence[Point]) -> tuple[float, int]:
    """Spearman ρ of the points and how many had both values."""
    usable = [p for p in points if not (math.isnan(p.x) or math.isnan(p.y))]
    return spearman([p.x for p in points], [p.y for p in points]), len(usable)


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


# --------------------------------------------------------------------------- series


class Figures:
    """Draws PNGs into the report folder; without matplotlib, figures are simply left out."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.enabled = available()

    def make(self, name: str, caption: str, draw: Callable[[Path], bool]) -> list[Block]:
        if not self.enabled:
            return []
        path = self.out_dir / f"{slug(name)}.png"
        return [Image(path.name, caption)] if draw(path) else []


def moving_average(values: Sequence[float], window: int = SMOOTH_WINDOW) -> list[float]:
    """Trailing mean over up to ``window`` values; shorter at the start so no point is lost."""
    out: list[float] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def loss_series(rows: Sequence[Mapping[str, Any]]) -> dict[str, Series]:
    """``{"loss": (steps, values), "mlm": ..., ...}`` from the training rows (those with a loss).

    Non-finite values are dropped: a skipped step must not blow up the smoothed line.
    """
    series: dict[str, Series] = {}
    for row in rows:
        step = row.get("step")
        if "loss" not in row or not isinstance(step, int):
            continue
        for key, value in row.items():
            if key in NON_LOSS_KEYS or not is_number(value):
                continue
            steps, values = series.setdefault(key, ([], []))
            steps.append(step)
            values.append(float(value))
    return series


def eval_series(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Series]]:
    """``{corpus: {"perplexity": (steps, values), "mask_fill_accuracy": ...}}`` from eval rows."""
    series: dict[str, dict[str, Series]] = {}
    for row in rows:
        step, evals = row.get("step"), row.get("eval")
        if not isinstance(step, int) or not isinstance(evals, dict):
            continue
        for corpus, metrics in evals.items():
            if not isinstance(metrics, dict):
                continue
            for name in LM_METRICS:
                if is_number(metrics.get(name)):
                    steps, values = series.setdefault(corpus, {}).setdefault(name, ([], []))
                    steps.append(step)
                    values.append(float(metrics[name]))
    return series


def teacher_switches(
    rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
) -> list[tuple[int, str]]:
    """Sorted ``(step, new teacher)`` of every teacher switch in the log or in ``metrics.json``.

    Both sources are read because a killed run has only the log and an old log may lack events;
    the same switch found twice counts once.
    """
    events = [
        {"step": row.get("step"), **row["teacher_switch"]}
        for row in rows
        if isinstance(row.get("teacher_switch"), dict)
    ]
    events += [e for e in metrics.get("teacher_switches") or [] if isinstance(e, dict)]
    found = {
        (e["step"], str(e.get("to_teacher", "?"))) for e in events if isinstance(e["step"], int)
    }
    return sorted(found)


def score_series(rows: Sequence[Mapping[str, Any]], metric: str, eval_set: str = "dev") -> Series:
    """``(steps, values)`` of one dev metric from a fine-tuned model's eval rows."""
    steps: list[int] = []
    values: list[float] = []
    for row in rows:
        evals = row.get("eval")
        if not isinstance(evals, dict) or not isinstance(row.get("step"), int):
            continue
        metrics = evals.get(eval_set) or next(iter(evals.values()), None)
        if isinstance(metrics, dict) and is_number(metrics.get(metric)):
            steps.append(row["step"])
            values.append(float(metrics[metric]))
    return steps, values


# --------------------------------------------------------------------------- drawing


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Constrained layout keeps titles, labels and legends from overlapping.
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure point labels with (see _label_points)
    return fig


def _save(fig: Any, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return True


def _color(index: int) -> str:
    return f"C{index % 10}"


def _plain_log(axis: Any) -> None:
    """Log scale with plain tick labels ("20", "300") instead of "2×10¹"; like matplotlib's own
    choice, minor ticks are labelled only on short ranges (none beyond two decades)."""
    from matplotlib.ticker import LogFormatter

    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _mark_switches(ax: Any, switches: Sequence[tuple[int, str]], top: bool = False) -> None:
    """Dashed line and "→ teacher" label per switch; the label goes where curves rarely are:
    at the bottom for losses and perplexities (high early on), at the top for accuracies."""
    for step, teacher in switches:
        ax.axvline(step, linestyle="--", color="0.35", linewidth=1)
        ax.text(
            step,
            0.97 if top else 0.03,
            f" → {teacher}",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va="top" if top else "bottom",
            ha="right",
            fontsize=8,
            color="0.25",
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
        )


def _loss_labels(losses: Mapping[str, Series]) -> dict[str, str]:
    """Legend label per loss to draw, total first; a component equal to the total (plain MLM
    pretraining) is folded into the total's label instead of hiding it under the same line."""
    total = losses.get("loss")
    same = [n for n, s in losses.items() if n != "loss" and total is not None and s == total]
    labels = {"loss": f"loss (= {', '.join(same)})" if same else "loss"} if total else {}
    labels.update({n: n for n in losses if n != "loss" and n not in same})
    return labels


def _plot_losses(ax: Any, losses: Mapping[str, Series]) -> None:
    ax.set_title(f"Training losses (moving average of {SMOOTH_WINDOW} steps)")
    if not losses:
        _empty(ax, "no training rows")
        return
    for i, (name, label) in enumerate(_loss_labels(losses).items()):
        steps, values = losses[name]
        color = "black" if name == "loss" else _color(i)
        ax.plot(steps, values, color=color, alpha=0.15, linewidth=0.8)
        ax.plot(steps, moving_average(values), color=color, linewidth=1.6, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)


def _plot_eval(ax: Any, evals: Mapping[str, Mapping[str, Series]], metric: str) -> None:
    percent = metric == "mask_fill_accuracy"
    ax.set_title("Mask-filling accuracy (held out)" if percent else "Perplexity (held out)")
    plotted = False
    for i, (corpus, by_metric) in enumerate(evals.items()):
        if metric in by_metric:
            steps, values = by_metric[metric]
            values = [100 * v for v in values] if percent else values
            ax.plot(steps, values, marker="o", markersize=3, color=_color(i), label=corpus)
            plotted = True
    if not plotted:
        _empty(ax, "no evaluations")
        return
    if not percent:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (%)" if percent else "perplexity (log scale)")
    ax.legend(fontsize=8)


def draw_training(
    path: Path, title: str, rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
) -> bool:
    """Losses, held-out perplexity and mask-filling accuracy of one pretrain/distill stage."""
    losses, evals = loss_series(rows), eval_series(rows)
    if not losses and not evals:
        return False
    fig = _figure(15, 4.2)
    axes = fig.subplots(1, 3)
    _plot_losses(axes[0], losses)
    _plot_eval(axes[1], evals, "perplexity")
    _plot_eval(axes[2], evals, "mask_fill_accuracy")
    switches = teacher_switches(rows, metrics)
    for k, ax in enumerate(axes):
        _mark_switches(ax, switches, top=k == 2)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def draw_curves(path: Path, title: str, ylabel: str, curves: Sequence[Curve]) -> bool:
    """Dev score vs step of every fine-tuned model (colour: source model, dashed: frozen)."""
    curves = [c for c in curves if c.steps]
    if not curves:
        return False
    groups = list(dict.fromkeys(c.group for c in curves))
    fig = _figure(9, 4.8)
    ax = fig.subplots()
    for curve in curves:
        ax.plot(
            curve.steps,
            [100 * v for v in curve.values],
            color=_color(groups.index(curve.group)),
            linestyle="--" if curve.dashed else "-",
            marker="o",
            markersize=3,
            label=curve.label,
        )
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def draw_bars(
    path: Path, title: str, ylabel: str, categories: Sequence[str], bars: Mapping[str, list[float]]
) -> bool:
    """Grouped bars: one group per category, one bar per key of ``bars`` (fractions, shown %)."""
    if not categories or not any(is_number(v) for vs in bars.values() for v in vs):
        return False
    fig = _figure(max(6.0, 1.1 * len(categories) * max(1, len(bars)) ** 0.5 + 2), 4.6)
    ax = fig.subplots()
    width = 0.8 / max(1, len(bars))
    for i, (name, values) in enumerate(bars.items()):
        xs = [k + (i - (len(bars) - 1) / 2) * width for k in range(len(categories))]
        heights = [100 * v if is_number(v) else 0.0 for v in values]
        drawn = ax.bar(xs, heights, width, label=name, color=_color(i))
        labels = [
            f"{h:.1f}" if is_number(v) else "n/a" for h, v in zip(heights, values, strict=True)
        ]
        ax.bar_label(drawn, labels=labels, fontsize=7, padding=2)
    ax.set_xticks(range(len(categories)), categories, rotation=20, ha="right")
    ax.set(title=title, ylabel=ylabel)
    top = max(h for vs in bars.values() for h in vs if is_number(h))
    ax.set_ylim(0, max(115 * top, 1.0))  # room for the value labels above the highest bar
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def _scatter(ax: Any, points: Sequence[Point], xlabel: str, ylabel: str, title: str) -> None:
    ax.set_title(title)
    if not points:
        _empty(ax, "no models with both values")
        return
    ax.scatter([p.x for p in points], [100 * p.y for p in points], color="C0", zorder=3)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.margins(x=0.15, y=0.12)  # room for the point labels
    ax.grid(alpha=0.3)


# Where a point's label may go, tried in turn: (offset in points, horizontal, vertical alignment).
LABEL_SPOTS = [
    ((5, 3), "left", "bottom"),
    ((5, -3), "left", "top"),
    ((-5, 3), "right", "bottom"),
    ((-5, -3), "right", "top"),
    ((0, 7), "center", "bottom"),
    ((0, -7), "center", "top"),
]


def _annotate(ax: Any, p: Point, spot: tuple[tuple[int, int], str, str]) -> Any:
    offset, ha, va = spot
    text = ax.annotate(
        p.label, (p.x, 100 * p.y), xytext=offset, textcoords="offset points", ha=ha, va=va
    )
    text.set_fontsize(8)
    text.set_in_layout(False)  # placed after the layout is fixed; must not move it again
    return text


def _label_points(ax: Any, points: Sequence[Point]) -> None:
    """Name each point at the first spot around it where the label stays inside the axes and
    covers no other label or point: models with similar scores sit close together and their
    labels would otherwise be unreadable."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = []
    for p in points:
        cx, cy = ax.transData.transform((p.x, 100 * p.y))
        taken.append(Bbox.from_bounds(cx - 4, cy - 4, 8, 8))
    for p in points:
        for spot in LABEL_SPOTS:
            text = _annotate(ax, p, spot)
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
            if inside and box.y1 <= frame.y1 and not any(box.overlaps(b) for b in taken):
                break
            text.remove()
        else:  # crowded everywhere: the first spot, overlapping or not
            box = _annotate(ax, p, LABEL_SPOTS[0]).get_window_extent(renderer)
        taken.append(box)


def draw_tradeoff(
    path: Path,
    title: str,
    ylabel: str,
    points: Sequence[Point],
    front: Sequence[Point],
    budget_ms: float,
    chosen: str | None,
) -> bool:
    """Score (y, a fraction) against p50 latency (x, ms, log scale): every model a labelled
    point, the Pareto front a step line, the latency budget a vertical line, the chosen model
    ringed."""
    usable = _usable(points)
    if not usable:
        return False
    fig = _figure(8, 5)
    ax = fig.subplots()
    _scatter(ax, usable, "p50 latency, ms (log scale)", ylabel, title)
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    edge = _usable(front)
    if edge:
        ax.step(
            [p.x for p in edge], [100 * p.y for p in edge], where="post", color="C1", alpha=0.7,
            label="Pareto front (no model is both faster and more accurate)",
        )  # fmt: skip
    ax.axvline(budget_ms, color="C3", linestyle="--", alpha=0.7, label="latency budget")
    for p in usable:
        if p.label == chosen:
            ax.scatter([p.x], [100 * p.y], s=180, facecolors="none", edgecolors="C3", zorder=4)
    ax.legend(fontsize=8, loc="upper left")  # fast and accurate: the corner models rarely reach
    fig.draw_without_rendering()
    _label_points(ax, usable)
    return _save(fig, path)


def draw_correlation(
    path: Path,
    score: str,
    perplexity: tuple[Sequence[Point], str],
    mask_fill: tuple[Sequence[Point], str],
    joined: bool = False,
) -> bool:
    """Perplexity (log x) vs score and mask-filling accuracy vs score; each ``(points, title)``.

    ``joined``: the points are the snapshots of one model in step order, joined in that order by
    a faint line so that the path training took shows."""
    ppl = _usable(perplexity[0])
    fill = _usable([Point(p.label, 100 * p.x, p.y) for p in mask_fill[0]])
    nothing = not ppl and not fill if joined else not perplexity[0] and not mask_fill[0]
    if nothing:  # a correlation plot of models keeps its panels (and says so) when one is empty
        return False
    fig = _figure(12, 4.8)
    left, right = fig.subplots(1, 2)
    panels = [
        (left, ppl, "perplexity (log scale)", perplexity[1]),
        (right, fill, "mask-filling accuracy (%)", mask_fill[1]),
    ]
    for ax, points, xlabel, title in panels:
        _scatter(ax, points, xlabel, f"{score} (%)", title)
        if joined and points:
            xs, ys = [p.x for p in points], [100 * p.y for p in points]
            ax.plot(xs, ys, color="C0", alpha=0.35, linewidth=1, zorder=2)
    if ppl:
        left.set_xscale("log")
        _plain_log(left.xaxis)
    fig.draw_without_rendering()  # fix the layout and axis limits before placing labels
    _label_points(left, ppl)
    _label_points(right, fill)
    return _save(fig, path)


def _usable(points: Sequence[Point]) -> list[Point]:
    return [p for p in points if is_number(p.x) and is_number(p.y)]
