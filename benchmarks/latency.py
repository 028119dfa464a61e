"""Per-utterance latency of the deployed models: p50/p99 at batch 1 on one CPU thread.

Every row times one request the way a live assistant makes it: one raw utterance in, intent and
slots out (word splitting, tokenisation, model, decoding included), after 10 untimed warm-up
calls. Rows:

* ``student torch``: the fine-tuned student in eager PyTorch (``distilnlu predict --backend
  torch``);
* ``student onnx`` / ``student onnx-int8``: the same model exported by ``distilnlu export``
  (into a temporary copy of the folder, so the benchmark writes nothing into it);
* ``teacher torch``: the fine-tuned teacher the student was distilled from, eager PyTorch;
* ``HF pipeline``: what a user would write without us: ``transformers.pipeline(
  "token-classification", aggregation_strategy="simple")`` on the same student (its slot head
  copied into ``AutoModelForTokenClassification``). It returns slots only, no intent: it does
  less work than the other rows;
* ``<preset> torch`` / ``<preset> onnx-int8``: a student of a size preset (default
  ``student-17m``) with random weights and MASSIVE-sized heads, on utterances of 12-16
  sub-tokens (the acceptance shape of the 17M student).

Each row runs in its own fresh process (spawned), so its peak resident memory is its own: the
table gives that peak (imports included) and the resident memory the loaded and warmed-up model
added (RSS after timing minus RSS before loading, torch and transformers already imported).
Utterances come from the student's saved dev predictions (else built-in ones).

Run from the repository root, after ``make demo``::

    .venv/bin/python benchmarks/latency.py
    .venv/bin/python benchmarks/latency.py --student runs/massive/finetune/final \\
        --teacher runs/massive/finetune/teacher_stage2 --json runs/latency-massive.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from distilnlu.deploy.latency import cpu_name, measure, peak_rss_mb, rss_mb
from distilnlu.evaluation.inference import torch_threads

WARMUP = 10


def _hf_pipeline(folder: Path):
    """``pipeline("token-classification")`` on the student: encoder + its slot head."""
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from distilnlu.data.labeled import LabelVocab
    from distilnlu.modeling.classifier import HEADS_FILE

    labels = LabelVocab.load(folder)
    hf_logging.set_verbosity_error()  # the classifier is "missing" until the line below sets it
    model = AutoModelForTokenClassification.from_pretrained(
        str(folder),
        num_labels=len(labels.slot_tags),
        id2label=dict(enumerate(labels.slot_tags)),
        label2id={t: i for i, t in enumerate(labels.slot_tags)},
    )
    heads = load_file(str(folder / HEADS_FILE))
    model.classifier.load_state_dict(
        {"weight": heads["slot_head.weight"], "bias": heads["slot_head.bias"]}
    )
    tok = AutoTokenizer.from_pretrained(str(folder))
    pipe = pipeline(
        "token-classification",
        model=model.eval(),
        tokenizer=tok,
        aggregation_strategy="simple",
        device=-1,
    )
    return pipe


def _runner(row: dict[str, Any], threads: int):
    """The one-utterance call of a row, loaded (what is measured for memory)."""
    from distilnlu.deploy.parser import Parser

    kind = row["kind"]
    if kind == "parser":
        parser = Parser.load(row["folder"], backend=row["backend"], threads=threads)
        return lambda text: parser.parse([text])
    if kind == "pipeline":
        pipe = _hf_pipeline(Path(row["folder"]))
        return lambda text: pipe(text)
    from distilnlu.deploy import pick
    from distilnlu.modeling.presets import resolve_shape
    from distilnlu.tokenization import load_tokenizer

    tok = load_tokenizer(row["tokenizer"])
    labels = pick.head_labels()
    work = Path(tempfile.mkdtemp())
    run = pick.candidate_runner(
        resolve_shape(row["preset"]), len(tok), labels, row["backend"], threads, work
    )
    parser = Parser(run, tok, labels, max_length=64, backend=row["backend"])
    return lambda text: parser.parse([text])


def measure_row(row: dict[str, Any], texts: list[str], threads: int) -> dict[str, Any]:
    """Load one row's model and time it; run in a fresh process for a clean memory peak."""
    with torch_threads(threads):
        import transformers  # noqa: F401  (its import is not the model's memory)

        before = rss_mb()
        call = _runner(row, threads)
        stats = measure(call, texts, warmup=WARMUP)
        after = rss_mb()
    added = round(after - before, 1)
    return {**stats, "peak_rss_mb": round(peak_rss_mb(), 1), "model_rss_mb": added}


def _texts(student: Path, n: int) -> list[str]:
    from distilnlu.deploy.export import FALLBACK_TEXTS, dev_sample

    texts = [ex.text for ex in dev_sample(student, n)] or FALLBACK_TEXTS
    return [texts[i % len(texts)] for i in range(n)]


def _rows(args: argparse.Namespace, exported: Path) -> list[dict[str, Any]]:
    rows = [
        {"name": "student torch", "kind": "parser", "folder": str(exported), "backend": "torch"},
        {"name": "student onnx", "kind": "parser", "folder": str(exported), "backend": "onnx"},
        {"name": "student onnx-int8", "kind": "parser", "folder": str(exported),
         "backend": "onnx-int8"},
    ]  # fmt: skip
    if args.teacher:
        rows.append(
            {"name": "teacher torch", "kind": "parser", "folder": args.teacher, "backend": "torch"}
        )
    rows.append({"name": "HF pipeline", "kind": "pipeline", "folder": str(exported)})
    if args.preset != "none":
        for backend in ("torch", "onnx-int8"):
            rows.append(
                {"name": f"{args.preset} {backend}", "kind": "preset", "preset": args.preset,
                 "backend": backend, "tokenizer": str(exported), "short": True}
            )  # fmt: skip
    return rows


def _table(result: dict[str, Any]) -> str:
    base = result["rows"]["HF pipeline"]["p50"]
    lines = [
        f"Latency per utterance, batch 1, {result['threads']} thread(s), {result['n']} utterances"
        f" ({result['machine']})",
        f"{'model':<24}{'p50 ms':>9}{'p99 ms':>9}{'vs pipeline':>13}{'peak MiB':>10}"
        f"{'+model MiB':>12}",
    ]
    for name, r in result["rows"].items():
        lines.append(
            f"{name:<24}{r['p50']:>9.3f}{r['p99']:>9.3f}{base / r['p50']:>12.1f}x"
            f"{r['peak_rss_mb']:>10.0f}{r['model_rss_mb']:>12.1f}"
        )
    for check, ok in result["checks"].items():
        lines.append(f"{'PASS' if ok else 'FAIL'}  {check}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--student", default="runs/demo/finetune/final")
    ap.add_argument("--teacher", default="runs/demo/finetune/teacher_stage2",
                    help="Fine-tuned teacher folder ('' to leave it out).")  # fmt: skip
    ap.add_argument("--preset", default="student-17m", help="Size preset row ('none': no row).")
    ap.add_argument("--texts", type=int, default=300, help="Timed utterances per row.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--same-process",
        action="store_true",
        help="Measure every row in this process (memory peaks then accumulate).",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from distilnlu.deploy import pick
    from distilnlu.deploy.export import export_model
    from distilnlu.tokenization import load_tokenizer

    student = Path(args.student)
    texts = _texts(student, args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / student.name
        shutil.copytree(student, exported)
        export_model(exported, int8=True)
        short = pick.utterances(load_tokenizer(exported), 12, 16, args.texts)
        rows = _rows(args, exported)
        results: dict[str, Any] = {}
        if args.same_process:
            for row in rows:
                results[row["name"]] = measure_row(
                    row, short if row.get("short") else texts, args.threads
                )
        else:
            spawn = multiprocessing.get_context("spawn")
            for row in rows:  # one fresh process per row, one at a time (no CPU sharing)
                with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    results[row["name"]] = pool.submit(
                        measure_row, row, short if row.get("short") else texts, args.threads
                    ).result()
    base = results["HF pipeline"]["p50"]
    checks = {
        f"student onnx-int8 p50 <= HF pipeline p50 / 5 ({base / 5:.3f} ms)": (
            results["student onnx-int8"]["p50"] <= base / 5
        )
    }
    if args.preset == "student-17m":
        best = min(results[f"student-17m {b}"]["p50"] for b in ("torch", "onnx-int8"))
        checks["student-17m p50 <= 2 ms (12-16 tokens)"] = best <= 2.0
    result = {
        "student": str(student),
        "teacher": args.teacher or None,
        "threads": args.threads,
        "n": args.texts,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "rows": results,
        "checks": checks,
    }
    print(_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
