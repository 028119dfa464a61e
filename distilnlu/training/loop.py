"""The one training loop: Accelerate, an objective, checkpoints, evaluation, JSONL metrics.

The loop knows nothing about MLM or distillation: an objective turns raw id batches into model
inputs (``prepare``) and a batch into named losses (``__call__``).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from distilnlu.config import TrainingConfig
from distilnlu.distributed import use_cpu
from distilnlu.errors import ConfigError, DistilNLUError
from distilnlu.faults import fault_point
from distilnlu.rundir import METRICS_LOG, atomic_write
from distilnlu.training.checkpoint import (
    NAME,
    OLD,
    CheckpointError,
    candidates,
    commit_checkpoint,
    read_checkpoint,
    reset_staging,
    set_rng_state,
    staging_dir,
)
from distilnlu.training.objectives import Event, Objective
from distilnlu.training.signals import StopRequests, TrainingInterrupted

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import LRScheduler
    from torch.utils.tensorboard import SummaryWriter

logger = logging.getLogger(__name__)
RawBatch = TypeVar("RawBatch")
ENGINE_DIR = "engine"  # a sharded engine's own checkpoint files, inside our checkpoint folder
PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


StepHook = Callable[["LoopState", nn.Module, dict[str, Any] | None], None]
"""``on_step(state, unwrapped model, this step's evaluation or None)``."""


class NonFiniteLossError(DistilNLUError):
    """Training kept producing NaN/inf losses."""


class CheckpointWriteError(DistilNLUError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


@dataclass
class LoopState:
    """What the loop must remember to resume exactly."""

    step: int = 0
    batches_consumed: int = 0
    nonfinite_total: int = 0
    nonfinite_streak: int = 0
    tokens: int = 0
    last_eval: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    """Training is over (all steps, or an early stop): a resume goes straight to saving."""
    full_state_dict: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    """Sharded engines only: the trained weights gathered at the end (never checkpointed)."""

    def checkpoint_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "full_state_dict"}


def make_accelerator(precision: str) -> Accelerator:
    # Several stages run in one process with possibly different precision; Accelerate keeps a
    # process-wide singleton, so reset it (but keep the distributed set-up) for each stage.
    # Gradient accumulation is done by the loop (it divides each micro-batch loss itself), so
    # Accelerate is not told about it: its backward() would divide the loss a second time.
    AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision=PRECISION[precision], cpu=use_cpu())
    if acc.distributed_type == DistributedType.DEEPSPEED:
        # Accelerate registers its DeepSpeed config with transformers, which then builds every
        # model under ZeRO-3's zero.Init, partitioned. distilnlu builds its models whole and
        # hands the engine only the trained one, which the engine partitions itself; a
        # distillation teacher (loaded during training, never handed to the engine) must stay
        # whole, and the next stage's model must be built as without DeepSpeed.
        from transformers.integrations import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
    return acc


def build_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and normalisation weights (1-d parameters)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps)


def batch_seed(seed: int, index: int) -> int:
    """Seed of the masks of global batch ``index`` (stable across resumes and world sizes)."""
    return (seed * 1_000_003 + index) % (2**63)


class MetricsLog:
    """Append-only JSONL of training and evaluation rows; truncated to the resume step."""

    def __init__(self, path: Path, enabled: bool, resume_step: int) -> None:
        self.path, self.enabled = path, enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._truncate(resume_step)
        self.tb = _tensorboard(path.parent) if enabled else None

    def _truncate(self, step: int) -> None:
        # Rows after the checkpoint belong to a run that was killed; they are logged again.
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if isinstance(row, dict) and row.get("step", 0) <= step:
                keep.append(line)
        # Atomic: a kill during the rewrite keeps the old rows rather than losing some.
        atomic_write(self.path, "".join(k + "\n" for k in keep))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for key, value in _flatten(row).items():
                if isinstance(value, int | float) and key != "step":
                    self.tb.add_scalar(key, value, row["step"])


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _tensorboard(log_dir: Path) -> SummaryWriter | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional dependency
        return None
    return SummaryWriter(log_dir=str(log_dir / "tensorboard"))


def train_loop(
    *,
    model: nn.Module,
    objective: Objective[RawBatch],
    make_batches: Callable[[int], Iterator[RawBatch]],
    cfg: TrainingConfig,
    out_dir: Path,
    seed: int,
    evaluate: Callable[[nn.Module], dict[str, Any]] | None = None,
    desc: str = "train",
    state_extra: dict[str, Any] | None = None,
    on_step: StepHook | None = None,
) -> LoopState:
    """Train ``model`` for ``cfg.steps()`` optimizer steps, resuming from ``out_dir`` if possible.

    Args:
        make_batches: called with the number of global batches already consumed; returns the
            rest of the endless batch stream (``objective.prepare`` turns each into inputs).
        evaluate: held-out evaluation on the unwrapped model; its dict is logged under "eval".
            It is called with the module as given (e.g. a :class:`TrainedModule`).
        state_extra: JSON-able values stored in (and checked against) the checkpoint, e.g. the
            stage's config hash.
        on_step: called after every optimizer step and its evaluation (if any), before the
            step's checkpoint, so whatever it writes exists whenever a checkpoint past it does
            (a stage keeps its snapshots there). Unsharded runs only.
    """
    acc = make_accelerator(cfg.precision)
    if acc.distributed_type == DistributedType.DEEPSPEED and cfg.grad_accum > 1:
        # DeepSpeed's engine steps and scales the loss on its own accumulation schedule.
        raise ConfigError(
            "training.grad_accum > 1 is not supported under DeepSpeed; set grad_accum=1 and"
            " reach the global batch with batch_size x processes"
        )
    if acc.distributed_type == DistributedType.DEEPSPEED:
        # No dataloader goes through prepare (the loop feeds its own batches), and DeepSpeed's
        # engine needs the micro-batch size that Accelerate would read from one.
        plugin = acc.state.deepspeed_plugin
        if plugin.is_auto("train_micro_batch_size_per_gpu"):
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
    if cfg.compile:
        compile_in_place(acc, model)
    optimizer = build_optimizer(model, cfg)
    total = cfg.steps()
    scheduler = get_scheduler(
        cfg.scheduler,
        optimizer,
        num_warmup_steps=cfg.warmup_steps,
        num_training_steps=total,
    )
    sharded = is_sharded(acc)
    if sharded and on_step is not None:  # the hook reads whole weights, which no process holds
        raise ConfigError(
            "keep_snapshots is not supported under FSDP / DeepSpeed (sharded weights): run the"
            " stage with DDP or in one process, or set keep_snapshots: 0"
        )
    # A sharded engine's state can only be loaded into the prepared (sharded) model.
    state = (
        LoopState()
        if sharded
        else _resume(out_dir, model, optimizer, scheduler, state_extra or {}, objective)
    )
    model, optimizer = acc.prepare(model, optimizer)
    if sharded:
        state = _resume_sharded(acc, out_dir, scheduler, state_extra or {}, objective)
    log = MetricsLog(out_dir / METRICS_LOG, acc.is_main_process, state.step)
    if state.step and acc.is_local_main_process:
        tqdm.write(f"[{desc}] resuming from the checkpoint at step {state.step} of {total}")
    stream = make_batches(state.batches_consumed)
    bar = tqdm(total=total, initial=state.step, desc=desc, disable=not acc.is_local_main_process)
    start = time.perf_counter()

    def save() -> None:
        extra = {**(state_extra or {}), "objective": objective.state_dict()}
        _save(acc, out_dir, model, optimizer, scheduler, state, extra)

    # Closing the bar on any exit ends its line, so an error message starts on a line of its own.
    with StopRequests() as stops, bar:
        while not state.finished and state.step < total:
            losses, finite, signum = _optimizer_step(
                acc, model, objective, optimizer, stream, state, cfg, seed, stops.signum
            )
            if not finite:
                _on_nonfinite(state, cfg, optimizer, log)
                continue
            scheduler.step()
            state.step += 1
            state.nonfinite_streak = 0
            row = {"step": state.step, **losses, "lr": scheduler.get_last_lr()[0]}
            elapsed = round(time.perf_counter() - start, 3)
            log.write({**row, "tokens": state.tokens, "time": elapsed})
            if state.step % cfg.log_every == 0 or state.step == total:
                bar.set_postfix(loss=f"{losses['loss']:.4f}")
            bar.update(1)
            _log_event(log, state.step, objective.after_step(state.step))
            evaluated, stop = None, False
            if evaluate and (state.step % cfg.eval_every == 0 or state.step == total):
                state.last_eval = evaluated = evaluate(acc.unwrap_model(model))
                log.write({"step": state.step, "eval": state.last_eval})
                event = objective.after_eval(state.step, state.last_eval)
                _log_event(log, state.step, event)
                stop = event is not None and event.stop  # e.g. early stopping on a dev metric
            if on_step is not None:
                on_step(state, acc.unwrap_model(model), evaluated)
            if stop:
                break
            if state.step % cfg.checkpoint_every == 0 and state.step < total:
                save()
            if signum is not None and state.step < total:
                if state.step % cfg.checkpoint_every:
                    save()
                raise TrainingInterrupted(signum, desc, state.step)
    if not state.finished:
        # A last checkpoint marks training over, so a kill while the stage saves its results
        # resumes at the saving, not at the last periodic checkpoint.
        state.finished = True
        save()
    acc.wait_for_everyone()
    if sharded:  # every process takes part in gathering the weights for save_pretrained
        state.full_state_dict = acc.get_state_dict(model)
    return state


def compile_in_place(acc: Accelerator, model: nn.Module) -> None:
    """``training.compile``: ``model.compile()``, which compiles the module's call in place, so
    its ``state_dict`` keys, checkpoints and saved folders stay those of the plain module."""
    if acc.num_processes > 1:  # compiled graphs under DDP / FSDP / DeepSpeed are not tested here
        raise ConfigError(
            "training.compile runs in one process only; set training.compile: false for a"
            f" {acc.num_processes}-process run"
        )
    if acc.device.type == "cpu" and not any(map(shutil.which, ("g++", "c++", "clang++"))):
        # Inductor builds its CPU kernels with a C++ compiler; without one the first step fails.
        raise ConfigError(
            "training.compile on a CPU needs a C++ compiler (g++ or clang++) on PATH; install"
            " one or set training.compile: false"
        )
    model.compile()


def is_sharded(acc: Accelerator) -> bool:
    """FSDP and DeepSpeed spread parameters / optimizer state over processes: their state is
    saved and loaded by Accelerate on every process, not by the main process alone."""
    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def trained_weights(
    state: LoopState, model: nn.Module | None = None
) -> dict[str, torch.Tensor] | None:
    """The gathered weights of a :class:`TrainedModule`'s ``inner`` model, for
    ``save_pretrained(state_dict=...)``; None when unsharded (the model itself holds them).

    ``model``: that inner model. Gathering copies every name's tensor separately, so parameters
    it ties (the LM decoder and the input embeddings) get one tensor again: ``save_pretrained``
    then drops the alias, as it does for the model's own weights, instead of saving it twice.
    """
    if state.full_state_dict is None:
        return None
    prefix = "inner."
    full = state.full_state_dict
    weights = {k[len(prefix) :]: v for k, v in full.items() if k.startswith(prefix)}
    if model is not None:
        first: dict[int, str] = {}
        for name, param in model.state_dict(keep_vars=True).items():
            owner = first.setdefault(id(param), name)
            if owner != name and owner in weights and name in weights:
                weights[name] = weights[owner]
    return weights


def _optimizer_step(
    acc: Accelerator,
    model: nn.Module,
    objective: Objective[RawBatch],
    optimizer: torch.optim.Optimizer,
    stream: Iterator[RawBatch],
    state: LoopState,
    cfg: TrainingConfig,
    seed: int,
    stop: int | None = None,
) -> tuple[dict[str, float], bool, int | None]:
    """Accumulate ``grad_accum`` micro-batches; returns (mean named losses, all finite?, the
    signal asking to stop, on any process). ``stop``: this process's stop request."""
    model.train()
    sums: dict[str, torch.Tensor] = {}
    world, rank = acc.num_processes, acc.process_index
    for micro in range(cfg.grad_accum):
        # Every process walks the same global stream and keeps its own share, so the data
        # position is one number whatever the world size.
        ids = None
        for offset in range(world):
            raw = next(stream)
            if offset == rank:
                ids = raw
                index = state.batches_consumed + offset
        state.batches_consumed += world
        assert ids is not None  # rank < world: the inner loop always took this process's share
        prepared = objective.prepare(ids, batch_seed(seed, index))
        state.tokens += int(prepared["attention_mask"].sum()) * world  # CPU tensor: no sync
        batch = {k: v.to(acc.device) for k, v in prepared.items()}
        # Gradients are all-reduced across processes once per optimizer step, on the last
        # micro-batch; the earlier ones only accumulate locally.
        last = micro == cfg.grad_accum - 1
        with nullcontext() if last else acc.no_sync(model):
            with acc.autocast():  # the forward only: backward runs outside autocast
                losses = objective(model, batch)
            acc.backward(losses["loss"] / cfg.grad_accum)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value.detach().float() / cfg.grad_accum
    # One device-to-host transfer per optimizer step, not one per loss and micro-batch. Under a
    # multi-process launch the logged losses are the mean over processes: the loss of the global
    # batch, as one process with the same global batch would log it.
    stacked = torch.stack(list(sums.values()))
    if world > 1:
        stacked = acc.reduce(stacked, reduction="mean")
    totals = dict(zip(sums, stacked.tolist(), strict=True))
    finite, stop = _all_processes_agree(acc, math.isfinite(totals["loss"]), stop)
    fault_point("mid_step")
    if finite:
        if cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return totals, finite, stop


def _log_event(log: MetricsLog, step: int, event: Event | None) -> None:
    if event is not None and event.log:
        log.write({"step": step, **event.log})


def _all_processes_agree(
    acc: Accelerator, finite: bool, stop: int | None
) -> tuple[bool, int | None]:
    """(every process's loss finite?, a stop signal of any process): one collective per step,
    so that all processes skip the same steps and stop at the same step."""
    if acc.num_processes == 1:
        return finite, stop
    flags = torch.tensor([0.0 if finite else 1.0, float(stop or 0)], device=acc.device)
    nonfinite, signum = acc.reduce(flags, reduction="max").tolist()
    return nonfinite == 0.0, int(signum) or None


def _on_nonfinite(
    state: LoopState, cfg: TrainingConfig, optimizer: torch.optim.Optimizer, log: MetricsLog
) -> None:
    state.nonfinite_total += 1
    state.nonfinite_streak += 1
    log.write({"step": state.step, "nonfinite_skipped": state.nonfinite_total})
    if state.nonfinite_streak > cfg.max_nonfinite:
        raise NonFiniteLossError(
            f"the loss was NaN/inf on {state.nonfinite_streak} consecutive steps (at step"
            f" {state.step}); lower training.lr, use precision=bf16 instead of fp16, or check the"
            " data"
        )


def _save(
    acc: Accelerator,
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    state: LoopState,
    extra: dict[str, Any],
) -> None:
    """Write a checkpoint (every process takes part); an OSError (a full disk, a read-only
    folder) becomes a user error, and the previous checkpoint stays intact."""
    try:
        acc.wait_for_everyone()
        if acc.is_main_process:
            reset_staging(out_dir)
        acc.wait_for_everyone()
        if is_sharded(acc):
            # Every process writes its shard of the model and optimizer into the staging folder.
            acc.save_state(str(staging_dir(out_dir) / ENGINE_DIR), safe_serialization=True)
            tensors = {"scheduler": scheduler.state_dict()}
        elif acc.is_main_process:
            tensors = {
                "model": acc.unwrap_model(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            }
        acc.wait_for_everyone()
        if acc.is_main_process:
            commit_checkpoint(out_dir, tensors, {**state.checkpoint_fields(), **extra})
        acc.wait_for_everyone()
    except OSError as err:
        where = err.filename or staging_dir(out_dir)
        raise CheckpointWriteError(
            f"could not write a checkpoint to {where}: {err.strerror or err}; free space or fix"
            " the folder's permissions, then run again to resume from the last checkpoint"
        ) from None


def _newest_readable(out_dir: Path) -> tuple[Path, dict[str, Any], dict[str, Any]] | None:
    """(path, tensors, state) of the newest checkpoint that reads back; a damaged one is reported
    and the one before it tried. None when there is no checkpoint at all.

    Raises:
        CheckpointError: checkpoints exist but none can be read.
    """
    damaged: list[CheckpointError] = []
    for path in candidates(out_dir):
        try:
            return (path, *read_checkpoint(path))
        except CheckpointError as err:
            logger.warning("warning: %s; trying the checkpoint before it", err)
            damaged.append(err)
    if damaged:
        raise CheckpointError(
            f"no readable checkpoint in {out_dir} ({damaged[0]}): remove {out_dir / NAME} and"
            f" {out_dir / OLD} to train the stage from step 0"
        )
    return None


def _resume_sharded(
    acc: Accelerator,
    out_dir: Path,
    scheduler: LRScheduler,
    extra: dict[str, Any],
    objective: Objective[RawBatch],
) -> LoopState:
    """Resume a sharded engine's run (after ``prepare``): Accelerate loads every process's part."""
    found = _newest_readable(out_dir)
    if found is None:
        return LoopState()
    path, tensors, saved = found
    if not (path / ENGINE_DIR).is_dir() or any(saved.get(k) != v for k, v in extra.items()):
        return LoopState()  # an unsharded run's checkpoint, or another configuration's
    acc.load_state(str(path / ENGINE_DIR), load_kwargs={"weights_only": True})
    scheduler.load_state_dict(tensors["scheduler"])
    set_rng_state(tensors["rng"])
    return _restore(saved, objective)


def _resume(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    extra: dict[str, Any],
    objective: Objective[RawBatch],
) -> LoopState:
    found = _newest_readable(out_dir)
    if found is None:
        return LoopState()
    _, tensors, saved = found
    if any(saved.get(k) != v for k, v in extra.items()):
        return LoopState()  # a checkpoint of a different configuration: start over
    if set(tensors.get("model", {})) != set(model.state_dict()):
        return LoopState()  # another model layout, or a sharded engine's: start over
    model.load_state_dict(tensors["model"])
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    set_rng_state(tensors["rng"])
    return _restore(saved, objective)


def _restore(saved: dict[str, Any], objective: Objective[RawBatch]) -> LoopState:
    if saved.get("objective") is not None:
        objective.load_state_dict(saved["objective"])
    fields = set(LoopState.__dataclass_fields__) - {"full_state_dict"}
    return LoopState(**{k: v for k, v in saved.items() if k in fields})
