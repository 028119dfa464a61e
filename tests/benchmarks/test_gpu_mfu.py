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


def test_isolated_packing_trains_the_same_through_varlen_and_the_dense_mask(load_benchmark):
    argv = ["--presets", "tiny", "--batch", "2", "--seq-len", "48", "--steps", "2"]
    argv += ["--warmup", "1", "--compile", "off", "--attention", "both"]
    result = load_benchmark("gpu_mfu").main(argv)
    varlen, mask = result["rows"]
    assert (varlen["attention"], mask["attention"]) == ("varlen", "mask")
    assert result["packing"] == "isolated"
    # Documents of 8-32 tokens: a token attends to far fewer keys than the 48 of its row.
    assert 8 <= varlen["attention_span"] == mask["attention_span"] < 40
    assert varlen["final_loss"] == pytest.approx(mask["final_loss"], abs=1e-4)


def test_attention_span_is_the_token_weighted_document_length(load_benchmark):
    import torch

    bench = load_benchmark("gpu_mfu")
    docs = torch.tensor([[1, 1, 1, 2], [1, 1, 2, 2]])  # lengths 3, 1, 2, 2
    span = bench.attention_span({"input_ids": docs, "document_ids": docs})
    assert span == pytest.approx((9 + 1 + 4 + 4) / 8)
    assert bench.attention_span({"input_ids": docs}) == 4.0
