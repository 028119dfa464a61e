"""Smoke test of benchmarks/throughput.py at tiny sizes (in-process, two vocabularies)."""

from __future__ import annotations

import json
import math

import pytest

BASELINES = {"hf_trainer", "hf_dynamic", "hf_packed"}
PRETRAINING = {"ours", "ours-packing", "ours-masked_head", "ours-sdpa"} | BASELINES
DISTILLATION = {"ours", "ours-packing", "ours-masked_head"} | BASELINES
KINDS = (("pretraining", PRETRAINING), ("distillation", DISTILLATION))


def test_throughput_benchmark_tiny(tmp_path, capsys, load_benchmark):
    out = tmp_path / "result.json"
    argv = ["--utterances", "200", "--tokenizer-vocab", "400", "--vocabs", "450,900"]
    argv += ["--model", "1x32", "--teacher", "1x32", "--student", "1x32"]
    argv += ["--seq-len", "64", "--pad-len", "32", "--tokens-per-batch", "256"]
    argv += ["--steps", "2", "--warmup", "1", "--threads", "1", "--no-compile"]
    argv += ["--json", str(out)]
    result = load_benchmark("throughput").main(argv)

    assert result["settings"]["vocabs"] == [450, 900]
    assert set(result["vocabs"]) == {"450", "900"}
    for vocab, kinds in result["vocabs"].items():
        assert set(kinds) == {"pretraining", "distillation"}
        for kind, names in KINDS:
            section = kinds[kind]
            where = (vocab, kind)
            assert set(section["variants"]) == names, where
            for name, row in section["variants"].items():
                assert "error" not in row, (where, name, row)
                assert math.isfinite(row["tokens_per_s"]) and row["tokens_per_s"] > 0
                assert row["median_ms"] > 0 and row["timed_steps"] == 2
                assert 0.0 <= row["padded_fraction"] < 1.0
                for column in ("ratio_vs_hf", "ratio_vs_strongest"):
                    ratio = section[column][name]
                    assert ratio is not None and math.isfinite(ratio) and ratio > 0, where
            assert section["ratio_vs_hf"]["hf_trainer"] == 1.0
            for value in section["contribution"].values():
                assert math.isfinite(value) and value > 0

            # The strongest baseline is the fastest one, and ours is compared with each.
            strongest = section["strongest_baseline"]
            rates = {name: section["variants"][name]["tokens_per_s"] for name in BASELINES}
            assert strongest == max(rates, key=rates.__getitem__), where
            assert section["ratio_vs_strongest"][strongest] == 1.0
            ours = section["variants"]["ours"]["tokens_per_s"]
            assert math.isclose(section["ours_vs_strongest"], ours / rates[strongest])
            assert set(section["ours_vs_baseline"]) == BASELINES
            for name, ratio in section["ours_vs_baseline"].items():
                assert math.isclose(ratio, ours / rates[name]), (where, name)
            expected = section["ours_vs_strongest"] >= 3.0
            assert section["target_ours_ge_3x_strongest"] is expected

            # The floor is measured at our step's real tokens, and ours runs below it.
            floor = section["matmul_floor"]
            assert floor["tokens"] == section["variants"]["ours"]["real_tokens_per_step"] == 256
            assert floor["precision"] == "fp32" and floor["gflops_per_s"] > 0
            assert math.isclose(floor["ours_of_floor"], ours / floor["floor_tokens_per_s"])
            assert floor["ours_of_floor"] < 1.0  # a whole loop step is more than its products
            assert floor["target_tokens_per_s"] == 3.0 * rates[strongest]
            within = floor["target_tokens_per_s"] <= floor["floor_tokens_per_s"]
            assert floor["target_within_floor"] is within

            # Each baseline as configured: SDPA; length grouping takes effect; padding shrinks.
            variants = section["variants"]
            assert {variants[name]["attn_implementation"] for name in BASELINES} == {"sdpa"}
            assert {row["autocast"] for row in variants.values()} == {"fp32"}, where
            assert variants["hf_dynamic"]["sampler"] == "LengthGroupedSampler"
            assert variants["hf_dynamic"]["rows_per_batch"] == 256 // 32
            assert variants["hf_packed"]["rows_per_batch"] == 256 // 64
            fixed = variants["hf_trainer"]["padded_fraction"]
            assert variants["hf_dynamic"]["padded_fraction"] < fixed, where
            assert variants["hf_packed"]["padded_fraction"] < fixed, where
            # Packed rows are whole utterances: fewer real tokens than ours, more than padded.
            assert variants["ours"]["real_tokens_per_step"] == 256
            assert variants["ours"]["padded_fraction"] == 0.0
            assert variants["ours-packing"]["real_tokens_per_step"] < 256
            assert fixed > 0.2
            assert 128 < variants["hf_packed"]["real_tokens_per_step"] <= 256

        pretraining = kinds["pretraining"]
        assert set(pretraining["contribution"]) == {"packing", "masked_only_head", "sdpa"}
        assert set(kinds["distillation"]["contribution"]) == {"packing", "masked_only_head"}
        assert pretraining["compile_speedup"] is None
        assert "no-compile" in pretraining["compile_error"]

    summary = {(row["kind"], row["vocab"]): row for row in result["summary"]}
    assert set(summary) == {(kind, vocab) for kind, _ in KINDS for vocab in (450, 900)}
    for (kind, vocab), row in summary.items():
        section = result["vocabs"][str(vocab)][kind]
        assert row["strongest_baseline"] == section["strongest_baseline"]
        assert row["ratio"] == section["ours_vs_strongest"]
        assert row["pass"] is section["target_ours_ge_3x_strongest"]
        assert row["floor_tokens_per_s"] == section["matmul_floor"]["floor_tokens_per_s"]

    assert result["settings"]["timing"] == "sequential"
    assert set(result["settings"]["params"]) == {"450", "900"}
    assert result["threads"] == 1
    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    for label in (
        "HF Trainer baseline",
        "HF Trainer, dynamic padding",
        "DataCollatorWithFlattening",
    ):
        assert label in printed
    assert "vocab 450" in printed and "vocab 900" in printed
    assert printed.count("target >= 3x") == 2 * 2 + 1  # every table, and the summary
    assert printed.count("matmul floor (fp32") == 2 * 2


def test_throughput_bf16_runs_every_variant_under_bf16_autocast(load_benchmark):
    argv = ["--utterances", "120", "--tokenizer-vocab", "400", "--vocabs", "450", "--model", "1x32"]
    argv += ["--seq-len", "64", "--pad-len", "32", "--tokens-per-batch", "256", "--steps", "1"]
    argv += ["--warmup", "1", "--threads", "1", "--no-compile", "--skip-distill"]
    result = load_benchmark("throughput").main([*argv, "--precision", "bf16"])

    section = result["vocabs"]["450"]["pretraining"]
    for name, row in section["variants"].items():
        assert "error" not in row, (name, row)
        assert row["autocast"] == "bfloat16", name  # ours and the Trainer alike
    assert section["matmul_floor"]["precision"] == "bf16"
    assert result["settings"]["precision"] == "bf16"


def eager_run(load_benchmark, *extra):
    argv = ["--utterances", "120", "--tokenizer-vocab", "400", "--vocabs", "450", "--model", "1x32"]
    argv += ["--seq-len", "64", "--pad-len", "32", "--tokens-per-batch", "256", "--steps", "1"]
    argv += ["--warmup", "1", "--threads", "1", "--no-compile", "--skip-distill"]
    section = load_benchmark("throughput").main([*argv, "--attention", "eager", *extra])
    return section["vocabs"]["450"]["pretraining"]


def test_throughput_attention_eager_sets_every_variants_kernel(load_benchmark):
    section = eager_run(load_benchmark)
    variants = section["variants"]
    # The kernel ablation flips: ours with SDPA instead.
    assert "ours-eager" in variants and "ours-sdpa" not in variants
    assert "eager" in section["contribution"]
    for name in ("hf_trainer", "hf_dynamic", "hf_packed"):
        assert "error" not in variants[name], variants[name]
        assert variants[name]["attn_implementation"] == "eager"
        assert variants[name]["compiled"] is False
    assert variants["ours"]["compiled"] is False


@pytest.mark.slow
def test_throughput_compile_compiles_ours_and_the_trainer(load_benchmark):
    variants = eager_run(load_benchmark, "--compile")["variants"]
    assert "ours+compile" not in variants  # ours itself is compiled
    for name, row in variants.items():
        assert "error" not in row, (name, row)
        assert row["compiled"] is True, name
