"""The matrix-product floor of a training step: what bounds any loop on this machine.

Whatever a training loop does about padding, heads or attention, every real token must still go
through the encoder's weight matrices: the forward and both backward products of each trained
linear layer, and the forward of the teacher's in distillation. The *floor* times nothing but
those products, on the real tokens of one of our steps, in the run's precision (weights,
inputs and gradients all in it: no autocast casts) and thread count:

* every encoder layer's four weight matrices (``H x 3H`` for query/key/value, ``H x H``,
  ``H x F``, ``F x H``) on all ``tokens`` rows;
* the LM head (``H x H`` transform and ``H x V`` decoder) on the masked share of the rows only,
  the least any masked-LM loss needs;
* trained models forward and backward (input and weight gradients), the teacher forward only
  under ``torch.inference_mode``.

No attention, norms, activations, losses, data or optimizer: a loop that did only this would run
at ``floor_tokens_per_s``. So ``ours / floor`` is how close our loop comes to the core's own
matrix rate, and a target above the floor cannot be met on this machine by any loop that keeps
the model and the precision; only fewer FLOPs per token or a faster matrix rate (another
precision, another device) can lift it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import nn

from distilnlu.data.masking import MaskingConfig
from distilnlu.modeling.presets import ModelShape

MLM_PROBABILITY = MaskingConfig().mlm_probability  # the masked share the LM head must score

Sizes = list[tuple[int, int]]


def weight_matrices(shape: ModelShape, vocab: int) -> tuple[Sizes, Sizes]:
    """``(in, out)`` of the encoder's weight matrices, and of its LM head's."""
    h, f = shape.hidden_size, shape.ffn_size
    layer = [(h, 3 * h), (h, h), (h, f), (f, h)]
    return layer * shape.num_layers, [(h, h), (h, vocab)]


def step_flops(shape: ModelShape, vocab: int, tokens: int, masked: int, *, train: bool) -> int:
    """FLOPs of the floor's products for one model: 2 per multiply-add forward, 3x that trained."""
    encoder, head = weight_matrices(shape, vocab)
    forward = 2 * (tokens * sum(i * o for i, o in encoder) + masked * sum(i * o for i, o in head))
    return 3 * forward if train else forward


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class Products(NamedTuple):
    """One model's linear layers in the floor's dtype, each with an input of its row count and,
    for a trained model, a fixed gradient for its output (so the backward products run on real
    tensors, not on a broadcast of ones)."""

    layers: list[nn.Linear]
    inputs: list[torch.Tensor]
    grads: list[torch.Tensor] | None


def products(
    shape: ModelShape, vocab: int, tokens: int, masked: int, train: bool, precision: str = "fp32"
) -> Products:
    """:class:`Products` of ``shape`` (seeded)."""
    dtype = DTYPES[precision]
    generator = torch.Generator().manual_seed(0)
    encoder, head = weight_matrices(shape, vocab)
    sizes = [(tokens, i, o) for i, o in encoder] + [(masked, i, o) for i, o in head]
    layers = [nn.Linear(i, o, dtype=dtype) for _, i, o in sizes]
    inputs = [
        torch.randn(n, i, generator=generator, dtype=dtype, requires_grad=train)
        for n, i, _ in sizes
    ]
    grads = [torch.randn(n, o, generator=generator, dtype=dtype) for n, _, o in sizes]
    return Products(layers, inputs, grads if train else None)


def run_step(parts: list[Products]) -> None:
    """One floor step: every trained model forward and backward, every other one forward."""
    for part in parts:
        pairs = zip(part.layers, part.inputs, strict=True)
        if part.grads is None:
            with torch.inference_mode():
                for layer, x in pairs:
                    layer(x)
        else:
            torch.autograd.backward([layer(x) for layer, x in pairs], part.grads)


def matmul_floor(
    models: list[tuple[ModelShape, bool]],
    vocab: int,
    tokens: int,
    masked_fraction: float,
    precision: str = "fp32",
    repeats: int = 10,
) -> dict[str, Any]:
    """Median time of one step of nothing but ``models``' weight products (``(shape, trained)``
    each) on ``tokens`` rows, and the tokens/s and FLOP rate it gives."""
    masked = max(1, round(masked_fraction * tokens))
    parts = [products(shape, vocab, tokens, masked, train, precision) for shape, train in models]
    for _ in range(2):
        run_step(parts)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_step(parts)
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    flops = sum(step_flops(s, vocab, tokens, masked, train=t) for s, t in models)
    return {
        "tokens": tokens,
        "precision": precision,
        "step_ms": seconds * 1e3,
        "floor_tokens_per_s": tokens / seconds,
        "gflops_per_s": flops / seconds / 1e9,
    }


def verdict(
    floor: dict[str, Any], ours: float | None, strongest: float | None, target: float
) -> dict[str, Any]:
    """Ours as a fraction of the floor, and whether ``target`` x the strongest is below it."""
    needed = target * strongest if strongest else None
    return {
        "ours_of_floor": ours / floor["floor_tokens_per_s"] if ours else None,
        "target_tokens_per_s": needed,
        "target_within_floor": needed is not None and needed <= floor["floor_tokens_per_s"],
    }


def add_floor(
    kind: dict[str, Any],
    models: list[tuple[ModelShape, bool]],
    vocab: int,
    precision: str,
    repeats: int,
    target: float,
) -> None:
    """Put the kind's floor, at the real tokens of our median step, under ``matmul_floor``."""
    variants = kind["variants"]
    ours = variants.get("ours", {})
    if "real_tokens_per_step" not in ours:
        return  # ours failed: nothing to measure the floor at
    tokens = round(ours["real_tokens_per_step"])
    rate = matmul_floor(models, vocab, tokens, MLM_PROBABILITY, precision, repeats)
    strongest = variants.get(kind["strongest_baseline"], {}).get("tokens_per_s")
    kind["matmul_floor"] = {**rate, **verdict(rate, ours.get("tokens_per_s"), strongest, target)}


def floor_line(kind: dict[str, Any]) -> Iterator[str]:
    """The table's line about the floor (nothing if the kind has none)."""
    floor = kind.get("matmul_floor")
    if not floor:
        return
    share = f"; ours = {floor['ours_of_floor']:.0%} of it" if floor["ours_of_floor"] else ""
    yield (
        f"matmul floor ({floor['precision']}, nothing but the weight products of"
        f" {floor['tokens']} real tokens): {floor['floor_tokens_per_s']:.0f} tokens/s at"
        f" {floor['gflops_per_s']:.0f} GFLOP/s{share}"
    )
    if floor["target_tokens_per_s"] is not None:
        where = "within" if floor["target_within_floor"] else "ABOVE"
        yield (
            f"the target needs {floor['target_tokens_per_s']:.0f} tokens/s: {where} the floor"
            + ("" if floor["target_within_floor"] else " (no loop on this model can reach it here)")
        )
