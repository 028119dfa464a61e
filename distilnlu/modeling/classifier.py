"""Task heads on any encoder: joint intent + slot model, sentence-pair classifier (DESIGN.md §5).

A saved model folder is a plain HF encoder folder (``AutoModel.from_pretrained`` loads it), plus
``heads.safetensors`` (the task heads), ``nlu_config.json`` (task, pooling, encoder mode) and
``labels.json`` (the label maps built from the training data), plus the tokenizer. Keeping the
encoder in HF's own format means any HF tool can read it; :func:`load_nlu_model` puts the heads
back on. The folder also gets ``modeling_nlu.py`` and ``nlu_parse.py`` and a ``config.json``
``auto_map`` (:mod:`distilnlu.modeling.standalone`), so that ``transformers`` alone loads the
whole model with ``trust_remote_code=True``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import logging as hf_logging

from distilnlu.data.labeled import LabelVocab
from distilnlu.errors import ModelError
from distilnlu.evaluation.decoding import TagPrior
from distilnlu.modeling.loading import damaged_weights, looks_like_hub_id
from distilnlu.modeling.standalone import write_standalone
from distilnlu.rundir import write_json
from distilnlu.tasks import INTENT_SLOT, Task, task_named

HEADS_FILE = "heads.safetensors"
NLU_CONFIG = "nlu_config.json"

logger = logging.getLogger(__name__)


def load_encoder(source: str | Path) -> PreTrainedModel:
    """The bare encoder (no LM head, no pooler) of a masked-LM or encoder folder / hub id."""
    local = not looks_like_hub_id(source)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    # Loading an encoder out of a masked-LM checkpoint drops the LM head on purpose; HF's
    # "weights not used" warning would only alarm the user, and a stage loads many encoders.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        try:
            return AutoModel.from_pretrained(
                str(source), add_pooling_layer=False, local_files_only=local
            )
        except TypeError:  # a model class without a pooler option
            return AutoModel.from_pretrained(str(source), local_files_only=local)
    except SafetensorError as exc:
        raise ModelError(damaged_weights(source, exc)) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load an encoder from {source}: {exc}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class EncoderClassifier(nn.Module):
    """Encoder + intent (or pair-label) head on the pooled sentence, + optional slot head.

    ``forward(input_ids [B, T], attention_mask [B, T])`` returns ``(intent_logits [B, I],
    slot_logits [B, T, S])``; for a task without slots (pairs) the second item is ``None``.
    Slot logits are given for every sub-token; training and decoding use the first sub-token of
    each word.
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        labels: LabelVocab,
        task: Task = INTENT_SLOT,
        pooling: Literal["mean", "cls"] = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not labels.intents:
            raise ModelError("the label vocabulary has no intents / classes")
        if task.has_slots and not labels.slot_tags:
            raise ModelError("a joint intent + slot model needs slot tags (at least 'O')")
        hidden = encoder.config.hidden_size
        self.encoder, self.labels, self.task, self.pooling = encoder, labels, task, pooling
        self.frozen = False
        self.slot_prior: TagPrior | None = None  # set after training (tuned on dev), saved
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, len(labels.intents))
        self.slot_head = nn.Linear(hidden, len(labels.slot_tags)) if task.has_slots else None

    def freeze_encoder(self) -> None:
        """Train the heads only: the encoder gets no gradients and stays in eval mode."""
        self.frozen = True
        for param in self.encoder.parameters():
            param.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> EncoderClassifier:
        super().train(mode)
        if self.frozen:  # a frozen encoder is a fixed feature extractor: no dropout in it
            self.encoder.eval()
        return self

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        intent_logits, slot_logits, _ = self.forward_states(input_ids, attention_mask)
        return intent_logits, slot_logits

    def forward_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, hidden_states: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
        """``forward`` plus, with ``hidden_states``, the encoder's per-layer states ``[B, T, H]``
        (embeddings first), for hidden-state matching."""
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=hidden_states
        )
        hidden = out.last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        intent_logits = self.intent_head(self.dropout(pooled))
        slot_logits = self.slot_head(self.dropout(hidden)) if self.slot_head is not None else None
        return intent_logits, slot_logits, out.hidden_states if hidden_states else None

    def head_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("encoder.")
        }

    def save_pretrained(self, folder: Path, extra: dict | None = None) -> None:
        """HF encoder folder + heads + label maps + task settings (see the module docstring)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder)
        save_file(self.head_state(), str(folder / HEADS_FILE))
        self.labels.save(folder)
        settings = {
            "task": self.task.name,
            "pooling": self.pooling,
            "encoder": "frozen" if self.frozen else "full",
            **(extra or {}),
        }
        if self.slot_prior is not None:
            settings["slot_prior"] = self.slot_prior.to_json()
        write_json(folder / NLU_CONFIG, settings)
        # Last: it reads the label files above. It makes the folder loadable without distilnlu.
        write_standalone(folder)


def read_nlu_config(folder: str | Path) -> dict:
    path = Path(folder) / NLU_CONFIG
    if not path.is_file():
        raise ModelError(
            f"{folder} is not a fine-tuned NLU model folder (no {NLU_CONFIG}); fine-tune one with"
            " a `finetune` stage"
        )
    return json.loads(path.read_text())


def load_nlu_model(folder: str | Path) -> EncoderClassifier:
    """A fine-tuned model folder back as an :class:`EncoderClassifier` (eval mode)."""
    folder = Path(folder)
    settings = read_nlu_config(folder)
    model = EncoderClassifier(
        load_encoder(folder),
        LabelVocab.load(folder),
        task=task_named(settings["task"]),
        pooling=settings.get("pooling", "mean"),
    )
    try:
        heads = load_file(str(folder / HEADS_FILE))
    except (OSError, SafetensorError) as exc:
        raise ModelError(damaged_weights(folder / HEADS_FILE, exc)) from None
    missing, unexpected = model.load_state_dict(heads, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise ModelError(f"{folder}/{HEADS_FILE} does not fit the model: {missing or unexpected}")
    model.slot_prior = read_slot_prior(folder, settings, len(model.labels.slot_tags))
    return model.eval()


def read_slot_prior(folder: str | Path, settings: dict, n_tags: int) -> TagPrior | None:
    """The slot prior of a model folder's ``nlu_config.json`` (None when it has none)."""
    raw = settings.get("slot_prior")
    if raw is None:
        return None
    try:
        return TagPrior.from_json(raw, n_tags)
    except ValueError as exc:
        raise ModelError(
            f"{Path(folder) / NLU_CONFIG}: slot_prior: {exc}; fine-tune the model again or"
            " delete the key to decode without the prior"
        ) from None
