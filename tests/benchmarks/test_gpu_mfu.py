"""benchmarks/gpu_mfu.py at tiny size on the CPU (what keeps it working without a GPU)."""

from __future__ import annotations

import json
import math

import pytest


def test_flops_per_token_follows_the_documented_count(load_benchmark):
    from distilnlu.modeling.presets import build_model

    bench = load_benchmark("gpu_mfu")
    model = build_model("tiny", 500)  # 2 layers, width 32, FFN 64
    h, f, layers, t, v = 32, 64, 2, 16, 500
    per_layer = (4 * h * h + 4 * h) + (2 * h * f + f + h) + 4 * h  # attention, FFN, 2 pre-LNs
    want = 6 * layers * per_layer + 12 * layers * h * t + 6 * (h * h + h * v) * 0.15
    assert bench.flops_per_token(model, t) == pytest.approx(want)


def test_tiny_cpu_run_reports_throughput_and_mfu(load_benchmark, tmp_path):
    out = tmp_path / "mfu.json"
    argv = ["--presets", "tiny", "--batch", "2", "--seq-len", "16", "--steps", "2"]
    argv += ["--warmup", "1", "--compile", "off", "--peak-tflops", "1", "--json", str(out)]
    result = load_benchmark("gpu_mfu").main(argv)
    (row,) = result["rows"]
    assert row["tokens_per_s"] > 0 and math.isfinite(row["final_loss"])
    assert row["mfu"] == pytest.approx(row["model_tflops"], abs=1e-3)  # peak: 1 TFLOP/s
    assert json.loads(out.read_text())["rows"][0]["preset"] == "tiny"
    assert result["device"] == "cpu" and result["precision"] == "fp32"
