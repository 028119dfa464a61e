import json
from itertools import islice

import pytest
import torch
from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormForMaskedLM

from distilnlu.config import TrainingConfig
from distilnlu.rundir import METRICS_LOG as METRICS_FILE
from distilnlu.training.checkpoint import read_checkpoint
from distilnlu.training.loop import NonFiniteLossError, train_loop
from distilnlu.training.objectives import Objective

VOCAB = 50


class Interrupted(Exception):
    pass


class ToyObjective(Objective[torch.Tensor]):
    """Plain full-logits MLM; can inject NaN losses or a crash at given calls."""

    def __init__(self, nan_calls=(), crash_at=None):
        self.calls = 0
        self.nan_calls = set(nan_calls)
        self.crash_at = crash_at

    def prepare(self, ids, batch_seed):
        gen = torch.Generator().manual_seed(batch_seed)
        selected = torch.rand(ids.shape, generator=gen) < 0.3
        labels = torch.where(selected, ids, torch.full_like(ids, -100))
        masked = torch.where(selected, torch.full_like(ids, 4), ids)
        return {"input_ids": masked, "attention_mask": torch.ones_like(ids), "labels": labels}

    def __call__(self, model, batch):
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise Interrupted
        loss = model(**batch).loss
        if self.calls in self.nan_calls:
            loss = loss * float("nan")
        return {"loss": loss, "mlm": loss.detach()}


def tiny_model():
    torch.manual_seed(0)
    config = RobertaPreLayerNormConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
    )
    return RobertaPreLayerNormForMaskedLM(config)


def make_batches(skip):
    # A small repeating corpus: a model can learn it, and the stream is deterministic.
    gen = torch.Generator().manual_seed(0)
    corpus = torch.randint(5, 15, (6, 4, 16), generator=gen)

    def stream():
        i = 0
        while True:
            yield corpus[i % len(corpus)]
            i += 1

    return islice(stream(), skip, None)


def config(**kw):
    base = dict(max_steps=12, batch_size=4, seq_len=16, lr=3e-3, eval_every=4, checkpoint_every=4)
    return TrainingConfig(**{**base, **kw})


def losses(out_dir):
    rows = [json.loads(line) for line in (out_dir / METRICS_FILE).read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def run(out_dir, objective, cfg, evaluate=None):
    return train_loop(
        model=tiny_model(),
        objective=objective,
        make_batches=make_batches,
        cfg=cfg,
        out_dir=out_dir,
        seed=0,
        evaluate=evaluate,
        state_extra={"stage_hash": "abc"},
    )


def test_loss_decreases_and_eval_rows_are_logged(tmp_path):
    state = run(tmp_path, ToyObjective(), config(max_steps=40, eval_every=20), lambda m: {"x": 1.0})
    curve = losses(tmp_path)
    assert len(curve) == 40 and state.step == 40
    first, last = sum(curve[s] for s in range(1, 6)) / 5, sum(curve[s] for s in range(36, 41)) / 5
    assert last < first * 0.8
    # Seeded model, data and masks: the exact curve (a change means the maths or data order did).
    assert first == pytest.approx(3.719862699508667, rel=1e-5)
    assert last == pytest.approx(2.4670825004577637, rel=1e-5)
    pinned = {1: 3.9520463943481445, 20: 2.6835033893585205, 40: 2.4955663681030273}
    assert {s: curve[s] for s in pinned} == {
        s: pytest.approx(v, rel=1e-5) for s, v in pinned.items()
    }
    rows = [json.loads(x) for x in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" in r] == [20, 40]


def test_resume_after_crash_continues_the_same_loss_curve(tmp_path):
    straight, resumed = tmp_path / "a", tmp_path / "b"
    run(straight, ToyObjective(), config())
    with pytest.raises(Interrupted):
        run(resumed, ToyObjective(crash_at=11), config())  # dies during step 11, last ckpt 8
    assert max(losses(resumed)) == 10  # steps 9-10 were logged after the checkpoint...
    state = run(resumed, ToyObjective(), config())
    after = losses(resumed)
    assert sorted(after) == list(range(1, 13))  # ...and were dropped, then logged again
    for step, value in losses(straight).items():
        assert abs(after[step] - value) <= 1e-6, step
    assert state.step == 12


def test_checkpoint_of_other_configuration_is_ignored(tmp_path):
    with pytest.raises(Interrupted):
        run(tmp_path, ToyObjective(crash_at=6), config())
    state = train_loop(
        model=tiny_model(),
        objective=ToyObjective(),
        make_batches=make_batches,
        cfg=config(max_steps=2),
        out_dir=tmp_path,
        seed=0,
        state_extra={"stage_hash": "different"},
    )
    assert state.step == 2 and sorted(losses(tmp_path)) == [1, 2]


def test_nonfinite_loss_is_skipped_and_counted(tmp_path):
    state = run(tmp_path, ToyObjective(nan_calls={3}), config(max_steps=6))
    assert state.step == 6 and state.nonfinite_total == 1
    rows = [json.loads(x) for x in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert any(r.get("nonfinite_skipped") == 1 for r in rows)
    assert all(r["loss"] == r["loss"] for r in rows if "loss" in r)  # no NaN logged as a step


def test_persistent_nonfinite_loss_stops_with_a_clear_message(tmp_path):
    with pytest.raises(NonFiniteLossError, match="consecutive steps"):
        run(tmp_path, ToyObjective(nan_calls=set(range(100))), config(max_nonfinite=3))


def test_gradient_accumulation_consumes_micro_batches(tmp_path):
    state = run(tmp_path, ToyObjective(), config(max_steps=3, grad_accum=2))
    assert state.batches_consumed == 6


def test_checkpoint_of_another_model_layout_starts_over(tmp_path):
    """A checkpoint whose parameter names do not fit (e.g. written before the model was wrapped)
    is not loaded half-way: training starts from step 0."""
    with pytest.raises(Interrupted):
        run(tmp_path, ToyObjective(crash_at=6), config())

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny_model()

        def forward(self, **batch):
            return self.inner(**batch)

    state = train_loop(
        model=Wrapped(),
        objective=ToyObjective(),
        make_batches=make_batches,
        cfg=config(max_steps=2),
        out_dir=tmp_path,
        seed=0,
        state_extra={"stage_hash": "abc"},
    )
    assert state.step == 2 and sorted(losses(tmp_path)) == [1, 2]


def test_sharded_engine_path_saves_through_accelerate_and_resumes_identically(
    tmp_path, monkeypatch
):
    """The FSDP / DeepSpeed path (Accelerate's save_state / load_state on every process, weights
    gathered at the end), run in one process: only the sharding itself is absent here."""
    import distilnlu.training.loop as loop

    monkeypatch.setattr(loop, "is_sharded", lambda acc: True)
    straight, resumed = tmp_path / "a", tmp_path / "b"
    reference = run(straight, ToyObjective(), config())
    with pytest.raises(Interrupted):
        run(resumed, ToyObjective(crash_at=11), config())
    checkpoint = resumed / "checkpoint"
    assert (checkpoint / loop.ENGINE_DIR).is_dir()  # the engine's own files
    tensors, _ = read_checkpoint(checkpoint)
    assert set(tensors) == {"scheduler", "rng"}
    state = run(resumed, ToyObjective(), config())
    after = losses(resumed)
    assert sorted(after) == list(range(1, 13))
    for step, value in losses(straight).items():
        assert abs(after[step] - value) <= 1e-6, step
    assert reference.full_state_dict is not None and state.full_state_dict is not None
    assert set(reference.full_state_dict) == set(state.full_state_dict)


def test_trained_weights_are_the_inner_models_gathered_weights():
    import distilnlu.training.loop as loop

    a, b = torch.zeros(2), torch.ones(3)
    state = loop.LoopState(full_state_dict={"inner.encoder.w": a, "hidden_loss.proj": b})
    assert loop.trained_weights(state) == {"encoder.w": a}
    assert loop.trained_weights(loop.LoopState()) is None  # unsharded: the model holds them


def test_gathered_tied_weights_are_saved_once(tmp_path):
    """A sharded engine gathers a separate copy per name; tied parameters (the LM decoder and the
    input embeddings) share one tensor again, so ``save_pretrained`` writes what it writes for
    the model itself."""
    from safetensors.torch import load_file

    import distilnlu.training.loop as loop

    model = tiny_model()
    gathered = {f"inner.{k}": v.clone() for k, v in model.state_dict().items()}
    weights = loop.trained_weights(loop.LoopState(full_state_dict=gathered), model)
    assert weights is not None and set(weights) == set(model.state_dict())
    assert (
        weights["lm_head.decoder.weight"]
        is weights["roberta_prelayernorm.embeddings.word_embeddings.weight"]
    )
    model.save_pretrained(tmp_path / "plain")
    model.save_pretrained(tmp_path / "gathered", state_dict=weights)
    plain, saved = (load_file(tmp_path / d / "model.safetensors") for d in ("plain", "gathered"))
    assert set(saved) == set(plain)
