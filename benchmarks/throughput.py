"""Training throughput: our pretraining and distillation steps vs. a Hugging Face ``Trainer``.

Real tokens per second of whole training loops on the same model, the same weights and the same
short assistant utterances, in one process:

* pretraining (masked LM) on ``--model``;
* distillation of ``--student`` from ``--teacher``.

Data: ``--utterances`` built-in assistant utterances (``domain_utterances``: 5-20 words, as in
MASSIVE) or the ``utt`` fields of a MASSIVE jsonl file (``--massive``), tokenised by a tokenizer
trained on them (``--tokenizer-vocab``). The models' vocabulary is ``--vocab`` (default 32000, a
production-sized vocabulary); the small tokenizer's ids all fit and the other rows are simply
never seen. Every cost of full-vocabulary logits (the ``[B, T, V]`` projection, its softmax and
gradient) scales with ``--vocab``, so the ratios below depend on it.

Variants (dropout 0 everywhere; every variant of a kind starts from the same seeded weights):

``ours``
    :func:`~distilnlu.training.loop.train_loop` as the stages run it: rows of ``--seq-len`` slots
    packed with isolated ``<s> utterance </s>`` documents (each attends only to itself), dynamic
    masks from :class:`~distilnlu.training.objectives.MLMObjective`, the LM head on the masked
    positions only (:class:`~distilnlu.training.objectives.MaskedLMModel`), SDPA attention,
    AdamW, gradient clipping at 1.0, a linear schedule. Distillation:
    :class:`~distilnlu.training.distill.DistillObjective` +
    :class:`~distilnlu.training.distill.DistillStudent` (teacher under ``torch.inference_mode``,
    masked-only heads on both models, the fused MLM + soft cross-entropy).
ablations
    ``ours`` with one optimisation removed: ``- packing`` (each utterance padded to
    ``--pad-len`` like the baseline), ``- masked-only head`` (full-vocabulary logits, then
    indexed at the masked positions), ``- sdpa`` (eager attention, pretraining only). ``+
    torch.compile`` (pretraining only) compiles the masked-LM module; a compile that fails, or a
    step slower than ``--compile-limit`` seconds, is recorded as an error string instead of a
    number (a single compilation cannot be interrupted, so the limit is checked after each
    step).
``HF Trainer baseline``
    What a user would write with ``transformers``: ``Trainer`` + ``DataCollatorForLanguageModeling
    (mlm_probability=0.15)`` on utterances pre-tokenised with ``padding="max_length"``
    (``--pad-len``), full-vocabulary logits, the same batch budget of ``--tokens-per-batch``
    slots, ``TrainingArguments`` defaults otherwise (AdamW, clipping at 1.0, linear schedule).
    Distillation: a ``Trainer`` subclass whose ``compute_loss`` runs the teacher under
    ``torch.no_grad()`` and adds, to the student's own MLM loss, the soft cross-entropy between
    the full teacher and student distributions averaged over every non-pad position.

Token accounting: tokens/s counts real tokens only (non-padding positions, ``<s>``/``</s>``
included), the same way for every variant: the attention masks of the batches each step consumed
(packed rows have no padding). For the ``Trainer`` the collator is wrapped to count each batch
it builds, so the count is exact.

Timing: the variants run one after another, each alone in this process (run side by side, the
baseline's steps, which fault in large fresh ``[B, T, V]`` tensors, were seen to slow down more
than ours, which would flatter us). A step is timed from the end of the previous one to the end
of its optimizer step, so it includes fetching and collating its batch. ``--warmup`` untimed
steps, then ``--steps`` timed ones; tokens/s is the median over the timed steps of (real tokens
of the step / its wall time); ``contribution`` of an optimisation is ``ours`` tokens/s divided
by the tokens/s of the ablation without it. Targets (PASS/FAIL is printed; the exit status
stays 0): ``ours`` >= 4x the baseline for pretraining and for distillation.

Written for the CPU (with a GPU visible, our loop and the ``Trainer`` would both use it; the
targets above are about the CPU). On a shared machine pass ``--threads`` no larger than the
cores that are free: an OpenMP thread that loses its core stalls every parallel region, which
turns small timings into noise. Memory: with the defaults every ``[64, 64, 32000]`` fp32 tensor
of the baseline (logits, their softmaxes, their gradients) is 0.5 GB, the baseline distillation
step holds several of them at once, and the process peaks at about 6 GB resident. Run from
the repository root::

    .venv/bin/python benchmarks/throughput.py
    .venv/bin/python benchmarks/throughput.py --threads 2 --json runs/throughput.json
    .venv/bin/python benchmarks/throughput.py --massive massive/data/en-US.jsonl --no-compile
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import count, islice
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import (
    DataCollatorForLanguageModeling,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import distilnlu.training.loop as loop_module
from distilnlu.config import DistillLossConfig, TrainingConfig
from distilnlu.data.corpus import TOKENIZE_CHUNK, batches, pack, shuffled
from distilnlu.data.masking import MaskingConfig
from distilnlu.data.source_config import Document
from distilnlu.data.synthetic import domain_utterances
from distilnlu.distributed import use_cpu
from distilnlu.modeling.presets import ModelShape, build_model, estimate_parameters, resolve_shape
from distilnlu.tokenization import train_tokenizer
from distilnlu.training.distill import DistillObjective, DistillStudent
from distilnlu.training.loop import train_loop
from distilnlu.training.objectives import Event, MaskedLMModel, MLMObjective, Objective
from distilnlu.training.schedule import Phase, TeacherSchedule

LR = 1e-4
TARGET_RATIO = 4.0
HF = "hf_trainer"
PRETRAIN_LABELS = {
    "ours": "ours",
    "ours-packing": "ours - packing",
    "ours-masked_head": "ours - masked-only head",
    "ours-sdpa": "ours - sdpa",
    "ours+compile": "ours + torch.compile",
    HF: "HF Trainer baseline",
}
DISTILL_LABELS = {
    "ours": "ours",
    "ours-packing": "ours - packing",
    "ours-masked_head": "ours - masked-only heads",
    HF: "HF Trainer baseline",
}
# ablation variant -> the optimisation it removes
ABLATIONS = {
    "ours-packing": "packing",
    "ours-masked_head": "masked_only_head",
    "ours-sdpa": "sdpa",
}


# --------------------------------------------------------------------------- arguments


def parse_shape(spec: str) -> ModelShape:
    """``LxH`` (L layers of width H, H/64 heads, FFN 4H) or a preset name; dropout 0."""
    match = re.fullmatch(r"(\d+)x(\d+)", spec.strip().lower())
    if match:
        layers, hidden = int(match[1]), int(match[2])
        fields = {"num_layers": layers, "hidden_size": hidden, "num_heads": max(1, hidden // 64)}
        return resolve_shape({**fields, "dropout": 0.0})
    return resolve_shape({"preset": spec, "dropout": 0.0})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("--utterances", type=int, default=4000, help="built-in assistant utterances to train on")
    add("--massive", type=Path, default=None, help="MASSIVE jsonl: train on its 'utt' fields")
    add("--tokenizer-vocab", type=int, default=4000, help="vocabulary of the trained tokenizer")
    add("--vocab", type=int, default=32000, help="model vocabulary size V (logits width)")
    add("--model", default="4x256", help="pretrained model: LxH (H/64 heads) or a preset")
    add("--teacher", default="4x256", help="distillation teacher: LxH or a preset")
    add("--student", default="2x128", help="distillation student: LxH or a preset")
    add("--seq-len", type=int, default=128, help="packed row length (ours)")
    add("--pad-len", type=int, default=64, help="fixed padded length (baseline, - packing)")
    add("--tokens-per-batch", type=int, default=4096, help="slots per batch, every variant")
    add("--warmup", type=int, default=3, help="untimed steps per variant first")
    add("--steps", type=int, default=15, help="timed steps per variant")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--no-compile", action="store_true", help="skip the torch.compile variant")
    add("--compile-limit", type=float, default=600.0, help="give up on compile past this step s")
    add("--skip-distill", action="store_true", help="pretraining only")
    add("--seed", type=int, default=0, help="seed of weights, data order and masks")
    add("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.utterances < 1:
        parser.error("--steps and --utterances must be >= 1 and --warmup >= 0")
    if min(args.seq_len, args.pad_len) < 8 or args.tokens_per_batch < max(
        args.seq_len, args.pad_len
    ):
        parser.error("--seq-len/--pad-len must be >= 8 and --tokens-per-batch >= both")
    if args.massive is not None and not args.massive.is_file():
        parser.error(f"--massive: no such file {args.massive}")
    for name in ("model", "teacher", "student"):
        setattr(args, f"{name}_shape", parse_shape(getattr(args, name)))
    return args


# --------------------------------------------------------------------------- data


def load_texts(args: argparse.Namespace) -> list[str]:
    """The utterances: MASSIVE ``utt`` fields (first ``--utterances``) or built-in ones."""
    if args.massive is None:
        return domain_utterances(args.utterances, args.seed)
    texts = []
    with open(args.massive, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                text = json.loads(line).get("utt", "")
                if text.strip():
                    texts.append(text)
            if len(texts) >= args.utterances:
                break
    if not texts:
        raise SystemExit(f"{args.massive}: no 'utt' fields")
    return texts


def endless_documents(texts: list[str], seed: int) -> Iterator[Document]:
    """The utterances over and over, reshuffled every epoch."""
    for epoch in count():
        order = list(texts)
        random.Random(f"{seed}-{epoch}").shuffle(order)
        yield from (Document(text, "en") for text in order)


def packed_stream(texts, tokenizer, seq_len: int, rows: int, seed: int) -> Iterator[torch.Tensor]:
    """Our pretraining stream: tokenise, pack isolated documents, shuffle, batch."""
    blocks = pack(endless_documents(texts, seed), tokenizer, seq_len, isolate=True)
    return batches(shuffled(blocks, 256, seed), rows)


def padded_stream(texts, tokenizer, pad_len: int, rows: int, seed: int) -> Iterator[torch.Tensor]:
    """One utterance per row, ``<s> … </s>`` padded (and truncated) to ``pad_len``."""

    def rows_of_ids() -> Iterator[list[int]]:
        docs = endless_documents(texts, seed)
        while chunk := [d.text for d in islice(docs, TOKENIZE_CHUNK)]:
            encoded = tokenizer(chunk, padding="max_length", max_length=pad_len, truncation=True)
            yield from encoded["input_ids"]

    return batches(rows_of_ids(), rows)


# --------------------------------------------------------------------------- timing


class StepTooSlowError(RuntimeError):
    """A step of a variant took longer than its limit (a compile that does not pay off)."""


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock:
    """Times the steps of one variant and counts their real tokens.

    The loop calls :meth:`ready` once set up, :meth:`add_tokens` for every batch it builds
    (possibly ahead of the step that consumes it) and :meth:`step_done` after every optimizer step.
    ``times`` (seconds) and ``tokens`` hold the timed steps; ``error`` is set if the loop failed.
    """

    def __init__(self, name: str, warmup: int, total: int, limit_s: float | None = None) -> None:
        self.name = name
        self.warmup, self.total, self.limit_s = warmup, total, limit_s
        self.times: list[float] = []
        self.tokens: list[int] = []
        self.error: str | None = None
        self._pending: deque[int] = deque()
        self._done = 0
        self._start = 0.0

    def add_tokens(self, tokens: int) -> None:
        self._pending.append(tokens)

    def ready(self) -> None:
        _sync()
        self._start = time.perf_counter()

    def step_done(self) -> None:
        _sync()
        elapsed = time.perf_counter() - self._start
        if not self._pending:
            raise RuntimeError(f"{self.name}: a step finished without a counted batch")
        tokens = self._pending.popleft()
        self._done += 1
        if self._done > self.warmup:
            self.times.append(elapsed)
            self.tokens.append(tokens)
        if self.limit_s is not None and elapsed > self.limit_s:
            raise StepTooSlowError(
                f"step {self._done} took {elapsed:.0f} s (limit {self.limit_s:.0f} s)"
            )
        self._start = time.perf_counter()


def run_variants(runs: dict[str, Callable[[StepClock], None]], args) -> dict[str, StepClock]:
    """Run every variant's loop alone, one after another; a failure is recorded, not raised."""
    total = args.warmup + args.steps
    clocks = {}
    # train_loop's own progress bars would clutter the table's terminal.
    original_tqdm = loop_module.tqdm
    quiet_bar = mock.patch.object(
        loop_module, "tqdm", lambda *a, **k: original_tqdm(*a, **{**k, "disable": True})
    )
    with quiet_bar:
        for name, run in runs.items():
            limit = args.compile_limit if "compile" in name else None
            clocks[name] = StepClock(name, args.warmup, total, limit)
            try:
                run(clocks[name])
            except Exception as exc:  # recorded in the result; the other variants carry on
                clocks[name].error = f"{type(exc).__name__}: {exc}".strip()[:500]
    return clocks


# --------------------------------------------------------------------------- our loop


class CountingObjective(Objective[torch.Tensor]):
    """An objective that reports each prepared batch and each finished step to a clock."""

    def __init__(self, inner, clock: StepClock) -> None:
        self.inner, self.clock = inner, clock

    def prepare(self, input_ids: torch.Tensor, batch_seed: int) -> dict[str, torch.Tensor]:
        batch = self.inner.prepare(input_ids, batch_seed)
        self.clock.add_tokens(int(batch["attention_mask"].sum()))
        return batch

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.inner(model, batch)

    def after_step(self, step: int) -> Event | None:
        event = self.inner.after_step(step)
        self.clock.step_done()
        return event


class FullVocabHead(nn.Module):
    """A wrapper that :func:`~distilnlu.modeling.masked_lm.lm_head` does not see through.

    The masked-LM helpers then take their fallback path: the LM head projects every position onto
    the vocabulary and the logits are indexed afterwards (the ``- masked-only head`` ablation).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.module = model

    def forward(self, **kwargs: Any) -> Any:
        return self.module(**kwargs)


def run_our_loop(
    clock: StepClock,
    model: nn.Module,
    objective,
    stream: Callable[[], Iterator[torch.Tensor]],
    rows: int,
    seq_len: int,
    args: argparse.Namespace,
) -> None:
    """``train_loop`` for ``warmup + steps`` steps, timed by ``clock``."""
    cfg = TrainingConfig(
        max_steps=clock.total,
        batch_size=rows,
        seq_len=seq_len,
        lr=LR,
        scheduler="linear",
        log_every=clock.total,
        eval_every=10**9,
        checkpoint_every=10**9,
    )

    def make_batches(consumed: int) -> Iterator[torch.Tensor]:
        clock.ready()  # the loop is set up: the next thing it does is its first step
        return islice(stream(), consumed, None)

    with tempfile.TemporaryDirectory(prefix="throughput-") as out_dir:
        train_loop(
            model=model,
            objective=CountingObjective(objective, clock),
            make_batches=make_batches,
            cfg=cfg,
            out_dir=Path(out_dir),
            seed=args.seed,
            desc=clock.name,
        )


# --------------------------------------------------------------------------- the baseline


class CountingCollator:
    """Wraps a data collator and reports the real tokens of every batch it builds."""

    def __init__(self, collator, clock: StepClock) -> None:
        self.collator, self.clock = collator, clock

    def __call__(self, features):
        batch = self.collator(features)
        self.clock.add_tokens(int(batch["attention_mask"].sum()))
        return batch


class ClockCallback(TrainerCallback):
    """Hands the ``Trainer``'s loop start and step ends to a clock."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock

    def on_train_begin(self, args, state, control, **kwargs):
        self.clock.ready()

    def on_step_end(self, args, state, control, **kwargs):
        self.clock.step_done()


def soft_cross_entropy(student_logits, teacher_logits, attention_mask, temperature: float = 1.0):
    """``T² · H(teacher, student)`` over full ``[B, T, V]`` distributions, mean over non-pad."""
    t = temperature
    per_token = -(F.softmax(teacher_logits / t, -1) * F.log_softmax(student_logits / t, -1)).sum(-1)
    keep = attention_mask.to(per_token.dtype)
    return (per_token * keep).sum() / keep.sum() * t * t


class DistillTrainer(Trainer):
    """The distillation a user would add to ``Trainer``: KD on every non-pad token."""

    def __init__(self, *args: Any, teacher: nn.Module, temperature: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval()
        self.temperature = temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with torch.no_grad():
            teacher_logits = self.teacher(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).logits
        outputs = model(**inputs)  # with labels: the student's MLM cross-entropy
        soft = soft_cross_entropy(
            outputs.logits, teacher_logits, inputs["attention_mask"], self.temperature
        )
        loss = outputs.loss + soft
        return (loss, outputs) if return_outputs else loss


def run_trainer(
    clock: StepClock,
    model: nn.Module,
    tokenizer,
    texts: list[str],
    args: argparse.Namespace,
    teacher: nn.Module | None = None,
) -> None:
    """``Trainer.train()`` (or the distillation subclass) for ``warmup + steps`` steps."""
    encoded = tokenizer(texts, padding="max_length", max_length=args.pad_len, truncation=True)
    dataset = [
        {"input_ids": ids, "attention_mask": mask}
        for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
    ]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    with tempfile.TemporaryDirectory(prefix="throughput-hf-") as out_dir:
        training_args = TrainingArguments(
            output_dir=out_dir,
            per_device_train_batch_size=args.tokens_per_batch // args.pad_len,
            max_steps=clock.total,
            learning_rate=LR,
            use_cpu=use_cpu(),
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=args.seed,
        )
        kwargs: dict[str, Any] = {
            "model": model,
            "args": training_args,
            "data_collator": CountingCollator(collator, clock),
            "train_dataset": dataset,
            "callbacks": [ClockCallback(clock)],
        }
        trainer = (
            Trainer(**kwargs) if teacher is None else DistillTrainer(teacher=teacher, **kwargs)
        )
        trainer.remove_callback(PrinterCallback)  # it would print the final metrics dict
        trainer.train()


# --------------------------------------------------------------------------- variants


class Setup:
    """What every variant shares: data, tokenizer and the initial weights of each role."""

    def __init__(
        self,
        args: argparse.Namespace,
        texts: list[str],
        tokenizer: Any,
        weights: dict[str, dict[str, torch.Tensor]],
        shapes: dict[str, ModelShape],
    ) -> None:
        self.args, self.texts, self.tokenizer = args, texts, tokenizer
        self.weights, self.shapes = weights, shapes

    def model(self, role: str, attn: str = "sdpa") -> nn.Module:
        model = build_model(self.shapes[role], self.args.vocab, attn_implementation=attn)
        model.load_state_dict(self.weights[role])
        return model

    def teacher(self, attn: str = "sdpa") -> nn.Module:
        return self.model("teacher", attn).eval().requires_grad_(False)

    def packed(self) -> tuple[Callable[[], Iterator[torch.Tensor]], int, int]:
        a = self.args
        rows = a.tokens_per_batch // a.seq_len
        return (
            lambda: packed_stream(self.texts, self.tokenizer, a.seq_len, rows, a.seed),
            rows,
            a.seq_len,
        )

    def padded(self) -> tuple[Callable[[], Iterator[torch.Tensor]], int, int]:
        a = self.args
        rows = a.tokens_per_batch // a.pad_len
        return (
            lambda: padded_stream(self.texts, self.tokenizer, a.pad_len, rows, a.seed),
            rows,
            a.pad_len,
        )


def pretraining_runs(setup: Setup) -> dict[str, Callable[[StepClock], None]]:
    args, tokenizer = setup.args, setup.tokenizer

    def ours(packed=True, full_head=False, attn="sdpa", compile_model=False):
        def run(clock: StepClock) -> None:
            model = setup.model("model", attn)
            module = MaskedLMModel(FullVocabHead(model) if full_head else model)
            if compile_model:
                module = torch.compile(module)
            objective = MLMObjective(tokenizer, MaskingConfig(), isolate_documents=packed)
            stream, rows, length = setup.packed() if packed else setup.padded()
            run_our_loop(clock, module, objective, stream, rows, length, args)

        return run

    runs = {
        "ours": ours(),
        "ours-packing": ours(packed=False),
        "ours-masked_head": ours(full_head=True),
        "ours-sdpa": ours(attn="eager"),
    }
    if not args.no_compile:
        runs["ours+compile"] = ours(compile_model=True)
    # Last: the Trainer sets up its Accelerator after every train_loop has set up its own.
    runs[HF] = lambda clock: run_trainer(clock, setup.model("model"), tokenizer, setup.texts, args)
    return runs


def distillation_runs(setup: Setup) -> dict[str, Callable[[StepClock], None]]:
    args, tokenizer = setup.args, setup.tokenizer

    def ours(packed=True, full_heads=False):
        def run(clock: StepClock) -> None:
            teacher = setup.teacher()
            student = setup.model("student")
            if full_heads:
                teacher, student = FullVocabHead(teacher), FullVocabHead(student)
            objective = DistillObjective(
                tokenizer,
                MaskingConfig(),
                DistillLossConfig(),
                TeacherSchedule([Phase(teacher="teacher")]),
                load_teacher=lambda _ref, device: teacher.to(device),
                isolate_documents=packed,
            )
            stream, rows, length = setup.packed() if packed else setup.padded()
            run_our_loop(clock, DistillStudent(student), objective, stream, rows, length, args)

        return run

    def baseline(clock: StepClock) -> None:
        student = setup.model("student")
        run_trainer(clock, student, tokenizer, setup.texts, args, teacher=setup.teacher())

    return {
        "ours": ours(),
        "ours-packing": ours(packed=False),
        "ours-masked_head": ours(full_heads=True),
        HF: baseline,
    }


# --------------------------------------------------------------------------- results


def variant_result(clock: StepClock, label: str) -> dict[str, Any]:
    if clock.error is not None:
        return {"label": label, "error": clock.error}
    if not clock.times:
        return {"label": label, "error": "no timed step"}
    rates = [tokens / seconds for tokens, seconds in zip(clock.tokens, clock.times, strict=True)]
    return {
        "label": label,
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_overall": sum(clock.tokens) / sum(clock.times),
        "median_ms": statistics.median(clock.times) * 1000.0,
        "min_ms": min(clock.times) * 1000.0,
        "real_tokens_per_step": statistics.mean(clock.tokens),
        "timed_steps": len(clock.times),
    }


def _rate(variants: dict[str, dict[str, Any]], name: str) -> float | None:
    return variants.get(name, {}).get("tokens_per_s")


def _divide(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarise_kind(clocks: dict[str, StepClock], labels: dict[str, str]) -> dict[str, Any]:
    variants = {name: variant_result(clock, labels[name]) for name, clock in clocks.items()}
    baseline, ours = _rate(variants, HF), _rate(variants, "ours")
    ratio = {name: _divide(_rate(variants, name), baseline) for name in variants}
    contributions = {
        what: _divide(ours, _rate(variants, name))
        for name, what in ABLATIONS.items()
        if name in variants
    }
    out: dict[str, Any] = {
        "variants": variants,
        "ratio_vs_hf": ratio,
        "contribution": contributions,
        "target_ours_ge_4x_hf": ratio["ours"] is not None and ratio["ours"] >= TARGET_RATIO,
    }
    return out


def print_table(title: str, kind: dict[str, Any]) -> None:
    print(f"\n{title}")
    header = ("variant", "real tokens/s", "vs HF", "median ms", "tokens/step")
    print("{:<28} {:>14} {:>8} {:>10} {:>12}".format(*header))
    for name, row in kind["variants"].items():
        if "error" in row:
            print(f"{row['label']:<28} {'error: ' + row['error'][:70]}")
            continue
        ratio = kind["ratio_vs_hf"][name]
        ratio_text = f"{ratio:.2f}x" if ratio is not None else "-"
        print(
            f"{row['label']:<28} {row['tokens_per_s']:>14.0f} {ratio_text:>8} "
            f"{row['median_ms']:>10.1f} {row['real_tokens_per_step']:>12.0f}"
        )
    parts = [f"{what} {value:.2f}x" for what, value in kind["contribution"].items() if value]
    if kind.get("compile_speedup") is not None:
        parts.append(f"torch.compile {kind['compile_speedup']:.2f}x")
    if parts:
        print("contribution (ours / ours without it): " + ", ".join(parts))
    if "ours+compile" not in kind["variants"] and kind.get("compile_error"):
        print(f"torch.compile: {kind['compile_error']}")
    ratio = kind["ratio_vs_hf"]["ours"]
    verdict = "PASS" if kind["target_ours_ge_4x_hf"] else "FAIL"
    ratio_text = f"{ratio:.2f}x" if ratio is not None else "n/a"
    print(f"ours vs HF Trainer = {ratio_text} (target >= {TARGET_RATIO:.0f}x): {verdict}")


def settings(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    params = {
        role: estimate_parameters(shape, args.vocab)["total"]
        for role, shape in setup.shapes.items()
    }
    lengths = [len(ids) for ids in setup.tokenizer(setup.texts)["input_ids"]]
    return {
        "utterances": len(setup.texts),
        "data": str(args.massive) if args.massive else "domain_utterances",
        "mean_utterance_tokens": statistics.mean(lengths),
        "tokenizer_vocab": len(setup.tokenizer),
        "vocab": args.vocab,
        "model": args.model,
        "teacher": args.teacher if not args.skip_distill else None,
        "student": args.student if not args.skip_distill else None,
        "params": params,
        "seq_len": args.seq_len,
        "pad_len": args.pad_len,
        "tokens_per_batch": args.tokens_per_batch,
        "packed_rows": args.tokens_per_batch // args.seq_len,
        "padded_rows": args.tokens_per_batch // args.pad_len,
        "warmup": args.warmup,
        "steps": args.steps,
        "timing": "sequential",
        "lr": LR,
        "seed": args.seed,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints the tables and returns the result (also written to --json).

    ``--threads`` applies for the run only: torch's previous thread count is restored after it.
    """
    args = parse_args(argv)
    previous = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(previous)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark with parsed arguments (torch's thread count already set)."""
    texts = load_texts(args)
    tokenizer = train_tokenizer(texts, args.tokenizer_vocab)
    if len(tokenizer) > args.vocab:
        raise SystemExit(f"--vocab {args.vocab} is smaller than the tokenizer's {len(tokenizer)}")
    shapes = {"model": args.model_shape}
    if not args.skip_distill:
        shapes.update(teacher=args.teacher_shape, student=args.student_shape)
    weights = {}
    for i, (role, shape) in enumerate(shapes.items()):
        torch.manual_seed(args.seed + i)
        weights[role] = build_model(shape, args.vocab).state_dict()
    setup = Setup(args, texts, tokenizer, weights, shapes)

    result: dict[str, Any] = {"settings": settings(args, setup)}
    pretraining = run_variants(pretraining_runs(setup), args)
    result["pretraining"] = kind = summarise_kind(pretraining, PRETRAIN_LABELS)
    compiled = kind["variants"].get("ours+compile", {"error": "skipped (--no-compile)"})
    kind["compile_speedup"] = _divide(compiled.get("tokens_per_s"), _rate(kind["variants"], "ours"))
    kind["compile_error"] = compiled.get("error")
    if not args.skip_distill:
        distillation = run_variants(distillation_runs(setup), args)
        result["distillation"] = summarise_kind(distillation, DISTILL_LABELS)
    result.update(
        torch=torch.__version__,
        transformers=transformers.__version__,
        threads=torch.get_num_threads(),
        device="cuda" if not use_cpu() else f"cpu ({platform.processor() or platform.machine()})",
    )

    s = result["settings"]
    print(
        f"{s['utterances']} utterances ({s['data']}, {s['mean_utterance_tokens']:.1f} tokens"
        f" on average), tokenizer {s['tokenizer_vocab']}, model vocabulary {s['vocab']};"
        f" {s['tokens_per_batch']} slots per batch ({s['packed_rows']} packed rows of"
        f" {s['seq_len']} / {s['padded_rows']} padded rows of {s['pad_len']}); torch"
        f" {result['torch']}, transformers {result['transformers']}, {result['threads']} threads,"
        f" {result['device']}; {s['steps']} timed steps after {s['warmup']} warm-up,"
        f" {s['timing']}"
    )
    print_table(f"pretraining (masked LM), model {args.model}", result["pretraining"])
    if "distillation" in result:
        title = f"distillation, teacher {args.teacher} -> student {args.student}"
        print_table(title, result["distillation"])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
