"""Smoke test of benchmarks/distill_step.py at tiny sizes (in-process, a few seconds)."""

from __future__ import annotations

import json
import math

import pytest

VARIANTS = ("student_mlm", "distill", "naive_distill", "teacher_forward")


@pytest.mark.parametrize("packing", ["isolated", "concatenated"])
def test_distill_step_benchmark_tiny(tmp_path, capsys, packing, load_benchmark):
    out = tmp_path / "result.json"
    argv = ["--vocab", "500", "--seq-len", "40", "--batch", "4", "--teacher", "tiny-64"]
    argv += ["--packing", packing]
    argv += ["--student", "tiny", "--steps", "2", "--warmup", "1", "--json", str(out)]
    result = load_benchmark("distill_step").main(argv)

    for key in ("median_ms", "min_ms", "final_loss", "b_over_a_plus_teacher", "c_over_b"):
        assert key in result
    for key in ("targets", "shapes", "torch", "threads", "steps", "warmup"):
        assert key in result
    assert set(result["median_ms"]) == set(VARIANTS)
    for value in [*result["median_ms"].values(), *result["min_ms"].values()]:
        assert math.isfinite(value) and value > 0
    for key in ("b_over_a_plus_teacher", "c_over_b"):
        assert math.isfinite(result[key]) and result[key] > 0
    assert set(result["targets"]) == {"b_le_1.2x_a_plus_d", "c_over_b_ge_2"}
    assert result["shapes"]["vocab"] == 500 and result["shapes"]["batch"] == 4
    assert result["shapes"]["packing"] == packing
    for name in ("student_mlm", "distill", "naive_distill"):
        assert math.isfinite(result["final_loss"][name])

    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    assert "b / (a + d)" in printed and "c / b" in printed
