"""The base of every config section, and the optimisation settings all training stages share.

Its own module so that the stage-kind config modules can import it without a cycle through
:mod:`distilnlu.config`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from distilnlu.errors import ConfigError


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainingConfig(StrictModel):
    """Optimisation settings of one training stage."""

    max_steps: int | None = Field(
        None, gt=0, description="Optimizer steps (with `epochs`: the smaller of the two budgets)."
    )
    epochs: float | None = Field(
        None,
        gt=0,
        description=(
            "Fine-tuning only: passes over the training set. The step budget is the smaller of"
            " this and max_steps, and the learning-rate schedule decays over it to its end."
        ),
    )
    batch_size: int = Field(32, gt=0, description="Sequences per micro-batch per process.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    seq_len: int = Field(128, ge=8, description="Packed sequence length incl. <s> and </s>.")
    lr: float = Field(5e-4, gt=0, description="Peak learning rate.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Decay after warm-up."
    )
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay (not on norms/bias).")
    adam_betas: tuple[float, float] = Field((0.9, 0.98), description="AdamW betas.")
    adam_eps: float = Field(1e-6, gt=0, description="AdamW epsilon.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping; 0 disables it.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Mixed precision mode.")
    log_every: int = Field(10, gt=0, description="Progress-bar refresh interval in steps.")
    eval_every: int = Field(100, gt=0, description="Held-out evaluation interval in steps.")
    checkpoint_every: int = Field(100, gt=0, description="Resumable checkpoint interval in steps.")
    max_nonfinite: int = Field(
        20, ge=0, description="Stop when this many consecutive steps had a non-finite loss."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description=(
            "CPU threads of this stage (torch, ONNX Runtime, tokenizers; distilnlu.threads);"
            " `distilnlu --threads N` wins over it. None: each library's default. Not part of"
            " the stage hash: it changes the speed, not what is trained."
        ),
    )
    attention: Literal["sdpa", "eager", "varlen"] = Field(
        "sdpa",
        description=(
            "Attention kernel for isolated packing. sdpa: a dense block-diagonal mask through"
            " SDPA (on a GPU that rules out its flash kernel); eager: the same mask through"
            " plain matmul + softmax (faster than SDPA under bf16 on a CPU, docs/performance.md);"
            " varlen: no mask, the documents' boundaries to FlashAttention's variable-length"
            " kernel (nested-tensor SDPA on the CPU; distilnlu.modeling.varlen). varlen needs the"
            " model's dropout at 0. Not part of the stage hash: the same function, another"
            " kernel."
        ),
    )
    compile: bool = Field(
        False,
        description=(
            "torch.compile the trained module's forward and backward (in place: the saved"
            " weights are unchanged). Meant for GPUs: on the CPU measured here it gained"
            " nothing, and the first step paid 5-30 s of compilation (docs/sizing.md). A CPU"
            " needs a C++ compiler. Compiled dropout draws other masks than plain PyTorch's."
            " One process only. Not part of the stage hash."
        ),
    )
    shuffle_buffer: int = Field(256, ge=1, description="Packed sequences shuffled together.")
    packing: Literal["isolated", "concatenated"] = Field(
        "isolated",
        description=(
            "isolated: each packed document is framed <s> … </s>, attends only to itself and"
            " has its own positions, as when encoded alone (short utterances learn context far"
            " sooner, docs/models.md); concatenated: RoBERTa's FULL-SENTENCES packing, attention"
            " across document boundaries."
        ),
    )

    @model_validator(mode="after")
    def _budget(self) -> TrainingConfig:
        if self.max_steps is None and self.epochs is None:
            raise ValueError("set training.max_steps (fine-tuning stages: or training.epochs)")
        return self

    def steps(self, batches_per_epoch: int | None = None) -> int:
        """The optimizer-step budget; ``batches_per_epoch`` (micro-batches of all processes)
        is needed when ``epochs`` is set."""
        budgets = [self.max_steps] if self.max_steps is not None else []
        if self.epochs is not None:
            if batches_per_epoch is None:
                raise ConfigError("training.epochs is only valid for fine-tuning stages")
            budgets.append(max(1, math.ceil(self.epochs * batches_per_epoch / self.grad_accum)))
        return min(budgets)

    def for_epochs(self, batches_per_epoch: int) -> TrainingConfig:
        """This config with ``max_steps`` the resolved budget (what the loop runs)."""
        return self.model_copy(update={"max_steps": self.steps(batches_per_epoch), "epochs": None})
