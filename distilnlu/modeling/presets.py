"""Model size presets, model building and parameter counting.

Every model distilnlu builds from scratch is a pre-LayerNorm RoBERTa masked LM
(:class:`transformers.RobertaPreLayerNormForMaskedLM`), as in the AlexaTM paper (FitzGerald et al.,
KDD 2022). A shape is given either as a preset name or as a free :class:`ModelShape`.

How parameters are counted
--------------------------
The paper reports *non-embedding* parameter counts, and so does :func:`count_parameters` /
:func:`estimate_parameters`:

* ``embedding`` = word embeddings (``V * h``) + position embeddings (``P * h``) + token-type
  embeddings (``1 * h``; RoBERTa has one segment type). The masked-LM decoder is tied to the word
  embeddings and is counted once, here.
* ``non_embedding`` = everything else: the transformer layers, the embedding and final
  LayerNorms, and the LM head's dense + LayerNorm + output bias (the bias has ``V`` entries, so the
  non-embedding count moves by a little with the vocabulary: +0.25M for a 250k vocabulary).

With hidden size ``h``, FFN size ``f``, ``L`` layers, vocabulary ``V`` and ``P`` positions::

    per layer     = 4h² + 4h        (Q, K, V, output projections)
                  + 2hf + f + h     (FFN)
                  + 4h              (two pre-LayerNorms)
    non_embedding = L * per layer + 2h (embedding LN) + 2h (final LN) + h² + 3h (LM head) + V
    embedding     = (V + P + 1) * h

Which count each AlexaTM preset matches
---------------------------------------
The paper quotes non-embedding counts throughout: its teachers are "9.3B / 2.3B non-embedding
parameters", and its baselines "XLM-R Base (85M params)" and "DistilBERT (42M params)" are the
non-embedding counts of those models (their totals are 270M and 66M). With a 150k-250k
multilingual vocabulary, the embeddings alone of a 768-wide model are 115M-190M parameters, so a
"17M-parameter" student can only be a non-embedding count. All four AlexaTM presets therefore
match **non-embedding** counts. We did not find the paper's exact layer/hidden sizes, so the
shapes below are our choice (head size 64 or 128, FFN = 4 x hidden unless noted); the non-embedding
numbers are for a 32,000-token vocabulary (each extra 100k tokens adds 0.1M through the LM-head
bias and nothing else):

============== ====== ====== ===== ====== ============== ======================================
preset         layers hidden heads FFN    non-embedding  target
============== ====== ====== ===== ====== ============== ======================================
alexatm-9.3b   36     4608   36    18432  9.196B         9.3B non-embedding (-1.1%)
alexatm-2.3b   36     2304   18    9216   2.300B         2.3B non-embedding (-0.0%)
student-170m   24     768    12    3072   170.7M         170M non-embedding (+0.4%)
student-17m    4      512    8     3072   17.1M          17M non-embedding (+0.6%)
============== ====== ====== ===== ====== ============== ======================================

``alexatm-9.3b`` is ``alexatm-2.3b`` at twice the width (4x the parameters). ``student-17m`` has
only 4 layers because batch-1 latency grows with depth (each layer is a chain of small sequential
kernels); to reach 17M at depth 4 and head size 64 its FFN is 6 x hidden (3072) rather than 4x.
For reference, total counts with a 250k vocabulary (XLM-R's 250,002) and 514 positions:
student-17m 145.6M, student-170m 363.4M.

The other presets: ``base`` and ``large`` are the RoBERTa-base/-large shapes; ``tiny`` and
``tiny-64`` are for unit tests; ``demo-teacher`` and ``demo-student`` are sized for the CPU demo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from distilnlu.errors import ConfigError

if TYPE_CHECKING:
    from transformers import RobertaPreLayerNormForMaskedLM

__all__ = [
    "PRESETS",
    "ModelShape",
    "build_model",
    "count_parameters",
    "estimate_parameters",
    "resolve_shape",
]

# RoBERTa uses one token type; keep it so checkpoints look like RoBERTa's.
_TYPE_VOCAB_SIZE = 1
_LAYER_NORM_EPS = 1e-5


class ModelShape(BaseModel):
    """The size of a pre-LN RoBERTa encoder (the vocabulary comes from the tokenizer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_layers: int = Field(gt=0, description="Number of transformer layers.")
    hidden_size: int = Field(gt=0, description="Width of the residual stream (embedding size).")
    num_heads: int = Field(gt=0, description="Attention heads per layer; must divide hidden_size.")
    intermediate_size: int | None = Field(
        default=None,
        gt=0,
        description="Inner size of each feed-forward block; None means 4 * hidden_size.",
    )
    max_position_embeddings: int = Field(
        default=514,
        ge=3,
        description=(
            "Rows of the position-embedding table. RoBERTa offsets positions by pad_token_id + 1,"
            " so the longest input is max_position_embeddings - 2 tokens (514 -> 512)."
        ),
    )
    dropout: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Dropout on hidden states and attention probabilities.",
    )
    tie_embeddings: bool = Field(
        default=True, description="Share the LM decoder weights with the word embeddings."
    )
    embedding_std: float | None = Field(
        default=None,
        gt=0.0,
        description=(
            "Init std of the word and position embeddings (None: the HF default 0.02). With an"
            " untied decoder, 1.0 keeps small models off the unigram plateau (docs/models.md)."
        ),
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelShape:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        return self

    @property
    def ffn_size(self) -> int:
        """The feed-forward inner size actually used (``intermediate_size`` or 4 * hidden)."""
        return (
            self.intermediate_size if self.intermediate_size is not None else 4 * self.hidden_size
        )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def max_length(self) -> int:
        """Longest input sequence (special tokens included) the position table allows."""
        return self.max_position_embeddings - 2


def _shape(layers: int, hidden: int, heads: int, ffn: int, stable: bool = False) -> ModelShape:
    # "stable": the CPU demo's small models learn from a few hundred steps of synthetic text;
    # see _init_embeddings for the embeddings, and dropout only delays leaving the plateau there.
    extra: dict[str, Any] = (
        {"tie_embeddings": False, "embedding_std": 1.0, "dropout": 0.0} if stable else {}
    )
    return ModelShape(
        num_layers=layers, hidden_size=hidden, num_heads=heads, intermediate_size=ffn, **extra
    )


PRESETS: dict[str, ModelShape] = {
    # unit tests
    "tiny": _shape(2, 32, 2, 64),
    "tiny-64": _shape(2, 64, 4, 128),
    # the CPU demo
    "demo-teacher": _shape(4, 128, 4, 512, stable=True),
    "demo-intermediate": _shape(3, 96, 4, 384, stable=True),
    "demo-student": _shape(2, 64, 2, 256, stable=True),
    # AlexaTM sizes (non-embedding counts; see the module docstring)
    "student-17m": _shape(4, 512, 8, 3072),
    "student-170m": _shape(24, 768, 12, 3072),
    "alexatm-2.3b": _shape(36, 2304, 18, 9216),
    "alexatm-9.3b": _shape(36, 4608, 36, 18432),
    # RoBERTa reference shapes
    "base": _shape(12, 768, 12, 3072),
    "large": _shape(24, 1024, 16, 4096),
}


def _format_validation_error(err: pydantic.ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "shape"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _preset(name: str) -> ModelShape:
    key = name.strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}"
            " (or give a shape: num_layers, hidden_size, num_heads[, intermediate_size])"
        )
    return PRESETS[key]


def resolve_shape(spec: str | ModelShape | dict[str, Any]) -> ModelShape:
    """Turn a preset name, a :class:`ModelShape` or a mapping into a :class:`ModelShape`.

    A mapping is either a full shape (``{"num_layers": 2, "hidden_size": 64, "num_heads": 2}``) or a
    preset with overrides (``{"preset": "tiny", "dropout": 0.0}``).

    Raises:
        ConfigError: unknown preset name (the message lists the known ones) or an invalid shape.
    """
    if isinstance(spec, ModelShape):
        return spec
    if isinstance(spec, str):
        return _preset(spec)
    if isinstance(spec, dict):
        fields = dict(spec)
        base: dict[str, Any] = {}
        if "preset" in fields:
            preset = fields.pop("preset")
            if not isinstance(preset, str):
                raise ConfigError(f"model preset must be a name, got {preset!r}")
            base = _preset(preset).model_dump()
        try:
            return ModelShape.model_validate({**base, **fields})
        except pydantic.ValidationError as err:
            raise ConfigError(f"invalid model shape: {_format_validation_error(err)}") from None
    raise ConfigError(
        f"a model shape must be a preset name or a mapping, got {type(spec).__name__}"
    )


def build_model(
    shape: ModelShape,
    vocab_size: int,
    *,
    pad_token_id: int = 1,
    bos_token_id: int = 0,
    eos_token_id: int = 2,
    attn_implementation: str = "sdpa",
) -> RobertaPreLayerNormForMaskedLM:
    """A randomly initialised :class:`~transformers.RobertaPreLayerNormForMaskedLM` of this shape.

    The LM decoder is tied to the word embeddings. Token ids default to the RoBERTa convention
    that :mod:`distilnlu.tokenization` uses (``<s>``=0, ``<pad>``=1, ``</s>``=2).
    """
    from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormForMaskedLM

    shape = resolve_shape(shape)
    if vocab_size <= max(pad_token_id, bos_token_id, eos_token_id):
        raise ConfigError(
            f"vocab_size {vocab_size} is too small for the special token ids "
            f"(pad {pad_token_id}, bos {bos_token_id}, eos {eos_token_id})"
        )
    config = RobertaPreLayerNormConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        intermediate_size=shape.ffn_size,
        max_position_embeddings=shape.max_position_embeddings,
        hidden_dropout_prob=shape.dropout,
        attention_probs_dropout_prob=shape.dropout,
        type_vocab_size=_TYPE_VOCAB_SIZE,
        layer_norm_eps=_LAYER_NORM_EPS,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        tie_word_embeddings=shape.tie_embeddings,
    )
    config.architectures = ["RobertaPreLayerNormForMaskedLM"]
    model = RobertaPreLayerNormForMaskedLM._from_config(
        config, attn_implementation=attn_implementation
    )
    if shape.embedding_std is not None:
        _init_embeddings(model, shape.embedding_std, pad_token_id)
    return model


def _init_embeddings(model: RobertaPreLayerNormForMaskedLM, std: float, pad_token_id: int) -> None:
    """Large-std word/position embeddings (the embedding LayerNorm keeps the forward scale).

    Why: with Adam at lr ~1e-3, 0.02-std embeddings change by ~5% per step and drift towards
    one shared "token frequency" direction, so positions collapse onto one vector and attention
    cannot learn (the MLM "unigram plateau"). Std-1 embeddings barely move relative to their size
    and stay distinct. Only sensible with an untied decoder, whose logits would otherwise be huge.
    """
    embeddings = model.roberta_prelayernorm.embeddings  # the base model
    with torch.no_grad():
        for table in (embeddings.word_embeddings, embeddings.position_embeddings):
            table.weight.normal_(0.0, std)
            table.weight[pad_token_id].zero_()  # padding rows stay zero, as HF initialises them


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Count ``embedding``, ``non_embedding`` and ``total`` parameters of a built model.

    ``embedding`` is every ``nn.Embedding`` weight (word, position, token type) plus the output
    embeddings (LM decoder) when a model has them untied; a tied decoder shares the word-embedding
    tensor and is counted once. ``non_embedding`` is everything else. Works on any model, not only
    the ones :func:`build_model` makes.
    """
    embedding_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            embedding_ids.add(id(module.weight))
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        out = get_out()
        weight = getattr(out, "weight", None)
        if isinstance(weight, torch.nn.Parameter):
            embedding_ids.add(id(weight))

    embedding = non_embedding = 0
    seen: set[int] = set()
    for param in model.parameters():  # parameters() already skips shared tensors; be explicit
        if id(param) in seen:
            continue
        seen.add(id(param))
        if id(param) in embedding_ids:
            embedding += param.numel()
        else:
            non_embedding += param.numel()
    return {
        "embedding": embedding,
        "non_embedding": non_embedding,
        "total": embedding + non_embedding,
    }


def layer_parameters(shape: ModelShape) -> int:
    """Parameters of the transformer layers alone: what every token multiplies through."""
    h, f = shape.hidden_size, shape.ffn_size
    attention = 4 * h * h + 4 * h
    ffn = 2 * h * f + f + h
    layer_norms = 2 * (2 * h)
    return shape.num_layers * (attention + ffn + layer_norms)


def estimate_parameters(
    shape: ModelShape | str | dict[str, Any], vocab_size: int
) -> dict[str, int]:
    """Parameter counts of ``build_model(shape, vocab_size)`` computed without building it.

    Same definitions as :func:`count_parameters` (exactly equal on built models).
    """
    shape = resolve_shape(shape)
    h = shape.hidden_size
    lm_head = h * h + h + 2 * h + vocab_size  # dense, LayerNorm, output bias
    non_embedding = layer_parameters(shape) + 2 * h + 2 * h + lm_head
    embedding = (vocab_size + shape.max_position_embeddings + _TYPE_VOCAB_SIZE) * h
    if not shape.tie_embeddings:
        # Untied, the decoder has its own weight and bias; HF keeps ``lm_head.bias`` as well.
        embedding += vocab_size * h
        non_embedding += vocab_size
    return {
        "embedding": embedding,
        "non_embedding": non_embedding,
        "total": embedding + non_embedding,
    }
