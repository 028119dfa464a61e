"""The run folder: where every file of a run lives, how it is written, what its metrics hold.

One owner for the on-disk layout, so the stages that write a run and the report that reads it
agree by construction::

    runs/<name>/
      manifest.json                  finished stages: hash, kind, seconds (pipeline)
      recipe.yaml                    the recipe last run (its report: settings)
      <stage>/                       a save_pretrained folder + the files below
        .stage_hash                  the configuration the folder belongs to
        recipe.yaml                  the resolved recipe
        metrics.json                 final metrics; written last, marks the stage done
        metrics.jsonl                one row per step plus evaluation rows (training loop)
        checkpoint/                  resumable state while the stage runs (training/checkpoint)
        snapshots/step-000250/       keep_snapshots: a save_pretrained folder + its metrics.json
      <finetune stage>/<model>[-frozen]/
        ... a fine-tuned model folder, metrics.json, predictions-<set>.jsonl, best.safetensors
      <finetune stage>/snapshots/<LM stage>/step-000250/
        metrics.json, metrics.jsonl  a snapshot's downstream score (no weights kept)
      report/                        index.html, report.md, PNG figures

Every file is written atomically (:func:`atomic_path`): a temporary name in the same folder,
then one rename, so a reader or a killed writer never leaves half a file behind. A snapshot
folder is written the same way as a whole (:func:`atomic_dir`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NotRequired, TypedDict

MANIFEST = "manifest.json"
HASH_FILE = ".stage_hash"
RECIPE = "recipe.yaml"
METRICS = "metrics.json"
METRICS_LOG = "metrics.jsonl"
BEST_WEIGHTS = "best.safetensors"
REPORT_DIR = "report"
REPORT_PAGE = "index.html"
REPORT_MARKDOWN = "report.md"
LM_KINDS = frozenset({"pretrain", "distill"})
"""Stage kinds that train a masked LM: their metrics carry held-out LM evaluations."""
SNAPSHOTS = "snapshots"
"""An LM stage's kept snapshots, and a finetune stage's scores of them (by LM stage)."""
_SNAPSHOT_NAME = re.compile(r"step-(\d+)")


def predictions_file(set_name: str) -> str:
    return f"predictions-{set_name}.jsonl"


def snapshot_name(step: int) -> str:
    """Folder of the snapshot at ``step``: ``step-000250`` (zero-padded: listings sort by step)."""
    return f"step-{step:06d}"


def snapshot_folders(stage_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every complete snapshot of an LM stage, by step. A complete one
    was renamed into place with its ``metrics.json`` (:func:`atomic_dir`); the temporary folder
    a killed writer left (``step-….tmp``) is not listed."""
    found = []
    for path in (stage_dir / SNAPSHOTS).glob("step-*"):
        match = _SNAPSHOT_NAME.fullmatch(path.name)
        if match and (path / METRICS).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


# --------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` keeps its old content (or stays
    absent), so no reader ever sees a partial file.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` to fill; on success it is renamed onto
    ``path`` (which must not exist yet) in one step.

    What a kill leaves is only the temporary folder: readers never list it, and the next
    attempt clears it before writing, so nobody reads half a folder.
    """
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8) to ``path`` atomically."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically, indented, with a trailing newline."""
    atomic_write(path, json.dumps(payload, indent=2, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object a line, atomically (non-ASCII text kept as is)."""
    atomic_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


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


# --------------------------------------------------------------------------- metrics schema
# What each stage kind writes to its metrics.json; the report reads the same keys. TypedDicts
# keep the files plain JSON while the type checker holds writers and readers to one schema.


class LMEval(TypedDict):
    """Held-out masked-LM metrics of one corpus (``by_language`` when it has several)."""

    loss: float
    perplexity: float
    masked_tokens: int
    mask_fill_accuracy: float
    mask_fill_n: int
    by_language: NotRequired[dict[str, Any]]


class TokenizerMetrics(TypedDict):
    stage: str
    vocab_size: int
    trained_on: int
    fertility: NotRequired[list[dict[str, Any]]]


class SnapshotMetrics(TypedDict):
    """The ``metrics.json`` of one kept snapshot (``<stage>/snapshots/step-…/``)."""

    stage: str
    step: int
    tokens: int
    eval: dict[str, LMEval]


class TrainedMetrics(TypedDict):
    """A stage that trained a masked LM (pretrain, distill)."""

    stage: str
    steps: int
    tokens: int
    nonfinite_skipped: int
    parameters: dict[str, int]
    """The whole masked LM, LM head included."""
    encoder_parameters: NotRequired[dict[str, int]]
    """The encoder alone (no LM head): the size fine-tuned models of it report."""
    eval: dict[str, LMEval]
    teachers: NotRequired[list[str]]
    teacher_switches: NotRequired[list[dict[str, Any]]]
    snapshots: NotRequired[list[SnapshotMetrics]]
    """keep_snapshots: every kept snapshot's metrics, by step."""


class SnapshotScore(TypedDict):
    """One snapshot fine-tuned briefly and scored on dev (a finetune stage's ``snapshots``)."""

    stage: str
    step: int
    lm: dict[str, dict[str, float]]
    """Per eval corpus of the LM stage: the snapshot's perplexity and mask-filling accuracy."""
    metric: str
    """The task's primary metric (exact_match; pairs: accuracy), the one the report plots."""
    dev: dict[str, Any]
    """Every dev metric after the short fine-tuning."""
    steps: int
    seconds: float


class ModelMetrics(TypedDict):
    """One fine-tuned model of a finetune stage."""

    source: str
    encoder: str
    folder: str
    parameters: dict[str, int]
    lm: dict[str, Any] | None
    steps: int
    best_step: int
    seconds: float
    eval_seconds: float
    eval: dict[str, dict[str, Any]]
    latency_ms: dict[str, float]
    slot_prior: NotRequired[dict[str, Any]]
    """Slot models: the tag prior's weight, the dev metric that chose it and its value for each
    weight tried."""
    teacher: NotRequired[str | list[str]]
    """task_distill: the fine-tuned teacher, or the teachers of an ensemble."""
    pool: NotRequired[dict[str, int]]
    """task_distill: labeled, unlabeled and augmented utterances trained on."""


class FinetuneMetrics(TypedDict):
    stage: str
    task: str
    baseline: str | None
    lm_corpus: str | None
    dev: str
    primary: str
    train_examples: int
    labels: dict[str, int]
    models: dict[str, ModelMetrics]
    snapshots: NotRequired[dict[str, list[SnapshotScore]]]
    """``snapshots`` set: each named LM stage's snapshot scores, by step."""
    joins: NotRequired[str | None]
    """task_distill: the finetune stage whose table the model joins in the report."""
    teacher: NotRequired[str | list[str]]
    pool: NotRequired[dict[str, int]]
    """task_distill: labeled, unlabeled and augmented utterances trained on."""


class ManifestEntry(TypedDict):
    hash: str
    kind: str
    output: str
    seconds: float
    finished: str


class Manifest(TypedDict):
    stages: dict[str, ManifestEntry]
