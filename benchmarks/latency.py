"""Per-utterance latency of the deployed models: p50/p99 at batch 1 on one CPU thread.

Every row times one request the way a live assistant makes it: one raw utterance in, intent and
slots out (word splitting, tokenisation, model, decoding included), after 10 untimed warm-up
calls. Rows:

* ``student torch``: the fine-tuned student in eager PyTorch (``distilnlu predict --backend
  torch``);
* ``student onnx`` / ``student onnx-int8``: the same model exported by ``distilnlu export``
  (into a temporary copy of the folder, so the benchmark writes nothing into it); int8 is the
  static, batch-invariant export, its scales calibrated on the folder's dev utterances;
* ``student int8-dynamic``: ONNX Runtime's dynamic int8 of the same graph, as ``export --int8``
  wrote it before static int8 (run one text at a time, as it had to be), for comparison;
* ``teacher torch``: the fine-tuned teacher the student was distilled from, eager PyTorch;
* ``HF pipeline``: what a user would write without us: ``transformers.pipeline(
  "token-classification", aggregation_strategy="simple")`` on the same student (its slot head
  copied into ``AutoModelForTokenClassification``). It returns slots only, no intent: it does
  less work than the other rows;
* ``<preset> torch`` / ``<preset> onnx-int8`` / ``<preset> int8-dynamic``: a student of a size
  preset (default ``student-17m``) with random weights and MASSIVE-sized heads, on utterances of
  12-16 sub-tokens (the acceptance shape of the 17M student).

For each int8 row the table also gives what the core's own int8 matrix products take at that
model's shapes in the same runtime (:mod:`distilnlu.deploy.int8_gemm`) and the achieved fraction:
that time over the row's p50, a figure that compares across CPUs where the p50 does not. The
checks include the int8 export's parity with fp32 on the dev set it was calibrated on (intent
agreement, slot F1 against the gold tags).

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
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distilnlu.deploy.int8_gemm import vnni
from distilnlu.deploy.latency import cpu_name, measure, peak_rss_mb, rss_mb
from distilnlu.evaluation.inference import torch_threads

WARMUP = 10
DYNAMIC_FILE = "model.dynamic.onnx"
PARITY_INTENT, PARITY_SLOT_F1 = 0.995, 0.003  # int8 vs fp32 on the dev set: agreement, F1 change


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


def quantize_dynamic_int8(fp32: Path, path: Path) -> None:
    """ONNX Runtime's dynamic int8 (MatMul weights per channel), as ``export --int8`` made it
    before static int8: the comparison row."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing hint through the root logger
    try:
        quantize_dynamic(
            str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul"],
        )  # fmt: skip
    finally:
        root.setLevel(level)


def _runner(row: dict[str, Any], threads: int, texts: list[str]):
    """The one-utterance call of a row, loaded (what is measured for memory)."""
    from distilnlu.deploy.backends import OnnxBackend
    from distilnlu.deploy.parser import Parser

    kind = row["kind"]
    if kind == "parser":
        parser = Parser.load(row["folder"], backend=row["backend"], threads=threads)
        return lambda text: parser.parse([text])
    if kind == "dynamic":
        base = Parser.load(row["folder"], backend="onnx", threads=threads)
        run = OnnxBackend(Path(row["folder"]) / DYNAMIC_FILE, threads, one_at_a_time=True)
        parser = Parser(run, base.tokenizer, base.labels, max_length=base.max_length,
                        backend="onnx-int8", prior=base.prior)  # fmt: skip
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
    backend = row["backend"]
    feeds = pick.int8_calibration(tok, texts, 64) if backend == "onnx-int8" else []
    built = "onnx" if backend == "int8-dynamic" else backend
    shape = resolve_shape(row["preset"])
    run = pick.candidate_runner(shape, len(tok), labels, built, threads, work, feeds)
    if backend == "int8-dynamic":
        quantize_dynamic_int8(work / "model.onnx", work / DYNAMIC_FILE)
        run = OnnxBackend(work / DYNAMIC_FILE, threads, one_at_a_time=True)
    parser = Parser(run, tok, labels, max_length=64, backend=built)
    return lambda text: parser.parse([text])


def measure_row(row: dict[str, Any], texts: list[str], threads: int) -> dict[str, Any]:
    """Load one row's model and time it; run in a fresh process for a clean memory peak."""
    with torch_threads(threads):
        import transformers  # noqa: F401  (its import is not the model's memory)

        before = rss_mb()
        call = _runner(row, threads, texts)
        stats = measure(call, texts, warmup=WARMUP)
        after = rss_mb()
    added = round(after - before, 1)
    return {**stats, "peak_rss_mb": round(peak_rss_mb(), 1), "model_rss_mb": added}


def measure_interleaved(
    rows: list[dict[str, Any]], texts: list[str], threads: int
) -> dict[str, float]:
    """p50 of each row's call with the rows loaded side by side in one process and called in
    turn on every text: what the static-vs-dynamic check compares, since a shared machine's
    speed drifts between the one-process-per-row measurements more than the two differ."""
    with torch_threads(threads):
        calls = [_runner(row, threads, texts) for row in rows]
        for text in texts[:WARMUP]:
            for call in calls:
                call(text)
        times: list[list[float]] = [[] for _ in rows]
        for text in texts:
            for k, call in enumerate(calls):
                start = time.perf_counter()
                call(text)
                times[k].append(time.perf_counter() - start)
    return {
        row["name"]: round(1000 * float(np.median(t)), 3)
        for row, t in zip(rows, times, strict=True)
    }


def _texts(student: Path, n: int) -> list[str]:
    from distilnlu.deploy.export import FALLBACK_TEXTS, dev_sample

    texts = [ex.text for ex in dev_sample(student, n)] or FALLBACK_TEXTS
    return [texts[i % len(texts)] for i in range(n)]


def _rows(args: argparse.Namespace, exported: Path) -> list[dict[str, Any]]:
    rows = [
        {"name": "student torch", "kind": "parser", "folder": str(exported), "backend": "torch"},
        {"name": "student onnx", "kind": "parser", "folder": str(exported), "backend": "onnx"},
        {"name": "student onnx-int8", "kind": "parser", "folder": str(exported),
         "backend": "onnx-int8", "int8": "student"},
        {"name": "student int8-dynamic", "kind": "dynamic", "folder": str(exported),
         "int8": "student"},
    ]  # fmt: skip
    if args.teacher:
        rows.append(
            {"name": "teacher torch", "kind": "parser", "folder": args.teacher, "backend": "torch"}
        )
    rows.append({"name": "HF pipeline", "kind": "pipeline", "folder": str(exported)})
    if args.preset != "none":
        for backend in ("torch", "onnx-int8", "int8-dynamic"):
            rows.append(
                {"name": f"{args.preset} {backend}", "kind": "preset", "preset": args.preset,
                 "backend": backend, "tokenizer": str(exported), "short": True,
                 "int8": args.preset if backend != "torch" else None}
            )  # fmt: skip
    return rows


def _table(result: dict[str, Any]) -> str:
    base = result["rows"]["HF pipeline"]["p50"]
    lines = [
        f"Latency per utterance, batch 1, {result['threads']} thread(s), {result['n']} utterances"
        f" ({result['machine']})",
        f"{'model':<26}{'p50 ms':>9}{'p99 ms':>9}{'vs pipeline':>13}{'peak MiB':>10}"
        f"{'+model MiB':>12}{'int8 GEMM ms':>14}{'of p50':>8}{'A/B p50':>9}",
    ]
    for name, r in result["rows"].items():
        gemm = result["gemm"].get(r.get("int8") or "")
        share = f"{gemm['gemm_ms']:>14.3f}{gemm['gemm_ms'] / r['p50']:>8.0%}" if gemm else ""
        if "p50_interleaved" in r:
            share += f"{r['p50_interleaved']:>9.3f}"
        lines.append(
            f"{name:<26}{r['p50']:>9.3f}{r['p99']:>9.3f}{base / r['p50']:>12.1f}x"
            f"{r['peak_rss_mb']:>10.0f}{r['model_rss_mb']:>12.1f}{share}"
        )
    lines.append(
        "A/B p50: the static and dynamic int8 rows of a model loaded side by side in one process"
        " and called in turn (the static-vs-dynamic check compares these)."
    )
    for model, g in result["gemm"].items():
        lines.append(
            f"int8 GEMM rate at {model}'s shapes, {g['tokens']} rows: {g['gops']:.0f} GOPS"
            f" ({g['gemm_ms']:.3f} ms per utterance)"
        )
    for check, ok in result["checks"].items():
        lines.append(f"{'PASS' if ok else 'FAIL'}  {check}")
    return "\n".join(lines)


def _median_tokens(folder: Path, texts: list[str]) -> int:
    from distilnlu.deploy.parser import Parser, split_words

    encoder = Parser.load(folder, backend="onnx")
    lengths = [int(encoder.encode([split_words(t)])[1].sum()) for t in texts]
    return int(np.median(lengths))


def _gemm_rates(args: argparse.Namespace, exported: Path, texts: list[str], short: list[str]):
    """The int8 GEMM rate at the student's shapes and at the preset's (module docstring)."""
    from distilnlu.deploy import pick
    from distilnlu.deploy.int8_gemm import gemm_rate, weight_shapes
    from distilnlu.modeling.presets import resolve_shape
    from distilnlu.tokenization import load_tokenizer

    rates = {"student": gemm_rate(
        weight_shapes(exported / "model.onnx"), _median_tokens(exported, texts), args.threads
    )}  # fmt: skip
    if args.preset != "none":
        with tempfile.TemporaryDirectory() as work:
            tok = load_tokenizer(exported)
            shape = resolve_shape(args.preset)
            pick.candidate_runner(shape, len(tok), pick.head_labels(), "onnx", 1, Path(work))
            shapes = weight_shapes(Path(work) / "model.onnx")
        rates[args.preset] = gemm_rate(shapes, _median_tokens(exported, short), args.threads)
    return rates


def _checks(
    args: argparse.Namespace, results: dict[str, Any], parity: dict[str, Any]
) -> dict[str, bool]:
    base = results["HF pipeline"]["p50"]
    p50 = {name: r["p50"] for name, r in results.items()}
    checks = {
        f"student onnx-int8 p50 <= HF pipeline p50 / 5 ({base / 5:.3f} ms)": (
            p50["student onnx-int8"] <= base / 5
        )
    }
    models = ["student"] + ([args.preset] if args.preset != "none" else [])
    for model in models:
        dynamic = results[f"{model} int8-dynamic"]["p50_interleaved"]
        static = results[f"{model} onnx-int8"]["p50_interleaved"]
        checks[
            f"{model} static int8 p50 {static:.3f} <= 1.05 x dynamic int8 {dynamic:.3f} ms"
            " (interleaved in one process)"
        ] = static <= 1.05 * dynamic
    if args.preset == "student-17m":
        core = "AVX-512 VNNI" if vnni() else "no AVX-512 VNNI"
        checks[f"student-17m onnx-int8 p50 <= 2 ms (12-16 tokens; this core: {core})"] = (
            p50["student-17m onnx-int8"] <= 2.0
        )
    if "exported_slot_f1" in parity:
        agree, change = parity["intent_agreement"], parity["slot_f1_change"]
        checks[
            f"int8 parity on {parity['n']} dev utterances: intent agreement {agree:.2%} >= 99.5%,"
            f" slot F1 change {100 * change:+.2f} within 0.3"
        ] = agree >= PARITY_INTENT and abs(change) <= PARITY_SLOT_F1
    return checks


def _measure_rows(
    rows: list[dict[str, Any]], texts: list[str], short: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    spawn = multiprocessing.get_context("spawn")
    for row in rows:  # one fresh process per row, one at a time (no CPU sharing)
        items = short if row.get("short") else texts
        if args.same_process:
            results[row["name"]] = measure_row(row, items, args.threads)
            continue
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            results[row["name"]] = pool.submit(measure_row, row, items, args.threads).result()
    for row in rows:
        results[row["name"]]["int8"] = row.get("int8")
    for model in {row["int8"] for row in rows if row.get("int8")}:
        pair = [r for r in rows if r.get("int8") == model]  # static, then dynamic
        items = short if pair[0].get("short") else texts
        if args.same_process:
            paired = measure_interleaved(pair, items, args.threads)
        else:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                paired = pool.submit(measure_interleaved, pair, items, args.threads).result()
        for name, p50 in paired.items():
            results[name]["p50_interleaved"] = p50
    return results


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
    from distilnlu.deploy.export import dev_sample, export_model
    from distilnlu.tokenization import load_tokenizer

    student = Path(args.student)
    texts = _texts(student, args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / student.name
        shutil.copytree(student, exported)
        report = export_model(exported, int8=True, sample=dev_sample(exported, 10**6))
        quantize_dynamic_int8(exported / "model.onnx", exported / DYNAMIC_FILE)
        short = pick.utterances(load_tokenizer(exported), 12, 16, args.texts)
        gemm = _gemm_rates(args, exported, texts, short)
        results = _measure_rows(_rows(args, exported), texts, short, args)
    result = {
        "student": str(student),
        "teacher": args.teacher or None,
        "threads": args.threads,
        "n": args.texts,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "rows": results,
        "gemm": gemm,
        "int8_parity": report["files"]["onnx-int8"]["parity"],
        "checks": _checks(args, results, report["files"]["onnx-int8"]["parity"]),
    }
    print(_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
