"""A fine-tuned distilnlu model as one transformers model, *without* distilnlu: the encoder, the
intent head and the slot head, loaded by ``AutoModel.from_pretrained(folder,
trust_remote_code=True)``.

distilnlu saves this file verbatim into every fine-tuned model folder, with ``nlu_parse.py``
(which it imports, for :meth:`DistilNLUModel.parse`), and names it in ``config.json``::

    "auto_map": {"AutoModel": "modeling_nlu.DistilNLUModel"},
    "distilnlu": {"task": "intent_slot", "pooling": "mean", "num_intents": I, "num_slot_tags": S}

It imports only torch, transformers, safetensors, numpy and the standard library.

- **Encoder**: the folder's own transformers model (``config.json``'s ``model_type``, e.g. the
  pre-LayerNorm RoBERTa ``roberta-prelayernorm``), built by ``AutoModel.from_config`` without a
  pooler, its weights read from ``model.safetensors`` as ``AutoModel`` reads them.
- **Heads** (``heads.safetensors``, ``H`` the hidden size): ``intent_head.weight`` ``[I, H]``,
  ``intent_head.bias`` ``[I]``, and for intent + slot models ``slot_head.weight`` ``[S, H]``,
  ``slot_head.bias`` ``[S]``. For a pair (NLI) model the "intents" are the pair labels and there
  is no slot head.
- **Pooling** (the intent head's input): ``mean`` is the average of the last hidden states over
  the positions where ``attention_mask`` is 1, special tokens included; ``cls`` is the first
  position's state. The slot head reads every position's state; a word's tag is read on its
  first sub-token.
- **Labels**: ``labels.json`` ``{"intents": [...], "slot_tags": [...]}`` (ids are list
  positions); ``nlu_config.json`` holds ``task``, ``pooling``, ``max_length`` and the optional
  ``slot_prior`` used in decoding.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput, cached_file

from .nlu_parse import BATCH_SIZE, NLUParser

HEADS_FILE = "heads.safetensors"
LABELS_FILE = "labels.json"
NLU_CONFIG = "nlu_config.json"
CONFIG_KEY = "distilnlu"
PARSE_FILE = "nlu_parse.py"
# from_pretrained arguments that say where files come from; the heads and labels are fetched
# with the same ones as the weights.
_HUB_KWARGS = (
    "cache_dir",
    "force_download",
    "local_files_only",
    "proxies",
    "revision",
    "subfolder",
    "token",
)


@dataclass
class IntentSlotOutput(ModelOutput):
    """``intent_logits`` ``[B, I]``, ``slot_logits`` ``[B, T, S]`` (None for pair models) and
    the encoder's ``last_hidden_state`` ``[B, T, H]``."""

    intent_logits: torch.Tensor | None = None
    slot_logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


def nlu_heads_config(config: PretrainedConfig) -> dict[str, Any]:
    """``config.json``'s ``distilnlu`` entry: task, pooling and the two head sizes."""
    entry = getattr(config, CONFIG_KEY, None)
    if not isinstance(entry, dict) or not {"num_intents", "num_slot_tags"} <= set(entry):
        raise ValueError(
            f"config.json has no {CONFIG_KEY!r} entry with the head sizes; this folder was saved"
            " before distilnlu wrote one (run `distilnlu export FOLDER` once to add it)"
        )
    return entry


def _fetch(source: str | Path, name: str, hub: dict[str, Any]) -> str:
    """The local path of file ``name`` of a folder or hub repo; OSError naming it if absent."""
    path = cached_file(str(source), name, **hub)
    if path is None:  # only with transformers' "do not raise" options, which we do not pass
        raise OSError(f"{source} has no {name}")
    return path


class DistilNLUModel(PreTrainedModel):
    """Encoder + intent head (+ slot head); ``forward`` returns :class:`IntentSlotOutput`,
    :meth:`parse` answers texts exactly as ``distilnlu predict`` does."""

    # Not the encoder's own attribute name ("encoder" is a submodule of RoBERTa-like models):
    # a distinct prefix lets the weights file, saved without one, load unambiguously.
    base_model_prefix = "backbone"
    # The heads come from heads.safetensors, read after the weights file, so they are not
    # "missing" from it; nothing else is ignored.
    _keys_to_ignore_on_load_missing = [r"^intent_head\.", r"^slot_head\."]  # noqa: RUF012
    # transformers picks the attention kernel from the outer class's flags: without this one it
    # would run the encoder eagerly, while distilnlu loads it with sdpa (the default), and only
    # the same kernel gives the same logits to the last bit.
    _supports_sdpa = True

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        heads = nlu_heads_config(config)
        self.task, self.pooling = heads.get("task", "intent_slot"), heads.get("pooling", "mean")
        try:  # a pooler would be unused weights; distilnlu loads its encoders without one
            self.backbone = AutoModel.from_config(
                config, add_pooling_layer=False, trust_remote_code=False
            )
        except TypeError:  # an encoder class without that option
            self.backbone = AutoModel.from_config(config, trust_remote_code=False)
        hidden = config.hidden_size
        self.dropout = nn.Dropout(0.1)  # distilnlu's fine-tuning dropout; off in eval mode
        self.intent_head = nn.Linear(hidden, int(heads["num_intents"]))
        n_tags = int(heads["num_slot_tags"])
        self.slot_head = nn.Linear(hidden, n_tags) if n_tags else None
        self.nlu_labels: dict[str, list[str]] = {}  # labels.json, set by from_pretrained
        self.nlu_settings: dict[str, Any] = {}  # nlu_config.json, set by from_pretrained
        self._parser: tuple[Any, NLUParser] | None = None
        self.post_init()

    @property
    def intents(self) -> list[str]:
        return list(self.nlu_labels.get("intents", []))

    @property
    def slot_tags(self) -> list[str]:
        return list(self.nlu_labels.get("slot_tags", []))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> IntentSlotOutput:
        """``input_ids`` / ``attention_mask`` ``[B, T]``. ``token_type_ids`` is accepted (a
        tokenizer may return it) and not used: distilnlu trains and predicts without it."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # the same expression as distilnlu's, so the floats agree to the last bit
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        intent_logits = self.intent_head(self.dropout(pooled))
        slot_logits = self.slot_head(self.dropout(hidden)) if self.slot_head is not None else None
        return IntentSlotOutput(
            intent_logits=intent_logits, slot_logits=slot_logits, last_hidden_state=hidden
        )

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, *model_args: Any, **kwargs: Any
    ) -> Any:
        """transformers' ``from_pretrained`` (the encoder from the weights file), then the heads
        from ``heads.safetensors`` and the labels and decoding settings from ``labels.json`` and
        ``nlu_config.json``, fetched from the same place with the same arguments."""
        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        if kwargs.get("config") is None:
            kwargs["config"] = AutoConfig.from_pretrained(pretrained_model_name_or_path, **hub)
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info
        model.load_nlu_files(pretrained_model_name_or_path, **hub)
        return loaded

    def load_nlu_files(self, source: str | Path, **hub: Any) -> None:
        """Heads, labels and settings of a saved folder (or hub repo) into this model."""
        heads = load_file(_fetch(source, HEADS_FILE, hub))
        missing, unexpected = self.load_state_dict(heads, strict=False)
        missing = [k for k in missing if not k.startswith(f"{self.base_model_prefix}.")]
        if missing or unexpected:
            raise ValueError(
                f"{source}/{HEADS_FILE} does not fit the model: missing {missing}, unexpected"
                f" {unexpected}"
            )
        labels = json.loads(Path(_fetch(source, LABELS_FILE, hub)).read_text("utf-8"))
        settings = json.loads(Path(_fetch(source, NLU_CONFIG, hub)).read_text("utf-8"))
        sizes = (len(labels["intents"]), len(labels["slot_tags"]) if self.slot_head else 0)
        if sizes != (self.intent_head.out_features, getattr(self.slot_head, "out_features", 0)):
            raise ValueError(f"{source}/{LABELS_FILE} does not fit the heads' sizes")
        self.nlu_labels, self.nlu_settings, self._parser = labels, settings, None

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:  # type: ignore[override]
        """The layout distilnlu writes (encoder folder, heads, label files, these two code
        files), so that both distilnlu and this class load the folder again; the tokenizer is
        saved separately, as with any transformers model."""
        folder = Path(save_directory)
        self.backbone.save_pretrained(folder, **kwargs)
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text("utf-8"))
        config["auto_map"] = {"AutoModel": f"{Path(__file__).stem}.{type(self).__name__}"}
        config[CONFIG_KEY] = nlu_heads_config(self.config)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")
        head_state = {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith(f"{self.base_model_prefix}.")
        }
        save_file(head_state, str(folder / HEADS_FILE))
        for name, content in ((LABELS_FILE, self.nlu_labels), (NLU_CONFIG, self.nlu_settings)):
            text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
            (folder / name).write_text(text, encoding="utf-8")
        here = Path(__file__).resolve()
        for source in (here, here.with_name(PARSE_FILE)):
            shutil.copyfile(source, folder / source.name)

    @torch.no_grad()
    def parse(
        self, texts: Sequence[str], tokenizer: Any, batch_size: int = BATCH_SIZE
    ) -> list[dict[str, Any]]:
        """``distilnlu predict``'s answers: one ``{"text", "intent", "confidence", "slots":
        [{"type", "value", "start", "end"}], "truncated"}`` per text (see ``nlu_parse.py``).

        ``tokenizer``: the folder's, from ``AutoTokenizer.from_pretrained(folder)`` (or a
        ``tokenizers.Tokenizer`` of its ``tokenizer.json``). Runs in eval mode."""
        if not self.nlu_labels:
            raise ValueError(
                "this model has no labels: load it with from_pretrained(folder), which reads"
                f" {LABELS_FILE} and {NLU_CONFIG}"
            )
        if self._parser is None or self._parser[0] is not tokenizer:
            # Built once per tokenizer: it copies the tokenizer's core with its own truncation.
            self._parser = (
                tokenizer,
                NLUParser.from_settings(tokenizer, self.nlu_labels, self.nlu_settings),
            )
        parser = self._parser[1]
        device = next(self.parameters()).device
        training = self.training
        self.eval()

        def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
            out = self(
                torch.from_numpy(input_ids).to(device), torch.from_numpy(attention_mask).to(device)
            )
            assert out.intent_logits is not None and out.slot_logits is not None
            return out.intent_logits.float().cpu().numpy(), out.slot_logits.float().cpu().numpy()

        try:
            return parser.parse(texts, run, batch_size)
        finally:
            self.train(training)
