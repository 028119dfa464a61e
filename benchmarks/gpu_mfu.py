"""Model FLOPs utilisation (MFU) and tokens/s of teacher pretraining steps.

The step timed is our pretraining step: ``MLMObjective`` masks (15%, 80/10/10), a
``MaskedLMModel`` forward (SDPA attention, LM head on the masked rows only), backward, gradient
clipping and AdamW. It runs under bf16 autocast on a GPU and fp32 on the CPU, with and without
``torch.compile``. Rows are ``--seq-len`` tokens with no padding, so every position is a real
token. ``--packing isolated`` (the default, as the recipes train): each row is packed with
documents of 8-32 tokens framed ``<s> ... </s>``, each attending only to itself
(``training.packing: isolated``), through the attention kernel ``--attention``:

* ``varlen`` (default): no mask; the documents' boundaries go to FlashAttention's variable-length
  kernel (:mod:`distilnlu.modeling.varlen`; on the CPU, SDPA on nested tensors);
* ``mask``: the dense block-diagonal ``[B, 1, T, T]`` mask through SDPA, which on a GPU rules
  out SDPA's flash kernel (it then takes the memory-efficient one);
* ``both``: each in turn.

``--packing none``: rows of random ids with no documents (full attention over the row).

**Model FLOPs per token** (forward + backward = 3 x forward; the standard PaLM-style count):

* ``6 * N_layers`` for the weights in the transformer layers (``N_layers`` = parameters of the
  layers, embeddings and norms excluded);
* ``12 * L * H * A`` for the attention scores and weighted values (L layers, width H; ``A`` the
  keys a token attends to on average: the row length ``T`` without documents, the mean over
  tokens of their document's length with isolated packing, i.e. only the attention computed);
* ``6 * (H * H + H * V) * 0.15`` for the LM head (transform + vocabulary projection) on the 15%
  of tokens that are masked: the head our objective actually needs.

MFU = model FLOPs per second / peak. The peak is the device's dense bf16 peak: 989 TFLOP/s for
H100 SXM and H200, 756 for H100 PCIe (recognised from the device name), or ``--peak-tflops``. On
the CPU there is no default peak: the script then reports achieved TFLOP/s and tokens/s only
(this is how CI keeps it working, at tiny sizes).

Run from the repository root::

    .venv/bin/python benchmarks/gpu_mfu.py                          # base and large, GPU
    .venv/bin/python benchmarks/gpu_mfu.py --presets large --batch 128 --json runs/mfu.json
    .venv/bin/python benchmarks/gpu_mfu.py --presets tiny --batch 4 --seq-len 32 --steps 2

With the defaults (base and large, batch 64, 20 steps, compile on and off, varlen) it runs in a
few minutes on one H100/H200; ``--attention both`` adds the dense-mask rows.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from distilnlu.data.masking import MaskingConfig
from distilnlu.modeling.presets import build_model, count_parameters, resolve_shape
from distilnlu.modeling.varlen import use_varlen
from distilnlu.training.objectives import MaskedLMModel, MLMObjective

FIRST_ORDINARY_ID = 5
BOS, EOS = 0, 2
DOC_TOKENS = (8, 32)  # lengths of the packed documents, framing included
MASKED_SHARE = 0.15
PEAKS_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0}


class StandInTokenizer:
    """The tokenizer attributes MLMObjective reads (RoBERTa special ids, no whole-word masks)."""

    bos_token_id, pad_token_id, eos_token_id, mask_token_id = 0, 1, 2, 4
    all_special_ids = (0, 1, 2, 3, 4)

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return self.vocab_size


def flops_per_token(model: torch.nn.Module, seq_len: float) -> float:
    """Training FLOPs per token; ``seq_len``: the keys a token attends to (module docstring)."""
    config = model.config
    layers, hidden, vocab = config.num_hidden_layers, config.hidden_size, config.vocab_size
    base = model.base_model
    layer_params = sum(p.numel() for p in base.encoder.layer.parameters())
    head = 6 * (hidden * hidden + hidden * vocab) * MASKED_SHARE
    return 6 * layer_params + 12 * layers * hidden * seq_len + head


def device_peak(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given"
    if device.type != "cuda":
        return None, "unknown (CPU)"
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAKS_TFLOPS.items():  # "H100 PCIe" is tested before "H100"
        if key in name:
            return peak, name
    return None, f"unknown ({name}); pass --peak-tflops"


def make_step(
    model: torch.nn.Module, objective: MLMObjective, device: torch.device, compile_model: bool
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    wrapped = MaskedLMModel(model).to(device)
    runner: torch.nn.Module = torch.compile(wrapped) if compile_model else wrapped
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(wrapped.parameters(), lr=1e-4, fused=fused)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )

    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast:
            loss = objective(runner, batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wrapped.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def packed_rows(batch: int, seq_len: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """``[batch, seq_len]`` rows of ``<s> ids </s>`` documents of :data:`DOC_TOKENS` tokens (the
    last one of a row cut at its end)."""
    rows = []
    for _ in range(batch):
        row: list[int] = []
        while len(row) < seq_len:
            size = int(torch.randint(DOC_TOKENS[0], DOC_TOKENS[1] + 1, (1,), generator=generator))
            body = torch.randint(FIRST_ORDINARY_ID, vocab, (size - 2,), generator=generator)
            row += [BOS, *body.tolist(), EOS]
        rows.append(row[:seq_len])
    return torch.tensor(rows)


def attention_span(batch: dict[str, torch.Tensor]) -> float:
    """Mean number of keys a token attends to: its document's length (the row's without)."""
    docs = batch.get("document_ids")
    if docs is None:
        return float(batch["input_ids"].shape[1])
    lengths = torch.cat([torch.unique_consecutive(row, return_counts=True)[1] for row in docs])
    return float((lengths.double() ** 2).sum() / lengths.sum())


def batches(
    objective: MLMObjective, n: int, args: argparse.Namespace, device: torch.device
) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        if args.packing == "isolated":
            ids = packed_rows(args.batch, args.seq_len, args.vocab, generator)
        else:
            shape = (args.batch, args.seq_len)
            ids = torch.randint(FIRST_ORDINARY_ID, args.vocab, shape, generator=generator)
        out.append({k: v.to(device) for k, v in objective.prepare(ids, i).items()})
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    args: argparse.Namespace, preset: str, compile_model: bool, attention: str, device
) -> dict[str, Any]:
    torch.manual_seed(0)
    shape = resolve_shape({"preset": preset, "dropout": 0.0})
    model = build_model(shape, args.vocab)
    if attention == "varlen":
        use_varlen(model)
    isolate = args.packing == "isolated"
    objective = MLMObjective(StandInTokenizer(args.vocab), MaskingConfig(), isolate)
    data = batches(objective, min(4, args.steps), args, device)
    span = sum(attention_span(b) for b in data) / len(data)
    try:
        step = make_step(model, objective, device, compile_model)
        for i in range(args.warmup):  # compilation and allocator warm-up happen here
            step(data[i % len(data)])
        _sync(device)
        start = time.perf_counter()
        for i in range(args.steps):
            loss = step(data[i % len(data)])
        _sync(device)
        seconds = (time.perf_counter() - start) / args.steps
    except Exception as exc:  # torch.compile may be unavailable on a platform: record, go on
        error = f"{type(exc).__name__}: {exc}"
        return {"preset": preset, "compile": compile_model, "attention": attention, "error": error}
    tokens = args.batch * args.seq_len
    flops = flops_per_token(model, span) * tokens / seconds
    peak, _ = device_peak(device, args.peak_tflops)
    return {
        "preset": preset,
        "compile": compile_model,
        "attention": attention,
        "attention_span": round(span, 2),
        "parameters": count_parameters(model),
        "step_ms": round(1000 * seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "model_tflops": round(flops / 1e12, 3),
        "mfu": round(flops / (peak * 1e12), 4) if peak else None,
        "final_loss": round(float(loss), 4),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--presets", default="base,large", help="comma-separated size presets")
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64, help="sequences per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (compilation)")
    parser.add_argument("--compile", choices=("both", "on", "off"), default="both")
    parser.add_argument("--packing", choices=("isolated", "none"), default="isolated")
    parser.add_argument("--attention", choices=("varlen", "mask", "both"), default="varlen",
                        help="kernel for isolated documents (module docstring)")  # fmt: skip
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the peak")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if min(args.steps, args.batch, args.seq_len) < 1 or args.warmup < 0:
        parser.error("--steps, --batch and --seq-len must be >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.compile]
    kernels = ("varlen", "mask") if args.attention == "both" else (args.attention,)
    if args.packing == "none":
        kernels = ("sdpa",)
    rows = [
        measure(args, preset.strip(), compile_model, kernel, device)
        for preset in args.presets.split(",")
        for kernel in kernels
        for compile_model in modes
    ]
    peak, peak_source = device_peak(device, args.peak_tflops)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "peak_tflops": peak,
        "peak_source": peak_source,
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "seq_len": args.seq_len,
        "packing": args.packing,
        "batch": args.batch,
        "vocab": args.vocab,
        "torch": torch.__version__,
        "rows": rows,
    }
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['device']}, {result['precision']}, seq {result['seq_len']}, batch "
        f"{result['batch']}, packing {result['packing']}, peak {result['peak_tflops'] or '-'}"
        f" TFLOP/s ({result['peak_source']})",
        f"{'preset':<10}{'attention':>10}{'compile':>8}{'span':>7}{'step ms':>10}{'tokens/s':>12}"
        f"{'TFLOP/s':>9}{'MFU':>8}",
    ]
    for r in result["rows"]:
        head = f"{r['preset']:<10}{r['attention']:>10}{r['compile']!s:>8}"
        if "error" in r:
            lines.append(f"{head}  failed: {r['error'][:80]}")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
        lines.append(
            f"{head}{r['attention_span']:>7.1f}{r['step_ms']:>10.1f}"
            f"{r['tokens_per_s']:>12.0f}{r['model_tflops']:>9.3f}{mfu:>8}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
