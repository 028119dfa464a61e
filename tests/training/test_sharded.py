"""Sharded engines in two CPU processes (torchrun, gloo), with the settings of
``configs/accelerate/{fsdp,zero2,zero3}.yaml``: FSDP 2 full shard, DeepSpeed ZeRO-2 and ZeRO-3.

Each trains exactly like one process with the same global batch (pretraining, and distillation
with the teacher replicated), really shards what it says it shards, and resumes after SIGKILL of
every process from its sharded checkpoint.

Accelerate does not pick these engines on the CPU by itself; ``tests/training/cpu_engine.py`` (the
launched module) changes only that choice, see there. DeepSpeed is an optional extra
(``pip install -e '.[deepspeed]'``): without it its tests skip.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import REPO
from tests.training.test_multiprocess import (
    RESUME_STEPS,
    check_follows,
    curve,
    finish,
    kill_after_step,
    max_weight_difference,
    resume_setup,
    start,
    write_recipe,
)

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend",
)

ENGINE_LAUNCHER = "tests.training.cpu_engine"
ENGINES = ("fsdp", "zero2", "zero3")
STAGES = ("teacher_stage1", "student")
# `accelerate launch` turns a config file's keys into these variables (accelerate/utils/launch.py).
FSDP_NAMES = {"fsdp_transformer_layer_cls_to_wrap": "FSDP_TRANSFORMER_CLS_TO_WRAP"}
DEEPSPEED_NAMES = {
    "zero_stage": "ACCELERATE_DEEPSPEED_ZERO_STAGE",
    "gradient_accumulation_steps": "ACCELERATE_GRADIENT_ACCUMULATION_STEPS",
    "gradient_clipping": "ACCELERATE_GRADIENT_CLIPPING",
    "offload_optimizer_device": "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE",
    "offload_param_device": "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE",
    "zero3_init_flag": "ACCELERATE_DEEPSPEED_ZERO3_INIT",
    "zero3_save_16bit_model": "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL",
}


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def engine_env(engine: str) -> dict[str, str]:
    """The variables ``accelerate launch --config_file configs/accelerate/<engine>.yaml`` sets
    for the engine (not the precision: each stage's ``training.precision`` sets that)."""
    config = yaml.safe_load((REPO / f"configs/accelerate/{engine}.yaml").read_text())
    if engine == "fsdp":
        assert config["distributed_type"] == "FSDP"
        items = config["fsdp_config"].items()
        env = {"ACCELERATE_USE_FSDP": "true"}
        env.update({FSDP_NAMES.get(k, k.upper()): _text(v) for k, v in items})
        return env
    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed (pip install -e '.[deepspeed]')")
    assert config["distributed_type"] == "DEEPSPEED"
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "DS_ACCELERATOR": "cpu"}
    env.update({DEEPSPEED_NAMES[k]: _text(v) for k, v in config["deepspeed_config"].items()})
    return env


def launch(path: Path, engine: str, record: Path, stdout: Path | None = None):
    """Two processes of the CLI under ``engine``; ``record`` gets what each process handed to the
    engine (see ``cpu_engine.py``)."""
    env = {**engine_env(engine), "DISTILNLU_TEST_PREPARED": str(record)}
    return start(path, 2, ENGINE_LAUNCHER, env, stdout)


def prepared(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    finish(start(write_recipe(tmp, "one", grad_accum=2), processes=1))
    return tmp / "runs/one"


@pytest.fixture(scope="module", params=ENGINES)
def sharded_run(request, tmp_path_factory):
    """(engine, run folder, what was prepared) of the 2-process run of tokenizer, pretraining
    and distillation."""
    engine = request.param
    tmp = tmp_path_factory.mktemp(engine)
    record = tmp / "prepared.jsonl"
    finish(launch(write_recipe(tmp, engine, grad_accum=1), engine, record))
    return engine, tmp / f"runs/{engine}", prepared(record)


def check_sharded(engine: str, rows: list[dict], model: str) -> None:
    """Both processes handed ``model`` to the engine, which split it between them: the
    parameters under FSDP and ZeRO-3, the optimizer state under ZeRO-2."""
    rows = [r for r in rows if r["model"] == model]
    assert sorted(r["rank"] for r in rows) == [0, 1]
    assert {r["distributed_type"] for r in rows} == {"FSDP" if engine == "fsdp" else "DEEPSPEED"}
    numel = rows[0]["numel"]
    part = "optimizer_numel" if engine == "zero2" else "local_numel"
    assert all(r[part] < numel for r in rows), rows
    assert sum(r[part] for r in rows) >= numel, rows  # DeepSpeed pads its partitions
    if engine == "zero2":
        assert all(r["local_numel"] == numel for r in rows), "ZeRO-2 replicates the parameters"


def test_pretraining_follows_the_one_process_loss_curve(one_process, sharded_run):
    engine, two, rows = sharded_run
    check_sharded(engine, rows, "MaskedLMModel")
    check_follows(one_process, two, "teacher_stage1")


def test_distillation_with_a_replicated_teacher_follows_one_process(one_process, sharded_run):
    engine, two, rows = sharded_run
    # The student (with its matching projections) is sharded; the teacher is never handed to the
    # engine: each process runs its own whole copy for inference (a ZeRO-3 one would fail).
    check_sharded(engine, rows, "DistillStudent")
    assert sorted(r["model"] for r in rows) == sorted(["MaskedLMModel", "DistillStudent"] * 2)
    check_follows(one_process, two, "student")
    manifest = json.loads((two / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"tokenizer", *STAGES}


def engine_files(engine: str, checkpoint: Path) -> dict[str, list[str]]:
    """The engine's files of each process's part in a checkpoint, by what they hold."""
    engine_dir = checkpoint / "engine"
    if engine == "fsdp":
        parts = ("pytorch_model_fsdp_0", "optimizer_0")
        return {p: sorted(f.name for f in (engine_dir / p).glob("*.distcp")) for p in parts}
    return {"optimizer": sorted(f.name for f in engine_dir.glob("pytorch_model/*optim_states.pt"))}


EXPECTED_FILES = {
    "fsdp": {
        "pytorch_model_fsdp_0": ["__0_0.distcp", "__1_0.distcp"],
        "optimizer_0": ["__0_0.distcp", "__1_0.distcp"],
    },
    **{
        zero: {
            "optimizer": [
                "zero_pp_rank_0_mp_rank_00_optim_states.pt",
                "zero_pp_rank_1_mp_rank_00_optim_states.pt",
            ]
        }
        for zero in ("zero2", "zero3")
    },
}


@pytest.mark.slow  # two runs of two processes, one of one: ~35 s on 2 cores
@pytest.mark.parametrize("engine", ENGINES)
def test_a_sharded_run_resumes_after_sigkill_from_its_sharded_checkpoint(engine, tmp_path):
    steps = RESUME_STEPS
    reference, path, stage_dir = resume_setup(tmp_path)
    record = tmp_path / "prepared.jsonl"
    kill_after_step(launch(path, engine, record), stage_dir, 12)
    checkpoint = stage_dir / "checkpoint"
    step = json.loads((checkpoint / "trainer_state.json").read_text())["step"]
    assert 10 <= step < steps
    # each process wrote its own part of the engine's state
    assert engine_files(engine, checkpoint) == EXPECTED_FILES[engine]

    out = tmp_path / "resumed.out"
    finish(launch(path, engine, record, stdout=out))
    assert f"resuming from the checkpoint at step {step} " in out.read_text()
    check_sharded(engine, prepared(record)[2:], "MaskedLMModel")  # the resumed run's
    got = curve(stage_dir)
    assert sorted(got) == list(range(1, steps + 1))
    want = curve(reference)
    worst = max(abs(want[s] - got[s]) for s in want)
    assert worst <= 1e-4, f"the resumed {engine} run is off by {worst}"
    worst = max_weight_difference(reference, stage_dir)
    assert worst <= 1e-4, f"the resumed {engine} run's weights are off by {worst}"
