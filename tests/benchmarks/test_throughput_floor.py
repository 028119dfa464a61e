"""The matrix-product floor of benchmarks/throughput.py (benchmarks/throughput_floor.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from distilnlu.modeling.presets import resolve_shape

TINY = resolve_shape({"num_layers": 2, "hidden_size": 16, "num_heads": 2, "dropout": 0.0})
TEACHER = resolve_shape({"num_layers": 3, "hidden_size": 24, "num_heads": 2, "dropout": 0.0})


@pytest.fixture
def floor(load_benchmark):
    return load_benchmark("throughput_floor")


def test_step_flops_matches_a_hand_count(floor):
    # Per layer: 16x48 + 16x16 + 16x64 + 64x16 = 3,072 multiply-adds per token; the head
    # (16x16 + 16x100 = 1,856) on the 3 masked rows only.
    forward = 2 * (20 * 2 * 3072 + 3 * 1856)
    assert floor.step_flops(TINY, 100, 20, 3, train=False) == forward
    assert floor.step_flops(TINY, 100, 20, 3, train=True) == 3 * forward


@pytest.mark.parametrize("train", [True, False])
def test_the_timed_step_performs_exactly_the_counted_flops(floor, train):
    part = floor.products(TINY, 100, 20, 3, train)
    with FlopCounterMode(display=False) as counter:
        floor.run_step([part])
    assert counter.get_total_flops() == floor.step_flops(TINY, 100, 20, 3, train=train)


def test_matmul_floor_of_a_distillation_step(floor):
    models = [(TINY, True), (TEACHER, False)]
    rate = floor.matmul_floor(models, 100, 64, 0.15, repeats=3)
    assert rate["tokens"] == 64 and rate["precision"] == "fp32"
    flops = floor.step_flops(TINY, 100, 64, 10, train=True)
    flops += floor.step_flops(TEACHER, 100, 64, 10, train=False)  # round(0.15 * 64) masked
    seconds = rate["step_ms"] / 1e3
    assert math.isclose(rate["floor_tokens_per_s"], 64 / seconds)
    assert math.isclose(rate["gflops_per_s"], flops / seconds / 1e9)


def test_bf16_floor_runs_every_product_in_bf16(floor):
    part = floor.products(TINY, 100, 8, 2, True, "bf16")
    seen = []
    for layer in part.layers:
        layer.register_forward_hook(lambda _m, args, out: seen.append((args[0].dtype, out.dtype)))
    floor.run_step([part])
    assert seen and set(seen) == {(torch.bfloat16, torch.bfloat16)}  # no fp32 casts in between
    assert all(x.grad is not None and x.grad.dtype == torch.bfloat16 for x in part.inputs)
    assert all(layer.weight.grad.dtype == torch.bfloat16 for layer in part.layers)
    assert floor.matmul_floor([(TINY, True)], 100, 8, 0.15, "bf16", repeats=1)["step_ms"] > 0


def test_verdict_compares_the_target_with_the_floor(floor):
    rate = {"floor_tokens_per_s": 6000.0}
    above = floor.verdict(rate, ours=4800.0, strongest=3000.0, target=3.0)
    assert above == {
        "ours_of_floor": 0.8,
        "target_tokens_per_s": 9000.0,
        "target_within_floor": False,
    }
    assert floor.verdict(rate, 4800.0, 2000.0, 3.0)["target_within_floor"] is True
    assert floor.verdict(rate, 4800.0, 1500.0, 4.0)["target_within_floor"] is True  # equal
    none_ran = floor.verdict(rate, None, None, 3.0)
    assert none_ran == {
        "ours_of_floor": None,
        "target_tokens_per_s": None,
        "target_within_floor": False,
    }
