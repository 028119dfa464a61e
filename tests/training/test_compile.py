"""``training.compile``: the same training as without it, and the saved weights unchanged."""

import pytest
import torch

from distilnlu.errors import ConfigError
from distilnlu.training.checkpoint import read_checkpoint
from distilnlu.training.loop import compile_in_place, train_loop

from .test_loop import ToyObjective, config, losses, make_batches, tiny_model


def train(out_dir, cfg):
    model = tiny_model()
    # Compiled dropout draws its masks another way (Inductor's own random kernels), so only a
    # model without dropout can follow the plain curve step for step.
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    train_loop(
        model=model,
        objective=ToyObjective(),
        make_batches=make_batches,
        cfg=cfg,
        out_dir=out_dir,
        seed=0,
    )
    return model


def test_compiled_loop_follows_the_plain_curve_and_checkpoints_plain_keys(tmp_path):
    plain, compiled = tmp_path / "plain", tmp_path / "compiled"
    assert train(plain, config(max_steps=6, checkpoint_every=3))._compiled_call_impl is None
    torch._dynamo.reset()
    model = train(compiled, config(max_steps=6, checkpoint_every=3, compile=True))
    assert model._compiled_call_impl is not None  # the loop really compiled it
    want, got = losses(plain), losses(compiled)
    assert sorted(got) == list(range(1, 7))
    assert got[6] < got[1] - 0.2  # it trains
    # Fused kernels sum in another order: equal to float rounding, not bit for bit.
    assert got == {step: pytest.approx(value, rel=1e-5) for step, value in want.items()}
    tensors, _ = read_checkpoint(compiled / "checkpoint")
    weights = tensors["model"]
    assert set(weights) == set(tiny_model().state_dict())  # no "_orig_mod." prefixes


def test_compile_refuses_several_processes():
    class TwoProcesses:
        num_processes = 2

    with pytest.raises(ConfigError, match=r"training\.compile runs in one process only"):
        compile_in_place(TwoProcesses(), tiny_model())  # type: ignore[arg-type]


def test_compile_on_a_cpu_without_a_cxx_compiler_is_a_config_error(monkeypatch):
    class OneCPUProcess:
        num_processes = 1
        device = torch.device("cpu")

    monkeypatch.setattr("shutil.which", lambda name: None)
    model = tiny_model()
    with pytest.raises(ConfigError, match=r"needs a C\+\+ compiler"):
        compile_in_place(OneCPUProcess(), model)  # type: ignore[arg-type]
    assert getattr(model, "_compiled_call_impl", None) is None
