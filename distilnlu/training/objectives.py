"""Objectives map a batch to a dict of named losses; ``"loss"`` is what the loop optimises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import torch
from torch import nn
from transformers import PreTrainedModel

from distilnlu.data.corpus import document_ids
from distilnlu.data.masking import MaskingConfig, mask_tokens, random_candidates
from distilnlu.modeling.masked_lm import masked_lm_logits
from distilnlu.tokenization import word_start_table
from distilnlu.training.losses import IntentSlotLoss, MaskedLMLoss

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

RawBatch = TypeVar("RawBatch")
"""What the batch stream yields: ``[B, T]`` id tensors (pretraining) or ready dicts."""
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Event:
    """What an objective tells the loop after a step or an evaluation.

    ``log``: values written to ``metrics.jsonl`` under the step (a teacher switch, the early-stop
    decision); ``stop``: end training now (early stopping).
    """

    log: dict[str, Any] = field(default_factory=dict)
    stop: bool = False


class Objective(Generic[RawBatch]):
    """What the training loop needs from an objective: ``prepare`` and ``__call__``.

    The hooks are no-ops here; an objective overrides the ones it needs (a teacher schedule
    reacts to steps and evaluations and carries its own state through checkpoints).
    """

    def prepare(self, raw: RawBatch, batch_seed: int) -> Batch:
        """Turn one raw batch into model inputs (CPU, before device placement); ``batch_seed``
        seeds anything random (masks) so a resumed run redraws the same."""
        raise NotImplementedError

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Named scalar losses for one batch; ``"loss"`` is the one to back-propagate."""
        raise NotImplementedError

    def after_step(self, step: int) -> Event | None:
        return None

    def after_eval(self, step: int, evaluation: dict[str, Any]) -> Event | None:
        return None

    def state_dict(self) -> dict[str, Any] | None:
        """The objective's own resumable state (None: it has none)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class TrainedModule(nn.Module):
    """What the loop trains around the model a stage saves: ``inner`` is that model.

    The loop hands this module to Accelerate, so a DDP/FSDP wrapper sees the forward that
    computes the loss; a sharded engine's gathered weights of ``inner`` are what is saved.
    """

    inner: PreTrainedModel


class MLMObjective(Objective[torch.Tensor]):
    """Masked-LM pretraining with dynamic masks drawn per batch (80/10/10 by default).

    ``isolate_documents``: the batches hold documents packed with ``<s> doc </s>`` framing
    (``training.packing: isolated``); each batch then carries ``document_ids`` so that every
    document attends only to itself, with its own positions.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        masking: MaskingConfig,
        isolate_documents: bool = False,
    ) -> None:
        self.masking = masking
        self.bos_id = tokenizer.bos_token_id if isolate_documents else None
        self.mask_id = tokenizer.mask_token_id
        self.pad_id = tokenizer.pad_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.candidates = random_candidates(len(tokenizer), self.special_ids.tolist())
        self.word_start = word_start_table(tokenizer) if masking.whole_word else None
        self.loss = MaskedLMLoss()

    def prepare(self, input_ids: torch.Tensor, batch_seed: int) -> dict[str, torch.Tensor]:
        # A generator seeded per batch makes masks a pure function of (seed, batch index): a resumed
        # run redraws exactly the masks the uninterrupted run drew.
        generator = torch.Generator().manual_seed(batch_seed)
        maskable = ~torch.isin(input_ids, self.special_ids)
        word_start = self.word_start[input_ids] if self.word_start is not None else None
        masked, labels = mask_tokens(
            input_ids,
            maskable=maskable,
            mask_token_id=self.mask_id,
            random_token_ids=self.candidates,
            config=self.masking,
            generator=generator,
            word_start=word_start,
        )
        attention_mask = (input_ids != self.pad_id).long()
        batch = {"input_ids": masked, "attention_mask": attention_mask, "labels": labels}
        if self.bos_id is not None:
            # From the unmasked ids: <s> is never masked, but this keeps it obviously safe.
            batch["document_ids"] = document_ids(input_ids, self.bos_id)
        return batch

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``model``: a bare HF masked LM, or a :class:`MaskedLMModel` (possibly wrapped by
        DDP/FSDP, whose forward must be the call that computes the loss)."""
        positions = batch["labels"] != -100
        ids, mask, docs = batch["input_ids"], batch["attention_mask"], batch.get("document_ids")
        if isinstance(model, PreTrainedModel):
            logits = masked_lm_logits(model, ids, mask, positions, document_ids=docs)
        else:
            logits = model(ids, mask, positions, docs)
        mlm = self.loss(logits, batch["labels"][positions])
        return {"loss": mlm, "mlm": mlm.detach()}


class MaskedLMModel(TrainedModule):
    """A masked LM whose forward gives logits at the masked positions only (``[N, V]``).

    The vocabulary projection runs on the N masked rows only, inside the wrapped forward
    (calling a wrapped model's sub-modules directly would bypass its gradient hooks).
    """

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.inner = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor,
        document_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return masked_lm_logits(
            self.inner, input_ids, attention_mask, positions, document_ids=document_ids
        )


class EarlyStopping:
    """Best dev score so far and evaluations without a real gain (checkpointed with the objective).

    Any gain moves ``best`` (the weights worth keeping); only a gain of more than ``min_delta``
    over the last real gain resets the patience count, so a plateau that creeps up by noise-sized
    steps still ends training.
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = -float("inf")
        self.best_step = 0
        self.anchor = -float("inf")  # the score of the last gain above min_delta
        self.since_best = 0

    def update(self, step: int, score: float) -> bool:
        """Record an evaluation; True when it is the best so far."""
        improved = score > self.best
        if improved:
            self.best, self.best_step = score, step
        if score > self.anchor + self.min_delta:
            self.anchor, self.since_best = score, 0
        else:
            self.since_best += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.since_best >= self.patience

    def state_dict(self) -> dict[str, float | int]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "since_best": self.since_best,
            "anchor": self.anchor,
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best = float(state["best"])
        self.best_step, self.since_best = int(state["best_step"]), int(state["since_best"])
        self.anchor = float(state.get("anchor", self.best))


class ClassificationObjective(Objective[Batch]):
    """Fine-tuning: intent + slot (or pair-label) cross-entropy, stopping early on dev.

    Batches come ready from :func:`distilnlu.data.finetune.training_batches`. After each
    evaluation, ``score(evaluation["dev"])`` updates ``stopper``; an improvement calls
    ``on_best(step)`` (the stage saves the best weights there), and once the score has not
    improved for ``patience`` evaluations ``after_eval`` asks the loop to stop.
    """

    def __init__(
        self,
        slot_weight: float,
        stopper: EarlyStopping,
        score: Callable[[dict], float],
        on_best: Callable[[int], None] | None = None,
    ) -> None:
        self.loss = IntentSlotLoss(slot_weight)
        self.stopper, self.score, self.on_best = stopper, score, on_best

    def prepare(self, raw: Batch, batch_seed: int) -> Batch:
        return raw

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        intent_logits, slot_logits = model(batch["input_ids"], batch["attention_mask"])
        return self.loss(
            intent_logits, batch["intent_labels"], slot_logits, batch.get("slot_labels")
        )

    def after_eval(self, step: int, evaluation: dict[str, Any]) -> Event | None:
        if self.stopper.update(step, self.score(evaluation["dev"])) and self.on_best is not None:
            self.on_best(step)
        if not self.stopper.should_stop:
            return None
        best = {"best_step": self.stopper.best_step, "best": self.stopper.best}
        return Event({"early_stop": best}, stop=True)

    def state_dict(self) -> dict[str, Any]:
        return self.stopper.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stopper.load_state_dict(state)
