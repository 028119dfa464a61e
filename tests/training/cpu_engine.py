"""``python -m tests.training.cpu_engine run RECIPE``: distilnlu's CLI under FSDP or DeepSpeed on
a multi-CPU (gloo) launch, for the tests of ``test_sharded.py``.

Accelerate (1.15) picks FSDP and DeepSpeed only for GPU-like devices. On the CPU
(``Accelerator(cpu=True)``, as distilnlu asks without a GPU) ``ACCELERATE_USE_FSDP=true`` and
``ACCELERATE_USE_DEEPSPEED=true`` are ignored: the processes train with plain DDP
(``DistributedType.MULTI_CPU``). This launcher changes only that choice:

- FSDP: after Accelerate has set up its state, the state says FSDP (with the plugin Accelerate built
  from the ``FSDP_*`` variables) instead of MULTI_CPU;
- DeepSpeed: Accelerate is told it is not on the CPU (its DeepSpeed set-up needs that) and is given
  the gloo backend; DeepSpeed's CPU accelerator (``DS_ACCELERATOR=cpu``) runs the engine.

Everything else is the real code: ``fully_shard`` / the DeepSpeed engine, gloo collectives, the
engines' sharded ``save_state`` / ``load_state``, the gathered weights. With
``DISTILNLU_TEST_PREPARED=FILE`` every process appends one JSON line per model handed to
``Accelerator.prepare``: what the engine made of it, and how many parameter elements it holds.
"""

from __future__ import annotations

import json
import os
import runpy
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("1", "true", "yes")


def _fsdp_on_cpu() -> None:
    init = AcceleratorState.__init__

    def __init__(self: Any, *args: Any, fsdp_plugin: Any = None, **kwargs: Any) -> None:
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        # After the first stage the partial state already says FSDP (see below).
        cpu_types = (DistributedType.MULTI_CPU, DistributedType.FSDP)
        if fsdp_plugin is not None and self.distributed_type in cpu_types:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            # Every later AcceleratorState() copies the partial state over its own first.
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = __init__  # type: ignore[method-assign]


def _deepspeed_on_cpu() -> None:
    import distilnlu.distributed
    import distilnlu.training.loop

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # DeepSpeed's set-up in Accelerate runs only when not told "cpu"; the backend must be given,
    # as Accelerate finds none for a device it does not know. The first PartialState is the one.
    PartialState(cpu=False, backend="gloo")
    distilnlu.distributed.use_cpu = lambda: False
    distilnlu.training.loop.use_cpu = lambda: False


def _record_prepared(path: str) -> None:
    prepare = Accelerator.prepare

    def record(self: Accelerator, *objects: Any, **kwargs: Any) -> Any:
        given = [type(o).__name__ for o in objects if isinstance(o, torch.nn.Module)]
        prepared = prepare(self, *objects, **kwargs)
        models = [o for o in prepared if isinstance(o, torch.nn.Module)]
        for name, model in zip(given, models, strict=True):
            _write(path, self, name, model)
        return prepared

    Accelerator.prepare = record  # type: ignore[method-assign]


def _write(path: str, acc: Accelerator, name: str, model: torch.nn.Module) -> None:
    params = list(model.parameters())
    local = 0
    for p in params:
        # FSDP 2: DTensor shards; ZeRO-3: ``ds_tensor``, the partition of an emptied parameter.
        if hasattr(p, "to_local"):
            local += p.to_local().numel()
        elif hasattr(p, "ds_tensor"):
            local += p.ds_tensor.numel()
        else:
            local += p.numel()
    # DeepSpeed's optimizer holds this process's partition of the fp32 master weights (ZeRO-2:
    # ``single_partition_of_fp32_groups``, ZeRO-3: ``fp32_partitioned_groups_flat``).
    optimizer = getattr(model, "optimizer", None)
    partitions = getattr(optimizer, "single_partition_of_fp32_groups", None) or getattr(
        optimizer, "fp32_partitioned_groups_flat", None
    )
    row = {
        "rank": acc.process_index,
        "distributed_type": str(acc.distributed_type).split(".")[-1],
        "model": name,
        "wrapper": type(model).__name__,
        "local_numel": local,
        "numel": sum(getattr(p, "ds_numel", p.numel()) for p in params),
        "optimizer_numel": sum(t.numel() for t in partitions) if partitions else None,
    }
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    if _flag("ACCELERATE_USE_FSDP"):
        _fsdp_on_cpu()
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        _deepspeed_on_cpu()
    if os.environ.get("DISTILNLU_TEST_PREPARED"):
        _record_prepared(os.environ["DISTILNLU_TEST_PREPARED"])
    runpy.run_module("distilnlu", run_name="__main__", alter_sys=True)
