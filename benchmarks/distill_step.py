"""Wall time of one optimizer step: student MLM vs. our distillation vs. a naive distillation.

Four variants run on the same batches (random token ids in ``[5, V)``, 15% of them selected by
``MLMObjective.prepare``), each with its own copy of the same initial student and its own AdamW.
With ``--packing isolated`` (the default, as the stages run) each row packs utterance-sized
documents of 8-16 ids framed ``<s> … </s>`` and every variant attends within documents only;
``--packing concatenated`` gives rows of one long document.

(a) ``student_mlm``: :class:`~distilnlu.training.objectives.MLMObjective` on the student (LM head
    on the masked rows only), forward + backward + AdamW step.
(b) ``distill``: :class:`~distilnlu.training.distill.DistillObjective` +
    :class:`~distilnlu.training.distill.DistillStudent` - teacher forward under
    ``torch.inference_mode`` with the masked-only head, student with the masked-only head,
    MLM CE + soft CE, forward + backward + AdamW step.
(c) ``naive_distill``: teacher ``teacher(input_ids, attention_mask).logits`` under
    ``torch.no_grad()`` (``[B, T, V]`` logits), student full forward (``[B, T, V]`` logits),
    ``F.cross_entropy(..., ignore_index=-100)`` + soft CE averaged over every non-pad position
    (KD on every token), forward + backward + AdamW step.
(d) ``teacher_forward``: the teacher forward alone, as (b) runs it (inference mode, masked-only
    head); ``a + d`` is the floor for (b).

The variants are interleaved step by step (a, b, c, d, a, b, ...) so that load from other
processes hits all of them alike. After ``--warmup`` untimed rounds, ``--steps`` rounds are timed
and the median milliseconds per step is reported for each variant, with the acceptance targets
``b <= 1.2 * (a + d)`` and ``c / b >= 2`` (PASS/FAIL is printed; the exit status stays 0).

Run from the repository root::

    .venv/bin/python benchmarks/distill_step.py
    .venv/bin/python benchmarks/distill_step.py --threads 2 --json runs/distill_step.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distilnlu.config import DistillLossConfig
from distilnlu.data.masking import MaskingConfig
from distilnlu.modeling.masked_lm import document_inputs, masked_lm_forward
from distilnlu.modeling.presets import build_model, count_parameters, resolve_shape
from distilnlu.training.distill import DistillObjective, DistillStudent
from distilnlu.training.objectives import MLMObjective
from distilnlu.training.schedule import Phase, TeacherSchedule

Batch = dict[str, torch.Tensor]
StepFn = Callable[[Batch], float | None]

FIRST_ORDINARY_ID = 5  # ids 0..4 are the stand-in tokenizer's special tokens
LR = 1e-4
VARIANTS = ("student_mlm", "distill", "naive_distill", "teacher_forward")
LABELS = {
    "student_mlm": "(a) student MLM step",
    "distill": "(b) our distillation step",
    "naive_distill": "(c) naive distillation step",
    "teacher_forward": "(d) teacher forward only",
}


class StandInTokenizer:
    """The few tokenizer attributes MLMObjective / DistillObjective read (no whole-word masking)."""

    bos_token_id = 0
    pad_token_id = 1
    eos_token_id = 2
    mask_token_id = 4
    all_special_ids = (0, 1, 2, 3, 4)

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return self.vocab_size


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vocab", type=int, default=32000, help="vocabulary size V")
    parser.add_argument("--seq-len", type=int, default=64, help="sequence length T")
    parser.add_argument("--batch", type=int, default=32, help="batch size B")
    parser.add_argument("--teacher", default="demo-teacher", help="teacher preset")
    parser.add_argument("--student", default="demo-student", help="student preset")
    parser.add_argument(
        "--packing",
        choices=("isolated", "concatenated"),
        default="isolated",
        help="documents per row attend only to themselves (isolated) or to the whole row",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.vocab <= FIRST_ORDINARY_ID:
        parser.error(f"--vocab must be > {FIRST_ORDINARY_ID}")
    if args.steps < 1 or args.warmup < 0 or args.seq_len < 1 or args.batch < 1:
        parser.error("--steps, --seq-len and --batch must be >= 1 and --warmup >= 0")
    return args


def _row(generator: torch.Generator, seq_len: int, vocab: int, isolate: bool) -> torch.Tensor:
    """One packed row: utterance-sized ``<s> … </s>`` documents (isolate) or plain ids."""
    if not isolate:
        return torch.randint(FIRST_ORDINARY_ID, vocab, (seq_len,), generator=generator)
    row: list[int] = []
    while len(row) < seq_len:
        length = int(torch.randint(8, 17, (1,), generator=generator))
        body = torch.randint(FIRST_ORDINARY_ID, vocab, (length,), generator=generator).tolist()
        row += [StandInTokenizer.bos_token_id, *body, StandInTokenizer.eos_token_id]
    return torch.tensor(row[:seq_len])


def make_batches(
    objective: MLMObjective, count: int, batch: int, seq_len: int, vocab: int
) -> list[Batch]:
    """``count`` masked batches of random ordinary token ids (no padding)."""
    generator = torch.Generator().manual_seed(0)
    isolate = objective.bos_id is not None
    batches = []
    for i in range(count):
        ids = torch.stack([_row(generator, seq_len, vocab, isolate) for _ in range(batch)])
        batches.append(objective.prepare(ids, batch_seed=i))
    return batches


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def make_student_mlm_step(student: nn.Module, tokenizer: StandInTokenizer, isolate: bool) -> StepFn:
    """(a) MLMObjective (masked-only LM head) + backward + AdamW on the student."""
    objective = MLMObjective(tokenizer, MaskingConfig(), isolate)
    optimizer = _optimizer(student)
    student.train()

    def step(batch: Batch) -> float:
        return _update(objective(student, batch)["loss"], optimizer)

    return step


def make_distill_step(
    student: nn.Module,
    teacher: nn.Module,
    tokenizer: StandInTokenizer,
    loss: DistillLossConfig,
    isolate: bool,
) -> StepFn:
    """(b) DistillObjective + DistillStudent (masked-only heads, teacher in inference mode)."""
    objective = DistillObjective(
        tokenizer,
        MaskingConfig(),
        loss,
        TeacherSchedule([Phase(teacher="teacher")]),
        load_teacher=lambda _ref, _device: teacher,
        isolate_documents=isolate,
    )
    model = DistillStudent(student)
    optimizer = _optimizer(model)
    model.train()

    def step(batch: Batch) -> float:
        return _update(objective(model, batch)["loss"], optimizer)

    return step


def naive_distill_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    attention_mask: torch.Tensor,
    loss: DistillLossConfig,
) -> torch.Tensor:
    """Full-vocabulary MLM CE + soft CE on every non-pad token; logits are ``[B, T, V]``."""
    vocab = student_logits.shape[-1]
    mlm = F.cross_entropy(student_logits.view(-1, vocab), labels.view(-1), ignore_index=-100)
    t = loss.temperature
    per_token = -(F.softmax(teacher_logits / t, dim=-1) * F.log_softmax(student_logits / t, -1))
    keep = attention_mask.to(per_token.dtype)
    soft = (per_token.sum(-1) * keep).sum() / keep.sum() * t * t
    return loss.mlm_weight * mlm + loss.soft_weight * soft


def make_naive_distill_step(
    student: nn.Module, teacher: nn.Module, loss: DistillLossConfig
) -> StepFn:
    """(c) Full forwards of both models (logits at every position), KD on every token."""
    optimizer = _optimizer(student)
    student.train()

    def step(batch: Batch) -> float:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        inputs: dict[str, torch.Tensor] = {"input_ids": ids, "attention_mask": mask}
        if "document_ids" in batch:  # the same attention as (b): within documents only
            attention, positions = document_inputs(student, batch["document_ids"], mask)
            inputs.update(attention_mask=attention, position_ids=positions)
        with torch.no_grad():
            teacher_logits = teacher(**inputs).logits
        student_logits = student(**inputs).logits
        total = naive_distill_loss(student_logits, teacher_logits, batch["labels"], mask, loss)
        return _update(total, optimizer)

    return step


def make_teacher_forward_step(teacher: nn.Module) -> StepFn:
    """(d) The teacher forward exactly as (b) runs it: inference mode, masked-only head."""

    def step(batch: Batch) -> None:
        positions = batch["labels"] != -100
        with torch.inference_mode():
            masked_lm_forward(
                teacher,
                batch["input_ids"],
                batch["attention_mask"],
                positions,
                document_ids=batch.get("document_ids"),
            )

    return step


def time_variants(
    steps: dict[str, StepFn], batches: list[Batch], warmup: int, timed: int
) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    """Run the variants round-robin; milliseconds of each timed step and each last loss."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    last_loss: dict[str, float | None] = dict.fromkeys(steps)
    for i in range(warmup + timed):
        batch = batches[i % len(batches)]
        for name, step in steps.items():
            start = time.perf_counter()
            last_loss[name] = step(batch)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed * 1000.0)
    return times, last_loss


def summarise(
    args: argparse.Namespace,
    times: dict[str, list[float]],
    losses: dict[str, float | None],
    params: dict[str, int],
    masked_mean: float,
) -> dict[str, Any]:
    median = {name: statistics.median(values) for name, values in times.items()}
    a, b, c, d = (median[name] for name in VARIANTS)
    b_ratio = b / (a + d)
    c_ratio = c / b
    return {
        "median_ms": median,
        "min_ms": {name: min(values) for name, values in times.items()},
        "final_loss": {name: value for name, value in losses.items() if value is not None},
        "b_over_a_plus_teacher": b_ratio,
        "c_over_b": c_ratio,
        "targets": {
            "b_le_1.2x_a_plus_d": b_ratio <= 1.2,
            "c_over_b_ge_2": c_ratio >= 2.0,
        },
        "shapes": {
            "vocab": args.vocab,
            "seq_len": args.seq_len,
            "packing": args.packing,
            "batch": args.batch,
            "masked_tokens_per_batch": masked_mean,
            "teacher": args.teacher,
            "student": args.student,
            "teacher_params": params["teacher"],
            "student_params": params["student"],
        },
        "steps": args.steps,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def print_report(result: dict[str, Any]) -> None:
    s = result["shapes"]
    print(
        f"V={s['vocab']} T={s['seq_len']} B={s['batch']} "
        f"(~{s['masked_tokens_per_batch']:.0f} masked tokens/batch, {s['packing']} packing); "
        f"teacher {s['teacher']} ({s['teacher_params'] / 1e6:.2f}M), "
        f"student {s['student']} ({s['student_params'] / 1e6:.2f}M); "
        f"torch {result['torch']}, {result['threads']} threads, "
        f"{result['steps']} timed steps after {result['warmup']} warm-up"
    )
    print(f"{'variant':<30} {'median ms':>10} {'min ms':>10} {'last loss':>10}")
    for name in VARIANTS:
        loss = result["final_loss"].get(name)
        loss_text = f"{loss:.4f}" if loss is not None else "-"
        print(
            f"{LABELS[name]:<30} {result['median_ms'][name]:>10.1f} "
            f"{result['min_ms'][name]:>10.1f} {loss_text:>10}"
        )
    targets = result["targets"]
    b_ratio, c_ratio = result["b_over_a_plus_teacher"], result["c_over_b"]
    verdict = {True: "PASS", False: "FAIL"}
    print(f"b / (a + d) = {b_ratio:.3f}  (target <= 1.2): {verdict[targets['b_le_1.2x_a_plus_d']]}")
    print(f"c / b       = {c_ratio:.3f}  (target >= 2.0): {verdict[targets['c_over_b_ge_2']]}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints a table and the JSON result, and returns the result."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = StandInTokenizer(args.vocab)

    teacher = build_model(resolve_shape(args.teacher), args.vocab)
    teacher.eval().requires_grad_(False)
    student = build_model(resolve_shape(args.student), args.vocab)
    loss = DistillLossConfig()
    isolate = args.packing == "isolated"

    steps: dict[str, StepFn] = {
        "student_mlm": make_student_mlm_step(copy.deepcopy(student), tokenizer, isolate),
        "distill": make_distill_step(copy.deepcopy(student), teacher, tokenizer, loss, isolate),
        "naive_distill": make_naive_distill_step(copy.deepcopy(student), teacher, loss),
        "teacher_forward": make_teacher_forward_step(teacher),
    }
    batches = make_batches(
        MLMObjective(tokenizer, MaskingConfig(), isolate),
        min(8, args.warmup + args.steps),
        args.batch,
        args.seq_len,
        args.vocab,
    )
    masked_mean = statistics.mean(float((b["labels"] != -100).sum()) for b in batches)
    times, losses = time_variants(steps, batches, args.warmup, args.steps)
    params = {
        "teacher": count_parameters(teacher)["total"],
        "student": count_parameters(student)["total"],
    }
    result = summarise(args, times, losses, params, masked_mean)
    print_report(result)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
