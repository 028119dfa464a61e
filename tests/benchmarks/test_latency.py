"""Smoke test of benchmarks/latency.py on the tiny model (in-process, a few seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

ROWS = {
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
    assert len(result["checks"]) == 1  # int8 vs pipeline; the 17M check needs that preset
    assert json.loads(out.read_text())["rows"].keys() == ROWS
    printed = capsys.readouterr().out
    assert "HF pipeline" in printed and "vs pipeline" in printed
    assert not list(Path(tiny_nlu_dir).glob("*.onnx"))  # the benchmark exports into a copy
