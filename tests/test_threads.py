"""One thread setting: ``distilnlu --threads N`` and ``training.threads`` reach torch, ONNX
Runtime, tokenizers and child processes; the flag wins; the stage hash ignores the count."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import distilnlu.deploy.pick as pick_module
import distilnlu.pipeline as pipeline
from distilnlu import threads
from distilnlu.cli import app
from distilnlu.config import load_recipe
from distilnlu.evaluation.inference import latency_ms

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"


@pytest.fixture(autouse=True)
def fresh_threads(monkeypatch: pytest.MonkeyPatch):
    """No flag, no stage setting, the environment and torch's count as they were afterwards;
    torch's inter-op pool (settable once per process) is never touched."""
    before = torch.get_num_threads()
    for key in threads.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)  # restored by monkeypatch afterwards
    monkeypatch.setattr(threads, "_flag", None)
    monkeypatch.setattr(threads, "_active", None)
    monkeypatch.setattr(threads, "_interop_tried", False)
    interop: list[int] = []
    monkeypatch.setattr(torch, "set_num_interop_threads", interop.append)
    yield interop
    torch.set_num_threads(before)


class Seen(Exception):
    """Raised by a stand-in for a command's work, carrying what it saw."""

    def __init__(self, seen: dict[str, Any]) -> None:
        super().__init__(seen)
        self.seen = seen


def observe(*_: Any, **kwargs: Any) -> None:
    raise Seen(
        {
            "torch": torch.get_num_threads(),
            "env": {k: os.environ.get(k) for k in threads.ENV_KEYS},
            "threads": kwargs.get("threads"),
        }
    )


def invoke(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, Seen), (result.exception, result.output)
    return result.exception.seen


def test_the_flag_sets_torch_and_the_environment_inside_a_command(monkeypatch, fresh_threads):
    monkeypatch.setattr(pipeline, "run_recipe", observe)
    seen = invoke("--threads", "3", "run", str(DEMO))
    assert seen["torch"] == 3
    assert fresh_threads == [3]  # inter-op pool, at start-up
    assert seen["env"]["OMP_NUM_THREADS"] == seen["env"]["MKL_NUM_THREADS"] == "3"
    assert seen["env"]["RAYON_NUM_THREADS"] == "3"  # tokenizers' pool, sized when it starts
    assert seen["env"]["TOKENIZERS_PARALLELISM"] is None  # left as the user set it


def test_one_thread_turns_the_tokenizers_pool_off(monkeypatch):
    monkeypatch.setattr(pipeline, "run_recipe", observe)
    seen = invoke("--threads", "1", "run", str(DEMO))
    assert seen["torch"] == 1
    assert seen["env"]["TOKENIZERS_PARALLELISM"] == "false"
    assert seen["env"]["RAYON_NUM_THREADS"] == "1"


def test_without_the_flag_nothing_is_set(monkeypatch, fresh_threads):
    before = torch.get_num_threads()
    monkeypatch.setattr(pipeline, "run_recipe", observe)
    seen = invoke("run", str(DEMO))
    assert seen["torch"] == before
    assert set(seen["env"].values()) == {None}
    assert fresh_threads == []


def test_every_command_takes_the_flag():
    import typer.main

    names = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"run", "pretrain", "finetune", "evaluate", "export", "predict", "serve"} <= set(names)
    for count, name in enumerate(names, start=2):
        result = CliRunner().invoke(app, ["--threads", str(count), name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert torch.get_num_threads() == count, name


def test_pick_student_measures_on_the_flag_unless_told_otherwise(monkeypatch):
    monkeypatch.setattr(pick_module, "pick_student", observe)
    assert invoke("pick-student")["threads"] == 1  # its own default: what one request gets
    assert invoke("--threads", "3", "pick-student")["threads"] == 3
    assert invoke("--threads", "3", "pick-student", "--threads", "2")["threads"] == 2


class FakeSession:
    def __init__(self, path: str, options: Any, providers: list[str]) -> None:
        self.options = options

    def get_outputs(self) -> list[Any]:
        return []


@pytest.mark.parametrize(("active", "given", "intra"), [(3, None, 3), (3, 2, 2), (None, None, 0)])
def test_onnx_sessions_get_the_thread_count(monkeypatch, active, given, intra):
    import onnxruntime

    from distilnlu.deploy.backends import OnnxBackend

    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeSession)
    monkeypatch.setattr(threads, "_active", active)
    options = OnnxBackend("model.onnx", threads=given).session.options  # type: ignore[attr-defined]
    assert options.intra_op_num_threads == intra  # 0: ONNX Runtime's own choice
    assert options.inter_op_num_threads == (1 if intra else 0)


def test_a_stage_runs_on_its_training_threads_and_the_flag_wins(monkeypatch, tiny_recipe_file):
    path = tiny_recipe_file(
        mutate=lambda r: r["stages"]["teacher_stage1"]["training"].update(threads=3)
    )
    recipe = load_recipe(path)
    stage = recipe.stages["teacher_stage1"]
    seen: list[tuple[int, int | None, str | None]] = []

    def runner(*_: Any) -> dict[str, Any]:
        seen.append((torch.get_num_threads(), threads.current(), os.environ.get("OMP_NUM_THREADS")))
        return {}

    monkeypatch.setitem(pipeline.RUNNERS, type(stage), runner)
    torch.set_num_threads(1)
    pipeline.run_stage(recipe, "teacher_stage1", "hash")
    assert seen[-1] == (3, 3, "3")
    assert (torch.get_num_threads(), threads.current()) == (1, None)  # restored after the stage
    assert os.environ.get("OMP_NUM_THREADS") is None

    threads.use_flag(2)  # --threads 2 wins over the stage's training.threads
    pipeline.run_stage(recipe, "teacher_stage1", "hash")
    assert seen[-1] == (2, 2, "2")


def test_the_stage_hash_ignores_the_thread_count():
    plain = load_recipe(DEMO)
    stages = [n for n, s in plain.stages.items() if getattr(s, "training", None) is not None]
    assert len(stages) > 5
    threaded = load_recipe(DEMO, [f"stages.{n}.training.threads=4" for n in stages])
    assert threaded.stages[stages[0]].training.threads == 4  # type: ignore[union-attr]
    for name in plain.stages:
        assert threaded.stage_hash(name) == plain.stage_hash(name), name


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.threads: list[int] = []

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        self.threads.append(torch.get_num_threads())


def test_latency_is_still_timed_on_one_thread():
    def tokenizer(*_: Any, **__: Any) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.ones(1, 4)}

    threads.use_flag(2)
    model = Recorder()
    latency_ms(model, tokenizer, ["play jazz"] * 3, max_length=16, warmup=1)  # type: ignore[arg-type]
    assert set(model.threads) == {1}
    assert torch.get_num_threads() == 2  # the setting is back after the timing


@pytest.mark.parametrize("text", ["0", "-1", "abc", "2.5", ""])
def test_a_bad_count_is_refused_with_the_fix(text):
    from distilnlu.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--threads .*give a whole number of CPU threads"):
        threads.parse_threads(text)
