"""``pick-student``: the largest student shape that meets a latency budget on this machine.

The AlexaTM paper chose a 17M-parameter student for its runtime latency; this makes that choice
a measurement. Each candidate is built with random weights (latency does not depend on the
values), given MASSIVE-sized heads (60 intents, 55 slot types), and timed as one request: one
utterance of 12-16 sub-tokens at batch 1, raw text to intent and slots, on ``threads`` threads.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from distilnlu.data.labeled import LabelVocab
from distilnlu.deploy.backends import OnnxBackend, RunFn, TorchBackend
from distilnlu.deploy.latency import measure
from distilnlu.deploy.parser import Parser, split_words
from distilnlu.errors import ConfigError
from distilnlu.evaluation.inference import torch_threads
from distilnlu.modeling.classifier import EncoderClassifier
from distilnlu.modeling.nlu_parse import WordEncoder
from distilnlu.modeling.presets import PRESETS, ModelShape, build_model, estimate_parameters

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

# Widths x depths of the default grid; heads of size 64, FFN 4x (RoBERTa's proportions).
GRID_HIDDEN = (256, 384, 512, 768)
GRID_LAYERS = (2, 4, 6, 8, 12)
HEAD_INTENTS, HEAD_SLOT_TYPES = 60, 55  # MASSIVE's label inventory
_SHAPE = re.compile(r"^(\d+)x(\d+)(?:x(\d+))?$")


@dataclass
class Candidate:
    name: str
    shape: ModelShape
    non_embedding: int = 0
    p50: float | None = None
    p99: float | None = None
    fits: bool = False
    note: str = ""


@dataclass
class PickResult:
    budget_ms: float
    threads: int
    backend: str
    tokens: str
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def chosen(self) -> Candidate | None:
        fitting = [c for c in self.candidates if c.fits]
        return max(fitting, key=lambda c: c.non_embedding) if fitting else None

    def table(self) -> str:
        lines = [
            f"Students at batch 1, {self.threads} thread(s), {self.backend}, utterances of "
            f"{self.tokens} sub-tokens (raw text to intent + slots); budget p50 ≤ "
            f"{self.budget_ms:g} ms",
            f"{'candidate':<14}{'layers':>7}{'hidden':>7}{'FFN':>6}{'non-emb':>9}"
            f"{'p50 ms':>9}{'p99 ms':>9}  fits",
        ]
        for c in self.candidates:
            s = c.shape
            p50 = f"{c.p50:.2f}" if c.p50 is not None else "-"
            p99 = f"{c.p99:.2f}" if c.p99 is not None else "-"
            fits = "yes" if c.fits else (c.note or "no")
            lines.append(
                f"{c.name:<14}{s.num_layers:>7}{s.hidden_size:>7}{s.ffn_size:>6}"
                f"{c.non_embedding / 1e6:>8.1f}M{p50:>9}{p99:>9}  {fits}"
            )
        best = self.chosen
        lines.append(
            f"\nLargest within budget: {best.name} ({best.non_embedding / 1e6:.1f}M non-embedding,"
            f" p50 {best.p50:.2f} ms)"
            if best
            else "\nNo candidate meets the budget: raise it, or give smaller --candidates."
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        rows = [
            {**asdict(c), "shape": c.shape.model_dump(), "non_embedding": c.non_embedding}
            for c in self.candidates
        ]
        best = self.chosen
        return {
            "budget_ms": self.budget_ms,
            "threads": self.threads,
            "backend": self.backend,
            "tokens": self.tokens,
            "candidates": rows,
            "chosen": best.name if best else None,
        }


def parse_candidates(spec: str | None) -> list[Candidate]:
    """Preset names or ``LxH`` / ``LxHxFFN`` shapes (heads of 64), or the default grid."""
    if not spec:
        grid = [
            Candidate(f"{layers}x{hidden}", _grid_shape(layers, hidden))
            for hidden in GRID_HIDDEN
            for layers in GRID_LAYERS
        ]
        return [*grid, Candidate("student-17m", PRESETS["student-17m"])]
    out = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        match = _SHAPE.match(item)
        if match:
            layers, hidden, ffn = match.groups()  # LxH always there, xFFN optional
            shape = _grid_shape(int(layers), int(hidden), int(ffn) if ffn else None)
            out.append(Candidate(item, shape))
        elif item.lower() in PRESETS:
            out.append(Candidate(item.lower(), PRESETS[item.lower()]))
        else:
            raise ConfigError(
                f"candidate {item!r} is neither a preset ({', '.join(PRESETS)}) nor LxH[xFFN]"
            )
    return out


def _grid_shape(layers: int, hidden: int, ffn: int | None = None) -> ModelShape:
    if hidden % 64 and hidden >= 64:
        raise ConfigError(f"hidden size {hidden} is not a multiple of the head size 64")
    return ModelShape(
        num_layers=layers,
        hidden_size=hidden,
        num_heads=max(hidden // 64, 1),
        intermediate_size=ffn,
        dropout=0.0,
    )


def parse_token_range(tokens: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", tokens.strip())
    if not match:
        raise ConfigError(f"--tokens {tokens!r}: expected N or LOW-HIGH, e.g. 12-16")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 3 <= low <= high:
        raise ConfigError(f"--tokens {tokens!r}: need 3 <= LOW <= HIGH")
    return low, high


def default_tokenizer() -> PreTrainedTokenizerFast:
    """A Unigram tokenizer trained on the built-in assistant utterances (a few seconds)."""
    from distilnlu.data.synthetic import domain_utterances
    from distilnlu.tokenization import train_tokenizer

    return train_tokenizer(domain_utterances(3000, seed=0), 4000)


def utterances(tokenizer: PreTrainedTokenizerBase, low: int, high: int, n: int) -> list[str]:
    """``n`` built-in utterances whose model input (specials included) has low..high tokens."""
    from distilnlu.data.synthetic import domain_utterances

    pool = domain_utterances(max(20 * n, 2000), seed=7)
    lengths = tokenizer([split_words(t).words for t in pool], is_split_into_words=True)
    chosen = [
        t for t, ids in zip(pool, lengths["input_ids"], strict=True) if low <= len(ids) <= high
    ]
    if not chosen:
        raise ConfigError(f"no built-in utterance has {low}-{high} tokens with this tokenizer")
    return [chosen[i % len(chosen)] for i in range(n)]


def head_labels() -> LabelVocab:
    types = [f"slot_{i:02d}" for i in range(HEAD_SLOT_TYPES)]
    tags = ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
    return LabelVocab([f"intent_{i:02d}" for i in range(HEAD_INTENTS)], tags)


def candidate_runner(
    shape: ModelShape,
    vocab_size: int,
    labels: LabelVocab,
    backend: str,
    threads: int,
    work: Path,
    calibration: Sequence[dict[str, np.ndarray]] = (),
) -> RunFn:
    """A random-weight student of ``shape`` behind the chosen backend (int8: scales calibrated
    on ``calibration``, the model inputs of the utterances it is timed on)."""
    torch.manual_seed(0)
    model = EncoderClassifier(build_model(shape, vocab_size).roberta_prelayernorm, labels).eval()
    if backend == "torch":
        return TorchBackend(model)
    from distilnlu.deploy.export import export_onnx
    from distilnlu.deploy.quantize import quantize_file

    fp32 = work / "model.onnx"
    export_onnx(model, fp32)
    if backend == "onnx":
        return OnnxBackend(fp32, threads)
    if not calibration:
        raise ValueError("int8 needs calibration inputs")
    quantize_file(fp32, work / "model.int8.onnx", calibration)
    return OnnxBackend(work / "model.int8.onnx", threads)


def int8_calibration(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[dict[str, np.ndarray]]:
    """Model inputs of ``texts`` to calibrate a candidate's int8 scales on."""
    from distilnlu.deploy.export import calibration_feeds

    return calibration_feeds(WordEncoder(tokenizer, max_length, tokenizer.pad_token_id), texts)


def _no_smaller(shape: ModelShape, than: ModelShape) -> bool:
    """Same width, at least as deep and with at least as wide an FFN: at least as slow."""
    return (
        shape.hidden_size == than.hidden_size
        and shape.num_layers >= than.num_layers
        and shape.ffn_size >= than.ffn_size
    )


def pick_student(
    *,
    budget_ms: float,
    threads: int = 1,
    backend: str = "onnx-int8",
    candidates: str | None = None,
    tokenizer: Path | None = None,
    tokens: str = "12-16",
    repeats: int = 100,
    progress: bool = True,
) -> PickResult:
    """Time every candidate (deeper ones of a width are skipped once one is over budget)."""
    from tqdm.auto import tqdm

    from distilnlu.tokenization import load_tokenizer

    if backend not in ("torch", "onnx", "onnx-int8"):
        raise ConfigError(f"--backend {backend!r}: choose torch, onnx or onnx-int8")
    low, high = parse_token_range(tokens)
    tok = load_tokenizer(tokenizer) if tokenizer else default_tokenizer()
    texts = utterances(tok, low, high, repeats)
    labels = head_labels()
    result = PickResult(budget_ms, threads, backend, tokens, parse_candidates(candidates))
    # The same utterances calibrate every candidate's int8 scales and are timed on it.
    feeds = int8_calibration(tok, texts, high + 8) if backend == "onnx-int8" else []
    over: list[ModelShape] = []  # shapes over budget: as wide and no smaller is over too
    bar = tqdm(result.candidates, desc="pick-student", unit="shape", disable=not progress)
    for cand in bar:
        shape = cand.shape
        cand.non_embedding = estimate_parameters(shape, len(tok))["non_embedding"]
        if any(_no_smaller(shape, o) for o in over):
            cand.note = "skipped (a smaller one is over)"
            continue
        bar.set_postfix_str(cand.name)
        with tempfile.TemporaryDirectory() as work, torch_threads(threads):
            run = candidate_runner(shape, len(tok), labels, backend, threads, Path(work), feeds)
            parser = Parser(run, tok, labels, max_length=high + 8, backend=backend)

            def parse_one(text: str, parser: Parser = parser) -> list[dict[str, Any]]:
                return parser.parse([text])

            stats = measure(parse_one, texts)
        cand.p50, cand.p99 = stats["p50"], stats["p99"]
        cand.fits = cand.p50 <= budget_ms
        if not cand.fits:
            over.append(shape)
    return result
