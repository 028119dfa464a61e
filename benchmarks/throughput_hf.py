"""The Hugging Face ``Trainer`` baselines of ``benchmarks/throughput.py`` (imported by it).

Also what the script and the baselines share (the script cannot be imported back: it is a script,
loaded under another name by the tests): :class:`StepClock`, which times every variant, and the
comparison of ours with the baselines (:func:`compare`) and its tables.

Three ways a user who knows ``transformers`` would train the same masked LM (and, through
:class:`DistillTrainer`, distil the same student); each is a plain ``Trainer.train()`` with
``TrainingArguments`` defaults otherwise (AdamW, clipping at 1.0, a linear schedule), the same
learning rate as ours, dropout 0, and the model as ``build_model`` makes it: RoBERTa-PreLayerNorm
with ``attn_implementation`` ``--attention`` (default ``"sdpa"``; checked at run time:
``model.config._attn_implementation``), and with ``--compile`` ``torch_compile=True``.

``hf_trainer`` (``HF Trainer baseline``, the original one, unchanged so old figures compare)
    Utterances pre-tokenised with ``padding="max_length"`` to ``--pad-len``;
    ``DataCollatorForLanguageModeling(mlm_probability=0.15)``; ``--tokens-per-batch // --pad-len``
    rows per batch; the default random sampler.
``hf_dynamic`` (``HF Trainer, dynamic padding``)
    Utterances pre-tokenised without padding (with ``return_special_tokens_mask=True``, so the
    collator need not recompute it per row); ``DataCollatorForLanguageModeling`` pads each batch
    to its longest row (its default); length-grouped sampling (``group_by_length=True``, which
    transformers 5.x spells ``train_sampling_strategy="group_by_length"``: the run uses whichever
    field the installed ``TrainingArguments`` has and fails unless the ``Trainer``'s sampler is a
    ``LengthGroupedSampler``; the lengths are computed by the ``Trainer`` from ``input_ids``);
    the same batch budget in sequences as ``hf_trainer`` (``--tokens-per-batch // --pad-len``),
    truncated at ``--pad-len`` like it. The sampler sorts mega-batches of up to 50 batches by
    length and serves the longest batch first, so a run of only a few steps times longer rows
    than the average; with the defaults (4,000 utterances, 3 + 15 steps) the steps run through
    the first mega-batch (15 batches, longest to shortest) and into the next.
``hf_packed`` (``HF Trainer, packed (DataCollatorWithFlattening)``)
    Whole ``<s> utterance </s>`` encodings (truncated to ``--seq-len``) laid, in a seeded shuffled
    order, into rows of at most ``--seq-len`` tokens (an utterance that does not fit starts the
    next row); ``--tokens-per-batch // --seq-len`` rows per batch, the same token budget as ours.
    Each row is what ``DataCollatorWithFlattening(position_ids_start=2)`` makes of its
    utterances (``position_ids`` restarting at ``padding_idx + 1`` per utterance, as RoBERTa
    numbers positions; the collator's causal ``labels`` are dropped); the rows are padded to the
    batch's longest (``attention_mask`` 0 there), then masked as
    ``DataCollatorForLanguageModeling.torch_mask_tokens`` masks (15%, 80/10/10, special tokens
    and padding never masked): the flattening collator itself does no masking.

    Documents are NOT isolated from each other here. RoBERTa-PreLayerNorm's
    ``_create_attention_masks`` calls ``masking_utils.create_bidirectional_mask``, which takes
    no ``position_ids`` (unlike ``create_causal_mask``, which detects packed sequences from
    them), so under SDPA (and eager and flex attention) the mask is the padding mask only and
    every token attends to the whole row; ``sdpa_attention_forward`` ignores ``position_ids``.
    Only the flash-attention kernels read them (``_flash_attention_forward``): with
    ``flash_attention_2`` a single flattened ``[1, N]`` row without an ``attention_mask`` runs
    varlen attention per document. With rows of ``--seq-len`` (or any padding) it would not
    either, and flash-attention is not available on the CPU. The position embeddings do restart
    per utterance. (Checked on the installed transformers: the logits of a flattened row's first
    utterance differ from those of the utterance alone, and match them exactly once a
    block-diagonal 4D mask is passed.) So this baseline does about the work of ours (rows of
    ``--seq-len``, a few percent padding, ``seq_len²`` attention per row) while its documents see
    each other, which ours prevents.

Distillation (every variant): :class:`DistillTrainer`, whose ``compute_loss`` runs the teacher
under ``torch.no_grad()`` on the same inputs (``position_ids`` included where the batch has
them) and adds, to the student's own MLM loss, the soft cross-entropy between the full teacher
and student distributions averaged over every non-pad position.

Precision: ``--precision`` for every variant; ``bf16`` is ``TrainingArguments(bf16=True)`` here
(CPU autocast to bfloat16, as our loop's ``precision: bf16`` through Accelerate).

Token accounting: the collator is wrapped (:class:`CountingCollator`) to report the real tokens
(``attention_mask`` ones) and the slots (``attention_mask`` elements) of every batch it builds.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
from collections import deque
from typing import Any

import torch
import torch.nn.functional as F
from throughput_floor import floor_line
from torch import nn
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorWithFlattening,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from distilnlu.distributed import use_cpu

FIXED = "hf_trainer"
DYNAMIC = "hf_dynamic"
PACKED = "hf_packed"
BASELINES = {
    FIXED: "HF Trainer baseline",
    DYNAMIC: "HF Trainer, dynamic padding",
    PACKED: "HF Trainer, packed (DataCollatorWithFlattening)",
}
MLM_PROBABILITY = 0.15
TARGET_RATIO = 3.0  # ours >= 3x the strongest (fastest) baseline


# --------------------------------------------------------------------------- clock and tables


class StepTooSlowError(RuntimeError):
    """A step of a variant took longer than its limit (a compile that does not pay off)."""


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock:
    """Times the steps of one variant and counts their real tokens and slots.

    The loop calls :meth:`ready` once set up, :meth:`add_tokens` for every batch it builds
    (possibly ahead of the step that consumes it) and :meth:`step_done` after every optimizer step.
    ``times`` (seconds), ``tokens`` and ``slots`` hold the timed steps; ``error`` is set if the
    loop failed; ``info`` holds what a variant reports about its set-up (for the result).
    """

    def __init__(self, name: str, warmup: int, total: int, limit_s: float | None = None) -> None:
        self.name = name
        self.warmup, self.total, self.limit_s = warmup, total, limit_s
        self.times: list[float] = []
        self.tokens: list[int] = []
        self.slots: list[int] = []
        self.error: str | None = None
        self.info: dict[str, Any] = {}
        self._pending: deque[tuple[int, int]] = deque()
        self._done = 0
        self._start = 0.0

    def add_tokens(self, tokens: int, slots: int) -> None:
        self._pending.append((tokens, slots))

    def ready(self) -> None:
        _sync()
        self._start = time.perf_counter()

    def step_done(self) -> None:
        _sync()
        elapsed = time.perf_counter() - self._start
        if not self._pending:
            raise RuntimeError(f"{self.name}: a step finished without a counted batch")
        tokens, slots = self._pending.popleft()
        self._done += 1
        if self._done > self.warmup:
            self.times.append(elapsed)
            self.tokens.append(tokens)
            self.slots.append(slots)
        if self.limit_s is not None and elapsed > self.limit_s:
            raise StepTooSlowError(
                f"step {self._done} took {elapsed:.0f} s (limit {self.limit_s:.0f} s)"
            )
        self._start = time.perf_counter()


def autocast_state() -> str:
    """The precision matrix products run in right now: an autocast dtype, else ``fp32``."""
    device = "cuda" if torch.cuda.is_available() and not use_cpu() else "cpu"
    if not torch.is_autocast_enabled(device):
        return "fp32"
    return str(torch.get_autocast_dtype(device)).removeprefix("torch.")


def watch_precision(model: nn.Module, clock: StepClock) -> None:
    """Record in ``clock.info["autocast"]`` the precision the model's first linear layer runs
    in on its first call (a hook on a layer, not the model: a wrapped ``forward`` enters
    autocast inside it). The hook removes itself, so the timed steps do not run it."""
    layer = next(m for m in model.modules() if isinstance(m, nn.Linear))

    def record(*_: Any) -> None:  # returns None: a pre-hook's return value replaces the input
        clock.info["autocast"] = autocast_state()
        handle.remove()

    handle = layer.register_forward_pre_hook(record)


def variant_result(clock: StepClock, label: str) -> dict[str, Any]:
    """One row of a result table: median tokens/s and the rest, or the error."""
    if clock.error is not None:
        return {"label": label, "error": clock.error, **clock.info}
    if not clock.times:
        return {"label": label, "error": "no timed step", **clock.info}
    rates = [tokens / seconds for tokens, seconds in zip(clock.tokens, clock.times, strict=True)]
    return {
        "label": label,
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_overall": sum(clock.tokens) / sum(clock.times),
        "median_ms": statistics.median(clock.times) * 1000.0,
        "min_ms": min(clock.times) * 1000.0,
        "real_tokens_per_step": statistics.mean(clock.tokens),
        "slots_per_step": statistics.mean(clock.slots),
        "padded_fraction": 1.0 - sum(clock.tokens) / sum(clock.slots),
        "timed_steps": len(clock.times),
        **clock.info,
    }


def rate(variants: dict[str, dict[str, Any]], name: str | None) -> float | None:
    return variants.get(name, {}).get("tokens_per_s") if name is not None else None


def divide(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def times(ratio: float | None) -> str:
    return f"{ratio:.2f}x" if ratio is not None else "n/a"


def compare(variants: dict[str, dict[str, Any]], ours: str = "ours") -> dict[str, Any]:
    """Every variant against the fixed-pad and the strongest (fastest) baseline that ran, ours
    against each baseline, and the target: ours >= ``TARGET_RATIO`` x the strongest."""
    ran = [name for name in BASELINES if rate(variants, name) is not None]
    strongest = max(ran, key=lambda name: rate(variants, name) or 0.0) if ran else None
    vs_strongest = divide(rate(variants, ours), rate(variants, strongest))
    return {
        "ratio_vs_hf": {
            name: divide(rate(variants, name), rate(variants, FIXED)) for name in variants
        },
        "ratio_vs_strongest": {
            name: divide(rate(variants, name), rate(variants, strongest)) for name in variants
        },
        "ours_vs_baseline": {
            name: divide(rate(variants, ours), rate(variants, name)) for name in BASELINES
        },
        "strongest_baseline": strongest,
        "ours_vs_strongest": vs_strongest,
        "target_ours_ge_3x_strongest": vs_strongest is not None and vs_strongest >= TARGET_RATIO,
    }


def summary(by_vocab: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per kind and vocabulary: ours, the strongest baseline, the ratio and the verdict."""
    return [
        {
            "kind": name,
            "vocab": int(vocab),
            "ours_tokens_per_s": rate(kind["variants"], "ours"),
            "strongest_baseline": kind["strongest_baseline"],
            "strongest_tokens_per_s": rate(kind["variants"], kind["strongest_baseline"]),
            "ratio": kind["ours_vs_strongest"],
            "pass": kind["target_ours_ge_3x_strongest"],
            "floor_tokens_per_s": kind.get("matmul_floor", {}).get("floor_tokens_per_s"),
            "target_within_floor": kind.get("matmul_floor", {}).get("target_within_floor"),
        }
        for vocab, kinds in by_vocab.items()
        for name, kind in kinds.items()
    ]


def print_table(title: str, kind: dict[str, Any]) -> None:
    """One kind at one vocabulary: every variant, contributions, ours vs every baseline."""
    print(f"\n{title}")
    header = ("variant", "real tokens/s", "vs HF", "vs best", "median ms", "tokens/step", "padded")
    print("{:<48} {:>13} {:>7} {:>7} {:>10} {:>11} {:>6}".format(*header))
    for name, row in kind["variants"].items():
        if "error" in row:
            print(f"{row['label']:<48} {'error: ' + row['error'][:70]}")
            continue
        print(
            f"{row['label']:<48} {row['tokens_per_s']:>13.0f}"
            f" {times(kind['ratio_vs_hf'][name]):>7} {times(kind['ratio_vs_strongest'][name]):>7}"
            f" {row['median_ms']:>10.1f} {row['real_tokens_per_step']:>11.0f}"
            f" {row['padded_fraction']:>6.0%}"
        )
    parts = [f"{what} {value:.2f}x" for what, value in kind["contribution"].items() if value]
    if kind.get("compile_speedup") is not None:
        parts.append(f"torch.compile {kind['compile_speedup']:.2f}x")
    if parts:
        print("contribution (ours / ours without it): " + ", ".join(parts))
    if "ours+compile" not in kind["variants"] and kind.get("compile_error"):
        print(f"torch.compile: {kind['compile_error']}")
    each = [f"{label} {times(kind['ours_vs_baseline'][n])}" for n, label in BASELINES.items()]
    print("ours vs " + "; vs ".join(each))
    strongest = kind["strongest_baseline"]
    verdict = "PASS" if kind["target_ours_ge_3x_strongest"] else "FAIL"
    print(
        f"ours vs the strongest baseline ({BASELINES.get(strongest, 'none ran')})"
        f" = {times(kind['ours_vs_strongest'])} (target >= {TARGET_RATIO:.0f}x): {verdict}"
    )
    for line in floor_line(kind):
        print(line)


def _count(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "n/a"


def print_summary(result: dict[str, Any]) -> None:
    """The verdicts of every kind and vocabulary, one line each."""
    print(f"\nours vs the strongest HF baseline (target >= {TARGET_RATIO:.0f}x)")
    header = ("kind", "vocab", "ours tok/s", "strongest baseline", "its tok/s", "ratio", "",
              "floor tok/s", "target")  # fmt: skip
    print("{:<13} {:>6} {:>11}  {:<48} {:>10} {:>7} {:<4} {:>11} {}".format(*header))
    for row in result["summary"]:
        reach = {True: "within floor", False: "above floor", None: ""}[row["target_within_floor"]]
        print(
            f"{row['kind']:<13} {row['vocab']:>6} {row['ours_tokens_per_s'] or 0:>11.0f}"
            f"  {BASELINES.get(row['strongest_baseline'], 'none ran'):<48}"
            f" {row['strongest_tokens_per_s'] or 0:>10.0f} {times(row['ratio']):>7}"
            f" {'PASS' if row['pass'] else 'FAIL'} {_count(row['floor_tokens_per_s']):>11} {reach}"
        )


# --------------------------------------------------------------------------- the baselines


class CountingCollator:
    """Wraps a data collator and reports the real tokens and slots of every batch it builds."""

    def __init__(self, collator: Any, clock: StepClock) -> None:
        self.collator, self.clock = collator, clock

    def __call__(self, features: list[Any]) -> dict[str, torch.Tensor]:
        batch = self.collator(features)
        mask = batch["attention_mask"]
        self.clock.add_tokens(int(mask.sum()), mask.numel())
        return batch


class ClockCallback(TrainerCallback):
    """Hands the ``Trainer``'s loop start and step ends to a clock."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.ready()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.step_done()


class FlattenedMLMCollator:
    """Rows of utterances flattened by ``DataCollatorWithFlattening``, padded, then MLM-masked.

    Each feature is one row, ``{"documents": [ids, ids, ...]}``; the batch has ``input_ids``,
    ``attention_mask``, ``position_ids`` (restarting per utterance) and MLM ``labels``.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.pad_id = tokenizer.pad_token_id
        # RoBERTa numbers positions from padding_idx + 1 and gives padding position padding_idx.
        start = self.pad_id + 1
        try:
            self.flatten, self.offset = DataCollatorWithFlattening(position_ids_start=start), 0
        except TypeError:  # a transformers without position_ids_start: shift its 0-based ones
            self.flatten, self.offset = DataCollatorWithFlattening(), start
        self.mlm = DataCollatorForLanguageModeling(tokenizer, mlm_probability=MLM_PROBABILITY)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))

    def __call__(self, rows: list[dict[str, list[list[int]]]]) -> dict[str, torch.Tensor]:
        flat = [self.flatten([{"input_ids": ids} for ids in row["documents"]]) for row in rows]
        width = max(f["input_ids"].shape[1] for f in flat)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        position_ids = torch.full_like(input_ids, self.pad_id)
        attention_mask = torch.zeros_like(input_ids)
        for i, f in enumerate(flat):
            n = f["input_ids"].shape[1]
            input_ids[i, :n] = f["input_ids"][0]
            position_ids[i, :n] = f["position_ids"][0] + self.offset
            attention_mask[i, :n] = 1
        special = torch.isin(input_ids, self.special_ids)  # <s>, </s> and <pad>: never masked
        input_ids, labels = self.mlm.torch_mask_tokens(input_ids, special_tokens_mask=special)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "labels": labels,
        }


def packed_rows(texts: list[str], tokenizer: Any, seq_len: int, seed: int) -> list[dict[str, Any]]:
    """Whole ``<s> utterance </s>`` encodings laid into rows of at most ``seq_len`` tokens."""
    encoded = tokenizer(texts, truncation=True, max_length=seq_len)["input_ids"]
    random.Random(f"{seed}-packed").shuffle(encoded)
    rows: list[dict[str, Any]] = []
    row: list[list[int]] = []
    used = 0
    for ids in encoded:
        if row and used + len(ids) > seq_len:
            rows.append({"documents": row})
            row, used = [], 0
        row.append(ids)
        used += len(ids)
    if row:
        rows.append({"documents": row})
    return rows


def soft_cross_entropy(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
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

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        keys = ("input_ids", "attention_mask", "position_ids")
        with torch.no_grad():
            teacher_logits = self.teacher(**{k: inputs[k] for k in keys if k in inputs}).logits
        outputs = model(**inputs)  # with labels: the student's MLM cross-entropy
        soft = soft_cross_entropy(
            outputs.logits, teacher_logits, inputs["attention_mask"], self.temperature
        )
        loss = outputs.loss + soft
        return (loss, outputs) if return_outputs else loss


def _group_by_length() -> dict[str, Any]:
    """``group_by_length=True`` as the installed ``TrainingArguments`` spells it."""
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "group_by_length" in fields:
        return {"group_by_length": True}
    return {"train_sampling_strategy": "group_by_length"}


def baseline_data(
    variant: str, tokenizer: Any, texts: list[str], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], Any, int, dict[str, Any]]:
    """The dataset, collator, rows per batch and extra ``TrainingArguments`` of a variant."""
    mlm = DataCollatorForLanguageModeling(tokenizer, mlm_probability=MLM_PROBABILITY)
    if variant == FIXED:
        encoded = tokenizer(texts, padding="max_length", max_length=args.pad_len, truncation=True)
        dataset = [
            {"input_ids": ids, "attention_mask": mask}
            for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
        ]
        return dataset, mlm, args.tokens_per_batch // args.pad_len, {}
    # remove_unused_columns=False: the Trainer would drop special_tokens_mask / documents, which
    # the model's forward does not take, before the collator sees them.
    if variant == DYNAMIC:
        encoded = tokenizer(
            texts, truncation=True, max_length=args.pad_len, return_special_tokens_mask=True
        )
        dataset = [
            {key: encoded[key][i] for key in encoded} for i in range(len(encoded["input_ids"]))
        ]
        extra = {**_group_by_length(), "remove_unused_columns": False}
        return dataset, mlm, args.tokens_per_batch // args.pad_len, extra
    if variant == PACKED:
        dataset = packed_rows(texts, tokenizer, args.seq_len, args.seed)
        extra = {"remove_unused_columns": False}
        return (
            dataset,
            FlattenedMLMCollator(tokenizer),
            args.tokens_per_batch // args.seq_len,
            extra,
        )
    raise ValueError(f"unknown baseline {variant!r}")


def run_trainer(
    clock: StepClock,
    model: nn.Module,
    tokenizer: Any,
    texts: list[str],
    args: argparse.Namespace,
    *,
    lr: float,
    variant: str = FIXED,
    teacher: nn.Module | None = None,
) -> None:
    """``Trainer.train()`` (or the distillation subclass) for ``clock.total`` steps."""
    dataset, collator, rows, extra = baseline_data(variant, tokenizer, texts, args)
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != args.attention:
        raise RuntimeError(f"{variant}: the model's attention is {attn!r}, not {args.attention!r}")
    with tempfile.TemporaryDirectory(prefix="throughput-hf-") as out_dir:
        training_args = TrainingArguments(
            output_dir=out_dir,
            per_device_train_batch_size=rows,
            max_steps=clock.total,
            learning_rate=lr,
            use_cpu=use_cpu(),
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=args.seed,
            bf16=args.precision == "bf16",
            torch_compile=args.compile,
            **extra,
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
        sampler = trainer._get_train_sampler()
        if variant == DYNAMIC and not isinstance(sampler, LengthGroupedSampler):
            raise RuntimeError(f"{variant}: length grouping is off (sampler {sampler!r})")
        clock.info.update(attn_implementation=attn, rows_per_batch=rows)
        watch_precision(model, clock)
        clock.info["sampler"] = type(sampler).__name__ if sampler is not None else None
        trainer.train()
        # Accelerate wraps a compiled model in dynamo's OptimizedModule (``_orig_mod`` inside).
        clock.info["compiled"] = hasattr(trainer.model_wrapped, "_orig_mod")
