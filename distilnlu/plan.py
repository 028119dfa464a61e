"""``distilnlu plan RECIPE``: what a recipe's masked-LM stages cost before they run.

For each pretrain / distill stage: parameters (embedding / non-embedding), tokens processed,
training FLOPs, memory per device under DDP, FSDP (full shard), ZeRO-2 and ZeRO-3, the smallest
device count whose memory fits, and the time on a named GPU at a stated model-FLOPs utilisation.
Everything is computed from the recipe alone (the models are not built), so it answers for a
2.3B teacher on a laptop.

The formulas, and where they come from:

- **FLOPs per token** of a training step: 6 × the encoder layers' parameters (forward 2, backward
  4, per multiply-add) plus 12 · L · T · H for the attention scores and their weighted sum over
  T = ``seq_len`` (Kaplan et al., 2020), plus 6 × the LM head (dense + decoder) on the masked
  share of tokens only, as :mod:`distilnlu.modeling.masked_lm` computes it. A distill stage adds
  each teacher's forward pass (2 × its layers, 4 · L · T · H, its head on the masked tokens).
- **Model states per device** (bytes, Ψ = parameters): ZeRO-2 4Ψ + 16Ψ / N and ZeRO-3
  4 × the largest layer + 18Ψ / N are DeepSpeed's own estimates without offload
  (``estimate_zero2/3_model_states_mem_needs``); DDP keeps fp32 weights, gradients and AdamW's
  two moments on every device, 16Ψ (Accelerate's mixed precision casts on the fly); FSDP full
  shard keeps those 16Ψ sharded, 16Ψ / N, plus one gathered layer in fp32.
  Each total is split into weights, gradients and optimizer state (:data:`_PER_PARAM`), and
  follows the stage's precision where the engine does: DeepSpeed trained in fp32 keeps no 16-bit
  copies and no master weights (ZeRO-2 4Ψ + 12Ψ / N, ZeRO-3 4 × the largest layer + 16Ψ / N).
- **Activations** of one micro-batch, kept for the backward pass: per layer
  T · B · H · (34 + 5 · A · T / H) bytes at 16 bits (Korthikanti et al., 2022, no
  recomputation), twice that at fp32, plus the masked rows' logits (fp32) of the LM head.

Fine-tuning stages are left out: their cost is small next to pretraining, and their length
depends on early stopping.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distilnlu.config import DistillStage, PretrainStage, Recipe, TokenizerStage
from distilnlu.errors import ConfigError
from distilnlu.modeling.presets import (
    ModelShape,
    estimate_parameters,
    layer_parameters,
    resolve_shape,
)

STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")
HEADROOM = 0.9  # of a device's memory a plan may fill: the allocator and CUDA context need room
DEFAULT_VOCAB = 32_000  # when the recipe has no tokenizer stage to say it


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float
    peak_tflops: float  # dense bf16 / fp16 tensor-core peak (the vendor's figure, no sparsity)


GPUS = {
    "h100": Gpu("NVIDIA H100 SXM", 80, 989),
    "h200": Gpu("NVIDIA H200 SXM", 141, 989),
    "a100": Gpu("NVIDIA A100 80GB SXM", 80, 312),
    "a100-40gb": Gpu("NVIDIA A100 40GB", 40, 312),
    "l40s": Gpu("NVIDIA L40S", 48, 362),
}


@dataclass(frozen=True)
class Shape:
    """What the formulas need of a model."""

    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    embedding: int
    non_embedding: int
    body: int  # parameters of the encoder layers (what every token multiplies through)

    @property
    def total(self) -> int:
        return self.embedding + self.non_embedding

    @property
    def head(self) -> int:
        """LM head weights that multiply: dense H × H and decoder H × V."""
        return self.hidden * self.hidden + self.hidden * self.vocab

    @property
    def largest_layer(self) -> int:
        """The largest single module's own parameters (DeepSpeed's "largest layer")."""
        return max(self.vocab * self.hidden, self.hidden * self.ffn + self.ffn)


def shape_of(preset: ModelShape, vocab: int) -> Shape:
    params = estimate_parameters(preset, vocab)
    return Shape(
        preset.num_layers, preset.hidden_size, preset.num_heads, preset.ffn_size, vocab,
        params["embedding"], params["non_embedding"], layer_parameters(preset),
    )  # fmt: skip


def forward_flops_per_token(s: Shape, seq_len: int, mask_rate: float) -> float:
    return 2 * s.body + 4 * s.layers * seq_len * s.hidden + 2 * mask_rate * s.head


def train_flops_per_token(s: Shape, seq_len: int, mask_rate: float) -> float:
    """Forward and backward (3 × the forward) of one token of a masked-LM step."""
    return 3 * forward_flops_per_token(s, seq_len, mask_rate)


PARTS = ("weights", "gradients", "optimizer")
# Bytes per parameter of (weights, gradients, optimizer), each as (held by every device, split
# N ways). Accelerate's DDP and FSDP keep fp32 weights and gradients whatever the precision
# (autocast casts on the fly); FSDP adds one gathered fp32 layer, counted in "largest" below.
# DeepSpeed's totals for 16-bit training are its estimators' (ZeRO-2 4 + 16 / N, ZeRO-3 18 / N
# + 4 x the largest layer); their split into the three parts follows the ZeRO paper: 16-bit
# weights and gradients, an fp32 master copy and gradient partition, two fp32 Adam moments.
# Trained in fp32, DeepSpeed keeps no 16-bit copies and no master copy.
_PER_PARAM: dict[tuple[str, bool], tuple[tuple[float, float], ...]] = {
    ("ddp", True): ((4, 0), (4, 0), (8, 0)),
    ("fsdp", True): ((0, 4), (0, 4), (0, 8)),
    ("zero2", True): ((2, 4), (2, 4), (0, 8)),
    ("zero3", True): ((0, 6), (0, 4), (0, 8)),
    ("zero2", False): ((4, 0), (0, 4), (0, 8)),
    ("zero3", False): ((0, 4), (0, 4), (0, 8)),
}


def model_state_parts(
    s: Shape, strategy: str, precision: str = "bf16"
) -> dict[str, tuple[float, float]]:
    """Model-state bytes per device by part (:data:`PARTS`), each as (held, split N ways)."""
    sixteen = precision != "fp32"
    key = (strategy, sixteen if strategy.startswith("zero") else True)
    parts = {}
    for part, (held, split) in zip(PARTS, _PER_PARAM[key], strict=True):
        parts[part] = (held * s.total, split * s.total)
    if strategy in ("fsdp", "zero3"):  # the layer being computed, gathered whole
        held, split = parts["weights"]
        parts["weights"] = (held + 4 * s.largest_layer, split)
    return parts


def model_states(s: Shape, strategy: str, precision: str = "bf16") -> tuple[float, float]:
    """Model-state bytes per device as (what every device holds, what is split N ways)."""
    parts = model_state_parts(s, strategy, precision).values()
    return sum(h for h, _ in parts), sum(x for _, x in parts)


def model_state_bytes(s: Shape, strategy: str, devices: int, precision: str = "bf16") -> float:
    held, split = model_states(s, strategy, precision)
    return held + split / devices


def activation_bytes(s: Shape, batch: int, seq_len: int, precision: str, mask_rate: float) -> float:
    per_layer = seq_len * batch * s.hidden * (34 + 5 * s.heads * seq_len / s.hidden)
    width = 2 if precision == "fp32" else 1  # the formula counts 16-bit activations
    logits = 4 * mask_rate * batch * seq_len * s.vocab * 2  # fp32 logits and their gradient
    return width * s.layers * per_layer + logits


@dataclass
class StagePlan:
    stage: str
    kind: str
    embedding: int
    non_embedding: int
    tokens: int
    flops: float
    activations_gib: float = math.nan  # one micro-batch, per device
    memory_gib: dict[str, float] = field(default_factory=dict)  # per device at --gpus
    min_devices: dict[str, int | None] = field(default_factory=dict)
    hours: float = math.nan
    teachers: list[str] = field(default_factory=list)
    # per device at --gpus: weights, gradients, optimizer, activations, teacher (GiB)
    breakdown_gib: dict[str, dict[str, float]] = field(default_factory=dict)
    precision: str = "fp32"


@dataclass
class Plan:
    recipe: str
    gpu: Gpu
    gpus: int
    mfu: float
    stages: list[StagePlan]
    skipped: dict[str, str]
    measured_s: dict[str, float] = field(default_factory=dict)  # --measure: this machine

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Planner:
    """Walks a recipe's stages, resolving each LM stage's shape (preset, ``init`` chain, or a
    local folder's ``config.json``) and vocabulary (its tokenizer stage)."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.shapes: dict[str, Shape | None] = {}

    def vocab(self, tokenizer: str | None) -> int:
        stage = self.recipe.stages.get(tokenizer or "")
        if isinstance(stage, TokenizerStage) and stage.pretrained is None:
            return stage.vocab_size
        firsts = [s for s in self.recipe.stages.values() if isinstance(s, TokenizerStage)]
        trained = [s.vocab_size for s in firsts if s.pretrained is None]
        return trained[0] if trained else DEFAULT_VOCAB

    def shape(self, ref: str) -> Shape | None:
        """The shape of what a reference names: an earlier stage or a local folder."""
        if ref in self.shapes:
            return self.shapes[ref]
        stage = self.recipe.stages.get(ref)
        if isinstance(stage, PretrainStage | DistillStage):
            found = self.stage_shape(stage)
        else:
            found = folder_shape(Path(ref))
        self.shapes[ref] = found
        return found

    def stage_shape(self, stage: PretrainStage | DistillStage) -> Shape | None:
        if stage.model is not None:
            if isinstance(stage, DistillStage) and stage.tokenizer is None:
                teacher = self.shape(stage.teachers[0].model)  # the first teacher's tokenizer
                vocab = teacher.vocab if teacher is not None else self.vocab(None)
            else:
                vocab = self.vocab(stage.tokenizer)
            return shape_of(resolve_shape(stage.model), vocab)
        return self.shape(str(stage.init))

    def plan(self, name: str, gpu: Gpu, gpus: int, mfu: float) -> StagePlan | str:
        """The stage's plan, or why it cannot be planned."""
        stage = self.recipe.stages[name]
        if not isinstance(stage, PretrainStage | DistillStage):
            return "not a masked-LM stage"
        shape = self.stage_shape(stage)
        if shape is None:
            return (
                f"the shape of {stage.init} is unknown (a hub id or a folder without config.json)"
            )
        cfg, rate = stage.training, stage.masking.mlm_probability
        steps = cfg.max_steps or 0
        tokens = steps * cfg.batch_size * cfg.grad_accum * cfg.seq_len * gpus
        per_token = train_flops_per_token(shape, cfg.seq_len, rate)
        teachers = [t.model for t in stage.teachers] if isinstance(stage, DistillStage) else []
        teacher_states = 0.0
        if teachers:
            shapes = [self.shape(t) for t in teachers]
            unknown = [t for t, ts in zip(teachers, shapes, strict=True) if ts is None]
            if unknown:
                return f"the shape of teacher {unknown[0]} is unknown"
            # The largest teacher, held for its forward pass: the upper bound of the schedule
            # (weighting by the switch step would need the step the switch comes at).
            biggest = max((ts for ts in shapes if ts is not None), key=lambda ts: ts.total)
            teacher_states = (2 if cfg.precision != "fp32" else 4) * biggest.total
            per_token += forward_flops_per_token(biggest, cfg.seq_len, rate)
        flops = per_token * tokens
        act = activation_bytes(shape, cfg.batch_size, cfg.seq_len, cfg.precision, rate)
        memory, least, breakdown = {}, {}, {}
        for strategy in STRATEGIES:
            parts = model_state_parts(shape, strategy, cfg.precision)
            split = {k: (held + shard / gpus) / 2**30 for k, (held, shard) in parts.items()}
            breakdown[strategy] = split | {
                "activations": act / 2**30,
                "teacher": teacher_states / 2**30,
            }
            memory[strategy] = sum(breakdown[strategy].values())
            extra = act + teacher_states
            least[strategy] = fewest_devices(shape, strategy, extra, gpu, cfg.precision)
        hours = flops / (gpus * gpu.peak_tflops * 1e12 * mfu) / 3600
        return StagePlan(
            name, stage.kind, shape.embedding, shape.non_embedding, tokens, flops, act / 2**30,
            memory, least, hours, teachers, breakdown, cfg.precision,
        )  # fmt: skip


def fewest_devices(
    shape: Shape, strategy: str, extra: float, gpu: Gpu, precision: str = "bf16"
) -> int | None:
    """The smallest device count whose per-device need fits ``gpu`` (None: none does)."""
    held, split = model_states(shape, strategy, precision)
    room = HEADROOM * gpu.memory_gib * 2**30 - held - extra
    if room <= 0:
        return None  # what every device holds does not fit, however many there are
    return max(1, math.ceil(split / room)) if split else 1


def folder_shape(folder: Path) -> Shape | None:
    """The shape of a local Hugging Face masked-LM folder, from its ``config.json``."""
    try:
        cfg = json.loads((folder / "config.json").read_text("utf-8"))
        preset = ModelShape(
            num_layers=cfg["num_hidden_layers"],
            hidden_size=cfg["hidden_size"],
            num_heads=cfg["num_attention_heads"],
            intermediate_size=cfg.get("intermediate_size"),
            max_position_embeddings=cfg.get("max_position_embeddings", 514),
        )
        return shape_of(preset, int(cfg["vocab_size"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def make_plan(recipe: Recipe, gpu_name: str, gpus: int, mfu: float) -> Plan:
    if gpu_name not in GPUS:
        raise ConfigError(f"--gpu {gpu_name}: not a known GPU (known: {', '.join(GPUS)})")
    if gpus < 1:
        raise ConfigError(f"--gpus {gpus}: give 1 or more")
    if not 0 < mfu <= 1:
        raise ConfigError(f"--mfu {mfu:g}: give a fraction between 0 and 1, e.g. 0.4")
    planner, gpu = Planner(recipe), GPUS[gpu_name]
    stages, skipped = [], {}
    for name in recipe.stages:
        result = planner.plan(name, gpu, gpus, mfu)
        if isinstance(result, str):
            skipped[name] = result
        else:
            stages.append(result)
    return Plan(recipe.name, gpu, gpus, mfu, stages, skipped)


def fmt_big(value: float) -> str:
    for unit, size in (
        ("Z", 1e21),
        ("E", 1e18),
        ("P", 1e15),
        ("T", 1e12),
        ("G", 1e9),
        ("M", 1e6),
        ("K", 1e3),
    ):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def plan_table(plan: Plan) -> str:
    from distilnlu.evaluation.render import Table, text_table

    header = ["Stage", "Kind", "Emb.", "Non-emb.", "Tokens", "FLOPs", "Activ. GiB"]
    header += [f"{s} GiB/dev" for s in STRATEGIES] + [f"{s} min devs" for s in STRATEGIES]
    header.append(f"Hours ({plan.gpus} × {plan.gpu.name.split()[1]})")
    rows = []
    for s in plan.stages:
        row = [s.stage, s.kind, fmt_big(s.embedding), fmt_big(s.non_embedding)]
        row += [fmt_big(s.tokens), fmt_big(s.flops), f"{s.activations_gib:.1f}"]
        row += [f"{s.memory_gib[k]:.1f}" for k in STRATEGIES]
        row += [str(s.min_devices[k]) if s.min_devices[k] else "—" for k in STRATEGIES]
        rows.append([*row, f"{s.hours:.2f}"])
    lines = [
        f"Plan of {plan.recipe} on {plan.gpus} × {plan.gpu.name} ({plan.gpu.memory_gib:g} GiB,"
        f" {plan.gpu.peak_tflops:g} TFLOP/s bf16) at {plan.mfu:.0%} MFU;"
        f" memory per device at {plan.gpus} devices, min devs at {HEADROOM:.0%} of"
        f" {plan.gpu.memory_gib:g} GiB. training.batch_size is per device, so tokens grow with"
        " --gpus:",
        "",
        text_table(Table(header, rows)),
    ]
    lines += [f"{name}: not planned ({why})" for name, why in plan.skipped.items()]
    if any(None in s.min_devices.values() for s in plan.stages):
        lines.append(
            "—: no device count fits. Activations (one micro-batch of training.batch_size, per"
            " device) do not shrink with more devices: lower batch_size and raise grad_accum."
        )
    total = sum(s.hours for s in plan.stages)
    lines.append(f"Total: {total:.2f} hours of the planned stages.")
    lines += ["", breakdown_table(plan)]
    return "\n".join(lines)


def breakdown_table(plan: Plan) -> str:
    """GiB per device at ``--gpus`` by part, for every stage and strategy."""
    from distilnlu.evaluation.render import Table, text_table

    parts = [*PARTS, "activations", "teacher"]
    header = ["Stage", "Precision", "Strategy", *[p.capitalize() for p in parts], "Total"]
    rows = []
    for s in plan.stages:
        for k in STRATEGIES:
            cells = [f"{s.breakdown_gib[k][p]:.2f}" for p in parts]
            rows.append([s.stage, s.precision, k, *cells, f"{s.memory_gib[k]:.2f}"])
    title = (
        f"Memory per device at {plan.gpus} devices, GiB (weights, gradients and optimizer state"
        " by the stage's precision; activations of one micro-batch; a distill stage's largest"
        " teacher, held whole for its forward pass):"
    )
    return "\n".join([title, "", text_table(Table(header, rows))])


def measured_text(plan: Plan) -> str:
    """``--measure``: each stage's predicted time on this machine ("" without it)."""
    if not plan.measured_s:
        return ""
    from distilnlu.evaluation.render import fmt_seconds

    lines = ["", "On this machine (from a short run of every stage, --measure):"]
    width = max(len(n) for n in plan.measured_s)
    lines += [f"  {n.ljust(width)}  {fmt_seconds(s)}" for n, s in plan.measured_s.items()]
    lines.append(f"  {'total'.ljust(width)}  {fmt_seconds(sum(plan.measured_s.values()))}")
    return "\n".join(lines)
