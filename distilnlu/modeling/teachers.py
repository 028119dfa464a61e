"""Teachers for distillation: loading for inference, tokenizer checks, student initialisation.

Logit distillation compares teacher and student distributions token by token, so both must use
the same vocabulary with the same ids. :func:`check_same_tokenizer` compares them from the
tokenizer files alone, before any model weights are read or any batch is computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import PreTrainedModel

from distilnlu.errors import ConfigError, ModelError
from distilnlu.modeling.loading import load_masked_lm

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_SPECIALS = ("bos_token_id", "pad_token_id", "eos_token_id", "unk_token_id", "mask_token_id")


def check_same_tokenizer(
    student_tok: PreTrainedTokenizerBase, teacher_tok: PreTrainedTokenizerBase, teacher_name: str
) -> None:
    """Raise ConfigError unless the two tokenizers map every token to the same id."""
    s_vocab, t_vocab = student_tok.get_vocab(), teacher_tok.get_vocab()
    if s_vocab != t_vocab:
        differ = sum(1 for tok, i in s_vocab.items() if t_vocab.get(tok) != i)
        differ += sum(1 for tok in t_vocab if tok not in s_vocab)
        examples = [tok for tok, i in s_vocab.items() if t_vocab.get(tok) != i][:5]
        raise ConfigError(
            f"teacher '{teacher_name}' uses a different tokenizer from the student (vocabulary"
            f" sizes {len(t_vocab)} and {len(s_vocab)}, {differ} entries differ, e.g."
            f" {examples}); logit distillation needs one shared tokenizer: give the student the"
            " teacher's tokenizer"
        )
    for attr in _SPECIALS:
        if getattr(student_tok, attr, None) != getattr(teacher_tok, attr, None):
            raise ConfigError(
                f"teacher '{teacher_name}' and the student disagree on {attr} "
                f"({getattr(teacher_tok, attr, None)} vs {getattr(student_tok, attr, None)})"
            )


def load_teacher(source: str, dtype: torch.dtype, device: torch.device | str) -> PreTrainedModel:
    """A masked LM ready for inference: eval mode, no gradients, in ``dtype`` on ``device``."""
    model = load_masked_lm(source)
    # transformers wraps .to in functools.wraps(nn.Module.to): typeshed's _Wrapped drops `self`.
    model.to(device=device, dtype=dtype)  # type: ignore[call-arg]
    model.eval()
    model.requires_grad_(False)
    return model


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ModelError(f"{type(model).__name__}: cannot find encoder.layer to copy layers from")
    return layers


def init_student_from_teacher(student: nn.Module, teacher: nn.Module, layers: list[int]) -> None:
    """Copy the teacher's embeddings, LM head, final norm and chosen layers into the student.

    ``layers`` are 1-based teacher layer indices, one per student layer, in order. Width, heads
    and FFN size must match (the shapes of every copied tensor are checked).
    """
    s_layers, t_layers = _encoder_layers(student), _encoder_layers(teacher)
    if len(layers) != len(s_layers):
        raise ConfigError(
            f"init_from_teacher.layers lists {len(layers)} layers but the student has "
            f"{len(s_layers)}"
        )
    bad = [i for i in layers if not 1 <= i <= len(t_layers)]
    if bad:
        raise ConfigError(f"init_from_teacher.layers {bad} out of range 1..{len(t_layers)}")
    t_state = teacher.state_dict()
    mapping = {f"encoder.layer.{s}.": f"encoder.layer.{t - 1}." for s, t in enumerate(layers)}
    new_state = {}
    for name, tensor in student.state_dict().items():
        source = name
        for s_prefix, t_prefix in mapping.items():
            if s_prefix in name:
                source = name.replace(s_prefix, t_prefix)
                break
        if source not in t_state:
            raise ConfigError(f"init_from_teacher: the teacher has no parameter '{source}'")
        if t_state[source].shape != tensor.shape:
            raise ConfigError(
                f"init_from_teacher: '{name}' has shape {tuple(tensor.shape)} in the student but"
                f" {tuple(t_state[source].shape)} in the teacher; copying layers needs the same"
                " width, head count and FFN size"
            )
        new_state[name] = t_state[source].to(tensor.dtype)
    student.load_state_dict(new_state)
