"""Training throughput: our pretraining and distillation loops vs. Hugging Face ``Trainer`` ones.

Real tokens per second of whole training loops on the same model, the same weights and the same
short assistant utterances, in one process:

* pretraining (masked LM) on ``--model``;
* distillation of ``--student`` from ``--teacher``.

Data: ``--utterances`` built-in assistant utterances (``domain_utterances``: 5-20 words, as in
MASSIVE) or the ``utt`` fields of a MASSIVE jsonl file (``--massive``), tokenised by a tokenizer
trained on them (``--tokenizer-vocab``). Every kind runs once per model vocabulary of
``--vocabs`` (default 8000, the recipe's, and 32000, a production-sized one; fresh seeded
weights for each); the small tokenizer's ids all fit and the other rows are simply never seen.
Every cost of full-vocabulary logits (the ``[B, T, V]`` projection, its softmax and gradient)
scales with the vocabulary, so the ratios depend on it.

Variants (dropout 0 everywhere; every variant of a kind and vocabulary starts from the same
seeded weights):

``ours``
    :func:`~distilnlu.training.loop.train_loop` as the stages run it: rows of ``--seq-len`` slots
    packed with isolated ``<s> utterance </s>`` documents (each attends only to itself), dynamic
    masks from :class:`~distilnlu.training.objectives.MLMObjective`, the LM head on the masked
    positions only (:class:`~distilnlu.training.objectives.MaskedLMModel`), ``--attention``
    (``training.attention``; default SDPA), compiled with ``--compile`` (``training.compile``),
    AdamW, gradient clipping at 1.0, a linear schedule. Distillation:
    :class:`~distilnlu.training.distill.DistillObjective` +
    :class:`~distilnlu.training.distill.DistillStudent` (teacher under ``torch.inference_mode``,
    masked-only heads on both models, the fused MLM + soft cross-entropy).
ablations
    ``ours`` with one optimisation removed: ``- packing`` (each utterance padded to
    ``--pad-len`` like the fixed-pad baseline), ``- masked-only head`` (full-vocabulary logits,
    then indexed at the masked positions), ``- sdpa`` (eager attention, pretraining only; with
    ``--attention eager`` it is ``- eager``, SDPA instead). ``+ torch.compile`` (pretraining
    only, left out with ``--compile``, where ours is compiled) is ours with
    ``training.compile``; a compile that fails, or a
    step slower than ``--compile-limit`` seconds, is recorded as an error string instead of a
    number (a single compilation cannot be interrupted, so the limit is checked after each
    step).
HF ``Trainer`` baselines (exactly configured in ``benchmarks/throughput_hf.py``'s docstring)
    ``HF Trainer baseline`` (the original, unchanged): rows padded to ``--pad-len``,
    ``DataCollatorForLanguageModeling``, ``--tokens-per-batch // --pad-len`` rows per batch.
    ``HF Trainer, dynamic padding``: each batch padded to its longest row, length-grouped
    sampling, as many rows. ``HF Trainer, packed (DataCollatorWithFlattening)``: utterances
    flattened into rows of ``--seq-len`` with ``position_ids`` restarting per utterance, then
    MLM-masked, as many rows as ours; under SDPA its documents attend to each other. All:
    ``--attention`` (``attn_implementation``, default SDPA), with ``--compile``
    ``TrainingArguments(torch_compile=True)``, full-vocabulary logits, for distillation the soft
    cross-entropy on every token.

Token accounting: tokens/s counts real tokens only (non-padding positions, ``<s>``/``</s>``
included), the same way for every variant: the attention masks of the batches each step consumed
(packed rows have no padding). For the ``Trainer`` the collator is wrapped to count each batch
it builds, so the count is exact. ``padded_fraction`` is the share of the slots those batches
held (``attention_mask`` elements) that were padding.

Timing: the variants run one after another, each alone in this process (run side by side, the
baseline's steps, which fault in large fresh ``[B, T, V]`` tensors, were seen to slow down more
than ours, which would flatter us). A step is timed from the end of the previous one to the end
of its optimizer step, so it includes fetching and collating its batch. ``--warmup`` untimed
steps, then ``--steps`` timed ones; tokens/s is the median over the timed steps of (real tokens
of the step / its wall time); ``contribution`` of an optimisation is ``ours`` tokens/s divided
by the tokens/s of the ablation without it. Ratios: ``ours`` against each baseline and against
the strongest one (the fastest in tokens/s of those that ran), per kind and vocabulary. Target
(PASS/FAIL is printed; the exit status stays 0): ``ours`` >= 3x the strongest baseline, for
pretraining and for distillation, at every vocabulary.

The floor (``benchmarks/throughput_floor.py``): per kind and vocabulary, a step of nothing but
the weight products of our median step's real tokens; the run prints ours as a share of it and
whether the target lies above it. ``--precision bf16`` runs every variant under bf16 autocast;
``--attention`` and ``--compile`` likewise set the kernel and compilation of every variant, so
ours and the baselines always compare at the same settings.

Written for the CPU (with a GPU visible, our loop and the ``Trainer`` would both use it; the
target above is about the CPU). On a shared machine pass ``--threads`` no larger than the
cores that are free: an OpenMP thread that loses its core stalls every parallel region, which
turns small timings into noise. Memory: at vocabulary 32000 every ``[64, 64, 32000]`` fp32
tensor of the fixed-pad baseline (logits, their softmaxes, their gradients) is 0.5 GB, the
packed baseline's ``[32, 128, 32000]`` ones too, a baseline distillation step holds several of
them at once, and the process peaks at about 6 GB resident. Run from the repository root::

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
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from itertools import count, islice
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import transformers
from torch import nn

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

# The benchmarks are scripts, not a package: run as a script, this directory is on sys.path, but
# the tests load this file with importlib (tests/benchmarks/conftest.py), which does not add it.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput_floor as floor
import throughput_hf as hf
from throughput_hf import StepClock

LR = 1e-4
TARGET_RATIO = hf.TARGET_RATIO  # ours >= 3x the strongest (fastest) HF baseline
PRETRAIN_LABELS = {
    "ours": "ours",
    "ours-packing": "ours - packing",
    "ours-masked_head": "ours - masked-only head",
    "ours-sdpa": "ours - sdpa",
    "ours-eager": "ours - eager (sdpa instead)",
    "ours+compile": "ours + torch.compile",
    **hf.BASELINES,
}
DISTILL_LABELS = {
    "ours": "ours",
    "ours-packing": "ours - packing",
    "ours-masked_head": "ours - masked-only heads",
    **hf.BASELINES,
}
# ablation variant -> the optimisation it removes
ABLATIONS = {
    "ours-packing": "packing",
    "ours-masked_head": "masked_only_head",
    "ours-sdpa": "sdpa",
    "ours-eager": "eager",
}
OTHER_KERNEL = {"sdpa": "eager", "eager": "sdpa"}


# --------------------------------------------------------------------------- arguments


def parse_shape(spec: str) -> ModelShape:
    """``LxH`` (L layers of width H, H/64 heads, FFN 4H) or a preset name; dropout 0."""
    match = re.fullmatch(r"(\d+)x(\d+)", spec.strip().lower())
    if match:
        layers, hidden = int(match[1]), int(match[2])
        fields = {"num_layers": layers, "hidden_size": hidden, "num_heads": max(1, hidden // 64)}
        return resolve_shape({**fields, "dropout": 0.0})
    return resolve_shape({"preset": spec, "dropout": 0.0})


def parse_vocabs(spec: str) -> list[int]:
    """``8000,32000`` -> ``[8000, 32000]`` (each vocabulary once, in the order given)."""
    try:
        vocabs = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {spec!r}") from None
    if not vocabs or min(vocabs) < 8:
        raise argparse.ArgumentTypeError(f"need vocabularies >= 8: {spec!r}")
    return list(dict.fromkeys(vocabs))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("--utterances", type=int, default=4000, help="built-in assistant utterances to train on")
    add("--massive", type=Path, default=None, help="MASSIVE jsonl: train on its 'utt' fields")
    add("--tokenizer-vocab", type=int, default=4000, help="vocabulary of the trained tokenizer")
    add("--vocabs", type=parse_vocabs, default=[8000, 32000], help="model vocabularies V, a,b,…")
    add("--model", default="4x256", help="pretrained model: LxH (H/64 heads) or a preset")
    add("--teacher", default="4x256", help="distillation teacher: LxH or a preset")
    add("--student", default="2x128", help="distillation student: LxH or a preset")
    add("--seq-len", type=int, default=128, help="packed row length (ours)")
    add("--pad-len", type=int, default=64, help="fixed pad length (HF baselines, - packing)")
    add("--tokens-per-batch", type=int, default=4096, help="slots per batch, every variant")
    add("--warmup", type=int, default=3, help="untimed steps per variant first")
    add("--steps", type=int, default=15, help="timed steps per variant")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--precision", choices=("fp32", "bf16"), default="fp32", help="every variant's precision")
    add("--attention", choices=("sdpa", "eager"), default="sdpa", help="every variant's kernel")
    add("--compile", action="store_true", help="torch.compile every variant (ours and HF)")
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
        mask = batch["attention_mask"]
        self.clock.add_tokens(int(mask.sum()), mask.numel())
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
    compile_model: bool = False,
) -> None:
    """``train_loop`` for ``warmup + steps`` steps, timed by ``clock``; compiled (as
    ``training.compile`` compiles a stage's module) with ``--compile`` or ``compile_model``."""
    cfg = TrainingConfig(
        max_steps=clock.total,
        batch_size=rows,
        seq_len=seq_len,
        lr=LR,
        precision=args.precision,
        compile=args.compile or compile_model,
        scheduler="linear",
        log_every=clock.total,
        eval_every=10**9,
        checkpoint_every=10**9,
    )

    def make_batches(consumed: int) -> Iterator[torch.Tensor]:
        clock.ready()  # the loop is set up: the next thing it does is its first step
        return islice(stream(), consumed, None)

    hf.watch_precision(model, clock)
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
    clock.info["compiled"] = getattr(model, "_compiled_call_impl", None) is not None


# --------------------------------------------------------------------------- variants


def roles(args: argparse.Namespace) -> list[tuple[str, ModelShape]]:
    """The models of the run, by role (their seeds follow this order)."""
    named = [("model", args.model_shape)]
    return (
        named
        if args.skip_distill
        else [*named, ("teacher", args.teacher_shape), ("student", args.student_shape)]
    )


class Setup:
    """What every variant of one vocabulary shares: data, tokenizer, initial weights per role."""

    def __init__(
        self, args: argparse.Namespace, texts: list[str], tokenizer: Any, vocab: int
    ) -> None:
        self.args, self.texts, self.tokenizer, self.vocab = args, texts, tokenizer, vocab
        self.shapes = dict(roles(args))
        self.weights = {}
        for i, (role, shape) in enumerate(roles(args)):
            torch.manual_seed(args.seed + i)
            self.weights[role] = build_model(shape, vocab).state_dict()

    def model(self, role: str, attn: str | None = None) -> nn.Module:
        """A fresh copy of ``role``'s initial weights, with ``--attention`` unless ``attn``."""
        kernel = attn or self.args.attention
        model = build_model(self.shapes[role], self.vocab, attn_implementation=kernel)
        model.load_state_dict(self.weights[role])
        return model

    def teacher(self, attn: str | None = None) -> nn.Module:
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

    def ours(packed=True, full_head=False, attn=None, compile_model=False):
        def run(clock: StepClock) -> None:
            model = setup.model("model", attn)
            module = MaskedLMModel(FullVocabHead(model) if full_head else model)
            objective = MLMObjective(tokenizer, MaskingConfig(), isolate_documents=packed)
            stream, rows, length = setup.packed() if packed else setup.padded()
            run_our_loop(clock, module, objective, stream, rows, length, args, compile_model)

        return run

    runs = {
        "ours": ours(),
        "ours-packing": ours(packed=False),
        "ours-masked_head": ours(full_head=True),
        f"ours-{args.attention}": ours(attn=OTHER_KERNEL[args.attention]),
    }
    if not (args.no_compile or args.compile):
        runs["ours+compile"] = ours(compile_model=True)
    return {**runs, **baseline_runs(setup, "model")}


def baseline_runs(setup: Setup, role: str) -> dict[str, Callable[[StepClock], None]]:
    """Every HF ``Trainer`` baseline of ``role`` (``model``; ``student``: distilled from
    ``teacher``). Run last: the Trainer sets up its Accelerator after every train_loop has."""

    def baseline(variant: str) -> Callable[[StepClock], None]:
        def run(clock: StepClock) -> None:
            teacher = setup.teacher() if role == "student" else None
            model, tokenizer, texts = setup.model(role), setup.tokenizer, setup.texts
            kwargs: dict[str, Any] = {"lr": LR, "variant": variant, "teacher": teacher}
            hf.run_trainer(clock, model, tokenizer, texts, setup.args, **kwargs)

        return run

    return {variant: baseline(variant) for variant in hf.BASELINES}


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

    return {
        "ours": ours(),
        "ours-packing": ours(packed=False),
        "ours-masked_head": ours(full_heads=True),
        **baseline_runs(setup, "student"),
    }


# --------------------------------------------------------------------------- results


def summarise_kind(clocks: dict[str, StepClock], labels: dict[str, str]) -> dict[str, Any]:
    """Rows, ratios against the fixed-pad and the strongest baseline, target, contributions."""
    variants = {name: hf.variant_result(clock, labels[name]) for name, clock in clocks.items()}
    ours = hf.rate(variants, "ours")
    contribution = {
        what: hf.divide(ours, hf.rate(variants, name))
        for name, what in ABLATIONS.items()
        if name in variants
    }
    return {"variants": variants, **hf.compare(variants), "contribution": contribution}


def settings(args: argparse.Namespace, texts: list[str], tokenizer: Any) -> dict[str, Any]:
    params = {
        str(vocab): {
            role: estimate_parameters(shape, vocab)["total"] for role, shape in roles(args)
        }
        for vocab in args.vocabs
    }
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    return {
        "utterances": len(texts),
        "data": str(args.massive) if args.massive else "domain_utterances",
        "mean_utterance_tokens": statistics.mean(lengths),
        "tokenizer_vocab": len(tokenizer),
        "vocabs": args.vocabs,
        "model": args.model,
        "teacher": args.teacher if not args.skip_distill else None,
        "student": args.student if not args.skip_distill else None,
        "params": params,
        "seq_len": args.seq_len,
        "pad_len": args.pad_len,
        "tokens_per_batch": args.tokens_per_batch,
        "precision": args.precision,
        "attention": args.attention,
        "compile": args.compile,
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


def run_vocabulary(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    """Both kinds at one vocabulary: ``{"pretraining": …, "distillation": …}``."""
    pretraining = run_variants(pretraining_runs(setup), args)
    out = {"pretraining": summarise_kind(pretraining, PRETRAIN_LABELS)}
    kind = out["pretraining"]
    floor_args = (setup.vocab, args.precision, args.steps, TARGET_RATIO)
    floor.add_floor(kind, [(args.model_shape, True)], *floor_args)
    skipped = "ours is compiled (--compile)" if args.compile else "skipped (--no-compile)"
    compiled = kind["variants"].get("ours+compile", {"error": skipped})
    kind["compile_speedup"] = hf.divide(
        compiled.get("tokens_per_s"), hf.rate(kind["variants"], "ours")
    )
    kind["compile_error"] = compiled.get("error")
    if not args.skip_distill:
        out["distillation"] = summarise_kind(
            run_variants(distillation_runs(setup), args), DISTILL_LABELS
        )
        models = [(args.student_shape, True), (args.teacher_shape, False)]
        floor.add_floor(out["distillation"], models, *floor_args)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark with parsed arguments (torch's thread count already set)."""
    texts = load_texts(args)
    tokenizer = train_tokenizer(texts, args.tokenizer_vocab)
    if len(tokenizer) > min(args.vocabs):
        raise SystemExit(f"--vocabs {min(args.vocabs)} is below the tokenizer's {len(tokenizer)}")
    result: dict[str, Any] = {"settings": settings(args, texts, tokenizer), "vocabs": {}}
    for vocab in args.vocabs:
        result["vocabs"][str(vocab)] = run_vocabulary(args, Setup(args, texts, tokenizer, vocab))
    result["summary"] = hf.summary(result["vocabs"])
    result.update(
        torch=torch.__version__,
        transformers=transformers.__version__,
        threads=torch.get_num_threads(),
        device="cuda" if not use_cpu() else f"cpu ({platform.processor() or platform.machine()})",
    )

    s = result["settings"]
    print(
        f"{s['utterances']} utterances ({s['data']}, {s['mean_utterance_tokens']:.1f} tokens"
        f" on average), tokenizer {s['tokenizer_vocab']}, model vocabularies"
        f" {', '.join(map(str, s['vocabs']))}; {s['tokens_per_batch']} slots per batch"
        f" ({s['packed_rows']} packed rows of {s['seq_len']} / {s['padded_rows']} padded rows of"
        f" {s['pad_len']}); torch {result['torch']}, transformers {result['transformers']},"
        f" {result['threads']} threads, {s['precision']}, {s['attention']} attention"
        f"{', compiled' if s['compile'] else ''}, {result['device']}; {s['steps']} timed"
        f" steps after {s['warmup']} warm-up, {s['timing']}"
    )
    for vocab, kinds in result["vocabs"].items():
        hf.print_table(
            f"pretraining (masked LM), model {args.model}, vocab {vocab}", kinds["pretraining"]
        )
        if "distillation" in kinds:
            title = f"distillation, teacher {args.teacher} -> student {args.student}, vocab {vocab}"
            hf.print_table(title, kinds["distillation"])
    hf.print_summary(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
