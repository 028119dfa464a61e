"""Inference backends for a fine-tuned model folder: PyTorch eager, ONNX fp32, ONNX int8.

Every backend is a callable ``(input_ids [B, T] int64, attention_mask [B, T] int64) ->
(intent_logits [B, I] float32, slot_logits [B, T, S] float32 | None)`` on NumPy arrays, so the
parser, the service and the benchmarks do not care which one runs.

Answers must not depend on what else is in the batch (the service batches unrelated requests
together). PyTorch and fp32 ONNX mask padding out exactly: a text's argmax answers alone and in a
padded batch are the same (tested). ``model.int8.onnx`` is static int8 (fixed activation scales,
:mod:`distilnlu.deploy.quantize`): batch-invariant too, and run batched. A file from an older
export, dynamically quantised (each activation's scale taken from the whole batch, padding and
the other texts included, so a text's logits moved with its neighbours), lacks the static mark
and is run one text at a time, unpadded (:class:`OnnxBackend` ``one_at_a_time``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from distilnlu.errors import ModelError
from distilnlu.threads import current as current_threads

if TYPE_CHECKING:
    from distilnlu.modeling.classifier import EncoderClassifier

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")
ONNX_FILES: dict[str, str] = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}

Logits = tuple[np.ndarray, np.ndarray | None]
RunFn = Callable[[np.ndarray, np.ndarray], Logits]


def onnx_path(folder: str | Path, backend: str) -> Path:
    return Path(folder) / ONNX_FILES[backend]


def resolve_backend(folder: str | Path, backend: str) -> Backend:
    """``auto`` is the fastest one exported (int8, then fp32 ONNX, then PyTorch)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        for name in ("onnx-int8", "onnx"):
            if onnx_path(folder, name).is_file():
                return name
        return "torch"
    if backend != "torch" and not onnx_path(folder, backend).is_file():
        flag = " --int8" if backend == "onnx-int8" else ""
        raise ModelError(
            f"{folder} has no {ONNX_FILES[backend]}; run `distilnlu export {folder}{flag}` first"
        )
    return backend  # type: ignore[return-value]


class TorchBackend:
    """Eager PyTorch on the CPU (or wherever the model lives)."""

    def __init__(self, model: EncoderClassifier) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Logits:
        intent, slots = self.model(
            torch.from_numpy(input_ids).to(self.device),
            torch.from_numpy(attention_mask).to(self.device),
        )
        return (
            intent.float().cpu().numpy(),
            None if slots is None else slots.float().cpu().numpy(),
        )


class OnnxBackend:
    """An ONNX Runtime session on the CPU; ``threads`` (default: ``--threads`` or a stage's
    ``training.threads``, :func:`distilnlu.threads.current`) caps its intra-op thread pool.

    ``one_at_a_time``: run each row alone, cut to its real length (right padding is assumed, as
    the parser pads), and pad the slot logits back with zeros, for graphs whose results depend on
    the batch (dynamic int8, see the module docstring).
    """

    def __init__(
        self, path: str | Path, threads: int | None = None, one_at_a_time: bool = False
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        threads = threads or current_threads()  # a session's pools are sized when it is made
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load {path}: {exc}") from None
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.one_at_a_time = one_at_a_time

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Logits:
        if self.one_at_a_time and len(input_ids) > 1:
            return self._rows(input_ids, attention_mask)
        return self._run(input_ids, attention_mask)

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Logits:
        result = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return result[0], (result[1] if len(result) > 1 else None)

    def _rows(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Logits:
        lengths = attention_mask.sum(1)
        outs = [
            self._run(input_ids[i : i + 1, :n], attention_mask[i : i + 1, :n])
            for i, n in enumerate(lengths.tolist())
        ]
        intents = np.concatenate([intent for intent, _ in outs])
        if outs[0][1] is None:
            return intents, None
        slots = np.zeros((*input_ids.shape, outs[0][1].shape[-1]), dtype=outs[0][1].dtype)
        for i, (_, row) in enumerate(outs):
            assert row is not None  # one graph: every row has slot logits, or none has
            slots[i, : row.shape[1]] = row[0]
        return intents, slots


def onnx_backend(path: str | Path, backend: str, threads: int | None = None) -> OnnxBackend:
    """The session of an exported file; one text at a time for a dynamic int8 file (the module
    docstring)."""
    from distilnlu.deploy.quantize import STATIC_KEY, STATIC_VALUE

    run = OnnxBackend(path, threads)
    static = run.session.get_modelmeta().custom_metadata_map.get(STATIC_KEY) == STATIC_VALUE
    run.one_at_a_time = backend == "onnx-int8" and not static
    return run


def load_backend(folder: str | Path, backend: str, threads: int | None = None) -> RunFn:
    """The callable for ``backend`` (already resolved: not ``auto``) of a model folder."""
    if backend == "torch":
        from distilnlu.modeling.classifier import load_nlu_model

        if threads:
            torch.set_num_threads(threads)
        return TorchBackend(load_nlu_model(folder))
    return onnx_backend(onnx_path(folder, backend), backend, threads)
