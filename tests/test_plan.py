"""``distilnlu plan``: FLOPs against a hand count, memory against DeepSpeed's own formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distilnlu import plan
from distilnlu.cli import app
from distilnlu.config import load_recipe
from distilnlu.errors import ConfigError
from distilnlu.modeling.presets import ModelShape, build_model, count_parameters

ROOT = Path(__file__).resolve().parents[1]


def tiny(vocab: int = 100) -> plan.Shape:
    return plan.shape_of(ModelShape(num_layers=2, hidden_size=32, num_heads=2), vocab)


def test_the_shape_counts_match_a_built_model() -> None:
    shape = ModelShape(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64)
    counted = count_parameters(build_model(shape, 100))
    planned = plan.shape_of(shape, 100)
    assert (planned.embedding, planned.non_embedding) == (
        counted["embedding"],
        counted["non_embedding"],
    )
    layers = sum(p.numel() for n, p in build_model(shape, 100).named_parameters() if ".layer." in n)
    assert planned.body == layers  # what every token multiplies through


def test_flops_per_token_by_hand() -> None:
    # L=2, H=32, FFN=128 (4H), V=100, T=16, 15% masked. Per layer: Q, K, V, O 4·32·32 + 4·32,
    # FFN 2·32·128 + 128 + 32, two LayerNorms 4·32 = 12,704; two layers 25,408.
    s = tiny()
    assert s.body == 25_408
    head = 32 * 32 + 32 * 100  # dense + decoder
    forward = 2 * 25_408 + 4 * 2 * 16 * 32 + 2 * 0.15 * head
    assert plan.forward_flops_per_token(s, 16, 0.15) == pytest.approx(forward)
    assert plan.train_flops_per_token(s, 16, 0.15) == pytest.approx(3 * forward)


# DeepSpeed's estimates without offload, as published in deepspeed.runtime.zero:
# stage_1_and_2.estimate_zero2_model_states_mem_needs: 4Ψ + 16Ψ/N;
# stage3.estimate_zero3_model_states_mem_needs: 4 × largest layer + 18Ψ/N.
def deepspeed_zero2(total: int, gpus: int) -> int:
    return 4 * total + int(16 * total / gpus)


def deepspeed_zero3(total: int, largest: int, gpus: int) -> int:
    return 4 * largest + int(18 * total / gpus)


@pytest.mark.parametrize(
    ("preset", "vocab", "gpus"),
    [
        ("alexatm-2.3b", 150_000, 64),
        ("student-170m", 150_000, 8),
        ("base", 32_000, 1),
        ("large", 50_265, 16),
    ],
)
def test_zero_model_states_match_deepspeeds_formulas(preset: str, vocab: int, gpus: int) -> None:
    from distilnlu.modeling.presets import resolve_shape

    s = plan.shape_of(resolve_shape(preset), vocab)
    assert s.largest_layer == max(vocab * s.hidden, s.hidden * s.ffn + s.ffn)
    zero3 = plan.model_state_bytes(s, "zero3", gpus)
    assert zero3 == pytest.approx(deepspeed_zero3(s.total, s.largest_layer, gpus), abs=1)
    zero2 = plan.model_state_bytes(s, "zero2", gpus)
    assert zero2 == pytest.approx(deepspeed_zero2(s.total, gpus), abs=1)
    assert plan.model_state_bytes(s, "ddp", gpus) == 16 * s.total


def test_model_states_by_part_sum_to_the_totals_and_follow_the_precision() -> None:
    from distilnlu.modeling.presets import resolve_shape

    s = plan.shape_of(resolve_shape("large"), 50_265)
    psi, layer, n = s.total, s.largest_layer, 16
    for precision in ("bf16", "fp16", "fp32"):
        for strategy in plan.STRATEGIES:
            parts = plan.model_state_parts(s, strategy, precision)
            assert set(parts) == {"weights", "gradients", "optimizer"}
            held = sum(h for h, _ in parts.values())
            split = sum(x for _, x in parts.values())
            assert (held, split) == plan.model_states(s, strategy, precision)
            assert parts["optimizer"][1 if strategy != "ddp" else 0] == 8 * psi  # two moments
    # Accelerate keeps fp32 weights and gradients under autocast: no change with precision.
    for strategy in ("ddp", "fsdp"):
        assert plan.model_state_bytes(s, strategy, n, "fp32") == plan.model_state_bytes(
            s, strategy, n, "bf16"
        )
    # DeepSpeed in fp32 keeps neither 16-bit copies nor a master copy.
    assert plan.model_state_bytes(s, "zero2", n, "fp32") == pytest.approx(4 * psi + 12 * psi / n)
    assert plan.model_state_bytes(s, "zero3", n, "fp32") == pytest.approx(4 * layer + 16 * psi / n)
    weights, _ = plan.model_state_parts(s, "zero2", "bf16")["weights"]
    assert weights == 2 * psi  # the 16-bit copy every ZeRO-2 device holds


def test_the_plan_breaks_memory_down_and_prints_it() -> None:
    recipe = load_recipe(ROOT / "configs/alexatm.yaml")
    result = plan.make_plan(recipe, "h100", 64, 0.4)
    distill = next(s for s in result.stages if s.kind == "distill")
    for stage in result.stages:
        for strategy in plan.STRATEGIES:
            parts = stage.breakdown_gib[strategy]
            assert sum(parts.values()) == pytest.approx(stage.memory_gib[strategy])
            assert parts["activations"] == pytest.approx(stage.activations_gib)
    assert distill.breakdown_gib["zero3"]["teacher"] > 0
    text = plan.plan_table(result)
    assert "Memory per device at 64 devices, GiB" in text
    assert "Optimizer" in text and "Gradients" in text


def test_the_fewest_devices_that_fit() -> None:
    from distilnlu.modeling.presets import resolve_shape

    s = plan.shape_of(resolve_shape("alexatm-2.3b"), 150_000)  # 2.65B parameters: 42 GB of states
    h100 = plan.GPUS["h100"]
    assert plan.fewest_devices(s, "ddp", 0, h100) == 1
    need = 60 * 2**30  # 60 GiB of activations leave 12 GiB for states on an 80 GiB device
    assert plan.fewest_devices(s, "ddp", need, h100) is None
    zero3 = plan.fewest_devices(s, "zero3", need, h100)
    assert (
        zero3 is not None and plan.model_state_bytes(s, "zero3", zero3) + need <= 0.9 * 80 * 2**30
    )
    assert plan.model_state_bytes(s, "zero3", zero3 - 1) + need > 0.9 * 80 * 2**30  # the fewest


def test_alexatm_on_64_h100s_prints_a_table() -> None:
    out = CliRunner().invoke(
        app, ["plan", str(ROOT / "configs/alexatm.yaml"), "--gpu", "h100", "--gpus", "64"]
    )
    assert out.exit_code == 0, out.output
    assert "Plan of alexatm on 64 × NVIDIA H100 SXM" in out.output
    row = next(
        line.split() for line in out.output.splitlines() if line.startswith("teacher_stage1 ")
    )
    assert row[1:4] == ["pretrain", "346.8M", "2.3G"]
    assert "tokenizer: not planned (not a masked-LM stage)" in out.output


def test_json_and_distillation_counts_the_teacher(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["plan", str(ROOT / "configs/demo.yaml"), "--json"])
    assert out.exit_code == 0, out.output
    stages = {s["stage"]: s for s in json.loads(out.output)["stages"]}
    recipe = load_recipe(ROOT / "configs/demo.yaml", [])
    planner = plan.Planner(recipe)
    student = planner.shape("baselines")
    teacher = planner.shape("intermediate_adapted")
    assert student is not None and teacher is not None
    cfg = recipe.stages["final"].training  # type: ignore[union-attr]
    tokens = cfg.max_steps * cfg.batch_size * cfg.seq_len
    alone = plan.train_flops_per_token(student, cfg.seq_len, 0.15)
    extra = plan.forward_flops_per_token(teacher, cfg.seq_len, 0.15)
    assert stages["final"]["flops"] == pytest.approx((alone + extra) * tokens)
    assert stages["baselines"]["flops"] == pytest.approx(alone * tokens)
    assert stages["final"]["teachers"] == ["intermediate_adapted"]
    assert not math.isnan(stages["final"]["hours"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "v100"], "--gpu v100: not a known GPU"),
        (["--gpus", "0"], "--gpus 0: give 1 or more"),
    ],
)
def test_bad_options_name_the_flag(args: list[str], message: str) -> None:
    recipe = load_recipe(ROOT / "configs/demo.yaml", [])
    gpu = args[1] if args[0] == "--gpu" else "h100"
    gpus = int(args[1]) if args[0] == "--gpus" else 1
    with pytest.raises(ConfigError, match=message):
        plan.make_plan(recipe, gpu, gpus, 0.4)


def test_step_and_evaluation_costs_from_a_training_log() -> None:
    from distilnlu.plan_measure import costs, evaluations, predict

    rows, t = [], 0.0
    for step in range(1, 13):  # 0.1 s a step, an evaluation of 0.5 s after steps 6 and 12
        t += 0.1
        rows.append({"step": step, "loss": 1.0, "time": round(t, 6)})
        if step % 6 == 0:
            rows.append({"step": step, "eval": {}})
            t += 0.5
    step_s, eval_s, steps, evals = costs(rows)
    assert (step_s, eval_s, steps, evals) == (pytest.approx(0.1), pytest.approx(0.5), 12, 2)
    assert evaluations(400, 100) == 4 and evaluations(450, 100) == 5
    assert predict(2.0, 0.1, 0.5, 400, 100) == pytest.approx(2.0 + 40 + 2.0)


def test_the_short_run_cuts_every_training_stage(tmp_path: Path) -> None:
    from distilnlu.plan_measure import short_overrides

    recipe = load_recipe(ROOT / "configs/demo.yaml", [])
    args = short_overrides(recipe, 12, tmp_path)
    assert f"output_dir={tmp_path}" in args
    assert "stages.teacher_stage1.training.max_steps=12" in args
    assert "stages.final_task.training.eval_every=6" in args
    assert not any(a.startswith("stages.tokenizer.") for a in args)
    short = load_recipe(ROOT / "configs/demo.yaml", args)  # a valid recipe
    assert short.stages["baselines"].training.max_steps == 12  # type: ignore[union-attr]


def test_measure_times_every_stage_of_a_short_run(tiny_recipe_file) -> None:
    from distilnlu.plan_measure import measure

    path = tiny_recipe_file()
    recipe = load_recipe(path, [])
    predicted = measure(path, [], recipe, steps=6)
    assert list(predicted) == list(recipe.stages)
    assert all(math.isfinite(s) and s > 0 for s in predicted.values()), predicted
    assert not (Path(path).parent / "runs" / "plan").exists()  # the scratch run is gone
