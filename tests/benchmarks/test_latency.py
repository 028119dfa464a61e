"""Smoke test of benchmarks/latency.py on the tiny model (in-process, a few seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

ROWS = {
    "student int8-dynamic",
    "tiny int8-dynamic",
    "student torch",
    "student onnx",
    "student onnx-int8",
    "teacher torch",
    "HF pipeline",
    "tiny torch",
    "tiny onnx-int8",
}


def test_latency_benchmark_tiny(tmp_path, tiny_nlu_dir, capsys, load_benchmark):
    out = tmp_path / "latency.json"
    argv = ["--student", str(tiny_nlu_dir), "--teacher", str(tiny_nlu_dir), "--preset", "tiny"]
    argv += ["--texts", "12", "--same-process", "--json", str(out)]
    result = load_benchmark("latency").main(argv)

    assert set(result["rows"]) == ROWS
    for row in result["rows"].values():
        assert row["n"] == 12
        assert math.isfinite(row["p50"]) and 0 < row["p50"] <= row["p99"]
        assert row["peak_rss_mb"] > 0
    # vs pipeline, static vs dynamic int8 for both models; no parity (the tiny folder has no dev
    # predictions) and no 17M check (not that preset)
    assert len(result["checks"]) == 3
    assert set(result["gemm"]) == {"student", "tiny"}
    for name in (
        "student onnx-int8",
        "student int8-dynamic",
        "tiny onnx-int8",
        "tiny int8-dynamic",
    ):
        assert result["rows"][name]["p50_interleaved"] > 0  # the A/B the check compares
    for gemm in result["gemm"].values():
        assert gemm["gops"] > 0 and 0 < gemm["gemm_ms"] < result["rows"]["tiny onnx-int8"]["p50"]
    assert json.loads(out.read_text())["rows"].keys() == ROWS
    printed = capsys.readouterr().out
    assert "HF pipeline" in printed and "vs pipeline" in printed
    assert "int8 GEMM rate at tiny's shapes" in printed
    assert not list(Path(tiny_nlu_dir).glob("*.onnx"))  # the benchmark exports into a copy
