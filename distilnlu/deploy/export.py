"""ONNX export (dynamic batch and length), static int8 quantisation, and the parity check.

``export_model(folder)`` writes ``model.onnx`` (and with ``int8`` ``model.int8.onnx``) into the
fine-tuned model folder and ``export.json`` next to them: for each exported file, the largest
|logit difference| from PyTorch and how often intents and slot tags agree on a sample of
utterances; with gold labels (the folder's dev predictions, or ``--data``) also each backend's
intent accuracy and slot F1, so a user sees what int8 costs before shipping it. The int8 scales
are calibrated on the first :data:`CALIBRATION_TEXTS` of those utterances. It also
(re)writes the folder's standalone files (``nlu_parse.py`` runs the export without distilnlu).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distilnlu.data.examples import NLUExample
from distilnlu.data.labeled import LabelVocab
from distilnlu.deploy.backends import ONNX_FILES, TorchBackend, onnx_backend, onnx_path
from distilnlu.deploy.parser import Parser, Tagged, Words, split_words
from distilnlu.deploy.quantize import quantize_file
from distilnlu.evaluation.metrics import intent_accuracy, slot_prf
from distilnlu.modeling.classifier import EncoderClassifier
from distilnlu.modeling.nlu_parse import WordEncoder
from distilnlu.modeling.standalone import write_standalone
from distilnlu.rundir import atomic_path, write_json

EXPORT_REPORT = "export.json"
OPSET = 17
PARITY_BATCH = 32
# Utterances for the parity check when the folder has no dev predictions and no --data is given.
FALLBACK_TEXTS = [
    "wake me up at seven am tomorrow",
    "what is the weather like in paris this weekend",
    "play the latest album by taylor swift",
    "turn off the lights in the kitchen",
    "remind me to call mom on friday at five pm",
    "how many teaspoons are in a tablespoon",
    "add milk and eggs to my shopping list",
    "set the volume to twenty percent",
]


def export_onnx(model: EncoderClassifier, path: Path) -> None:
    """Trace ``model`` to ONNX with dynamic batch and sequence axes; written atomically.

    distilnlu's own encoders are traced through :class:`LeanClassifier` (same function, a
    smaller graph: about 7% faster at int8, batch 1); any other encoder as HF wrote it.
    """
    from distilnlu.deploy.lean import LeanClassifier, supports_lean

    traced = LeanClassifier(model) if supports_lean(model) else model
    vocab = model.encoder.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    # A padded batch, so the traced graph has the masking path that real batches take.
    ids = torch.randint(3, vocab, (2, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    sample = {"input_ids": ids, "attention_mask": mask}
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}}
    outputs = ["intent_logits"]
    axes["intent_logits"] = {0: "batch"}
    if getattr(model, "slot_head", None) is not None:
        outputs.append("slot_logits")
        axes["slot_logits"] = {0: "batch", 1: "length"}
    with warnings.catch_warnings(), atomic_path(path) as tmp:
        # The TorchScript exporter warns about every Python branch on a shape; the graph is
        # checked against PyTorch below on real batches of other shapes, which is what matters.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            traced.eval(),
            (sample["input_ids"], sample["attention_mask"]),
            str(tmp),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )


CALIBRATION_TEXTS = 256  # dev utterances whose activation ranges fix the int8 scales


def calibration_feeds(encoder: WordEncoder, texts: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """The model inputs of ``texts``, one unpadded utterance each, encoded as the parser
    encodes them (so the calibrated ranges are those the served model sees)."""
    feeds = []
    for text in texts[:CALIBRATION_TEXTS]:
        ids, mask, _ = encoder.encode_words([split_words(text).words])
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds


def _batches(split: Sequence[Words]) -> list[list[int]]:
    order = sorted(range(len(split)), key=lambda i: len(split[i].words))
    return [order[i : i + PARITY_BATCH] for i in range(0, len(order), PARITY_BATCH)]


def _run_all(parser: Parser, split: Sequence[Words]) -> list[tuple[list[int], Tagged]]:
    return [(rows, parser.tag_words([split[i] for i in rows])) for rows in _batches(split)]


def _max_diff(ref: Tagged, out: Tagged) -> tuple[float, float]:
    """Largest |Δ| of intent logits, and of slot logits over real (unpadded) positions."""
    intent = float(np.abs(ref.intent_logits - out.intent_logits).max())
    slot = 0.0
    if ref.slot_logits is not None and out.slot_logits is not None:
        valid = ref.mask.astype(bool)
        slot = float(np.abs(ref.slot_logits - out.slot_logits)[valid].max())
    return intent, slot


def _flatten(
    runs: list[tuple[list[int], Tagged]], labels: LabelVocab, n: int
) -> tuple[list[str], list[list[str]]]:
    intents: list[str] = [""] * n
    tags: list[list[str]] = [[] for _ in range(n)]
    for rows, out in runs:
        for k, i in enumerate(rows):
            intents[i] = labels.intents[int(out.probs[k].argmax())]
            tags[i] = out.tags[k]
    return intents, tags


def compare(
    reference: Parser, candidate: Parser, texts: Sequence[str], gold: Sequence[NLUExample] = ()
) -> dict[str, Any]:
    """Parity of ``candidate`` against ``reference`` on ``texts`` (and accuracy on ``gold``)."""
    split = [split_words(t) for t in texts]
    ref_runs, cand_runs = _run_all(reference, split), _run_all(candidate, split)
    diffs = [_max_diff(r, c) for (_, r), (_, c) in zip(ref_runs, cand_runs, strict=True)]
    ref_int, ref_tags = _flatten(ref_runs, reference.labels, len(texts))
    cand_int, cand_tags = _flatten(cand_runs, candidate.labels, len(texts))
    words = sum(len(t) for t in ref_tags)
    same_tags = sum(
        a == b for r, c in zip(ref_tags, cand_tags, strict=True) for a, b in zip(r, c, strict=True)
    )
    result: dict[str, Any] = {
        "n": len(texts),
        "max_abs_diff_intent_logits": max(d[0] for d in diffs),
        "max_abs_diff_slot_logits": max(d[1] for d in diffs),
        "intent_agreement": intent_accuracy(ref_int, cand_int),
        "slot_tag_agreement": same_tags / max(words, 1),
        "slot_f1_vs_reference": slot_prf(ref_tags, cand_tags)["f1"],
    }
    if gold:
        gold_int = [ex.intent for ex in gold]
        gold_tags = [list(ex.tags) for ex in gold]
        for name, ints, tags in (
            ("reference", ref_int, ref_tags),
            ("exported", cand_int, cand_tags),
        ):
            result[f"{name}_intent_accuracy"] = intent_accuracy(gold_int, ints)
            result[f"{name}_slot_f1"] = slot_prf(gold_tags, tags)["f1"]
        result["slot_f1_change"] = result["exported_slot_f1"] - result["reference_slot_f1"]
    return result


def export_model(
    folder: str | Path, *, int8: bool = False, sample: Sequence[NLUExample] | Sequence[str] = ()
) -> dict[str, Any]:
    """Export ``folder`` to ONNX (+ int8), check parity on ``sample``, write ``export.json``."""
    folder = Path(folder)
    reference = Parser.load(folder, backend="torch")
    run = reference.run
    assert isinstance(run, TorchBackend)  # backend="torch" above
    model = run.model  # the TorchBackend's model: loaded once
    report: dict[str, Any] = {"model": str(folder), "opset": OPSET, "files": {}}
    start = time.perf_counter()
    export_onnx(model, onnx_path(folder, "onnx"))
    timings = {"onnx": time.perf_counter() - start}
    gold = [x for x in sample if isinstance(x, NLUExample)]
    texts = [x.text if isinstance(x, NLUExample) else x for x in sample] or FALLBACK_TEXTS
    if int8:
        start = time.perf_counter()
        feeds = calibration_feeds(reference, texts)
        quantize_file(onnx_path(folder, "onnx"), onnx_path(folder, "onnx-int8"), feeds)
        timings["onnx-int8"] = time.perf_counter() - start
        report["calibration_texts"] = len(feeds)
    for backend, seconds in timings.items():
        path = onnx_path(folder, backend)
        candidate = Parser(
            onnx_backend(path, backend),  # as predict and serve run it
            reference.tokenizer,
            reference.labels,
            max_length=reference.max_length,
            backend=backend,
            prior=reference.prior,
        )
        parity = compare(reference, candidate, texts, gold)
        report["files"][backend] = {
            "file": ONNX_FILES[backend],
            "megabytes": round(path.stat().st_size / 2**20, 2),
            "export_seconds": round(seconds, 2),
            "parity": parity,
        }
    report["pytorch_megabytes"] = round(
        sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 2
    )
    # nlu_parse.py runs these files with onnxruntime and tokenizers alone; a folder fine-tuned
    # before the standalone files existed gets them (and its config.json auto_map) here.
    write_standalone(folder)
    write_json(folder / EXPORT_REPORT, report)
    return report


def dev_sample(folder: str | Path, limit: int = 2000) -> list[NLUExample]:
    """Gold-labelled utterances saved with the model: its dev-set predictions (else any set's)."""
    files = sorted(Path(folder).glob("predictions-*.jsonl"))
    files.sort(key=lambda p: "dev" not in p.name)  # a dev set first: the test set stays unseen
    if not files:
        return []
    examples = []
    with files[0].open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            words = tuple(row["text"].split())
            if "tags" not in row or len(row["tags"]) != len(words):
                return []  # not an intent + slot predictions file
            examples.append(NLUExample(words, tuple(row["tags"]), row["intent"], ""))
            if len(examples) >= limit:
                break
    return examples
