"""Smoke test of benchmarks/throughput.py at tiny sizes (in-process, a few seconds)."""

from __future__ import annotations

import json
import math

PRETRAINING = {"ours", "ours-packing", "ours-masked_head", "ours-sdpa", "hf_trainer"}
DISTILLATION = {"ours", "ours-packing", "ours-masked_head", "hf_trainer"}


def test_throughput_benchmark_tiny(tmp_path, capsys, load_benchmark):
    out = tmp_path / "result.json"
    argv = ["--utterances", "200", "--tokenizer-vocab", "400", "--vocab", "500"]
    argv += ["--model", "1x32", "--teacher", "1x32", "--student", "1x32"]
    argv += ["--seq-len", "64", "--pad-len", "32", "--tokens-per-batch", "256"]
    argv += ["--steps", "2", "--warmup", "1", "--threads", "1", "--no-compile"]
    argv += ["--json", str(out)]
    result = load_benchmark("throughput").main(argv)

    for kind, names in (("pretraining", PRETRAINING), ("distillation", DISTILLATION)):
        section = result[kind]
        assert set(section["variants"]) == names
        for name, row in section["variants"].items():
            assert "error" not in row, (kind, name, row)
            assert math.isfinite(row["tokens_per_s"]) and row["tokens_per_s"] > 0
            assert row["median_ms"] > 0 and row["timed_steps"] == 2
            ratio = section["ratio_vs_hf"][name]
            assert ratio is not None and math.isfinite(ratio) and ratio > 0
        assert section["ratio_vs_hf"]["hf_trainer"] == 1.0
        for value in section["contribution"].values():
            assert math.isfinite(value) and value > 0
        assert isinstance(section["target_ours_ge_4x_hf"], bool)
    assert set(result["pretraining"]["contribution"]) == {"packing", "masked_only_head", "sdpa"}
    assert set(result["distillation"]["contribution"]) == {"packing", "masked_only_head"}
    assert result["pretraining"]["compile_speedup"] is None
    assert "no-compile" in result["pretraining"]["compile_error"]

    # Packed rows have no padding; padded rows hold about one utterance each.
    variants = result["pretraining"]["variants"]
    assert variants["ours"]["real_tokens_per_step"] == 256
    assert variants["ours-packing"]["real_tokens_per_step"] < 256
    assert variants["hf_trainer"]["real_tokens_per_step"] < 256

    assert result["settings"]["vocab"] == 500 and result["settings"]["timing"] == "sequential"
    assert result["threads"] == 1
    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    assert "HF Trainer baseline" in printed and "target >= 4x" in printed
