"""Objectives map a batch to a dict of named losses; ``"loss"`` is what the loop optimises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn
from transformers import PreTrainedModel

from distilnlu.data.corpus import document_ids
from distilnlu.data.masking import MaskingConfig, mask_tokens, random_candidates
from distilnlu.modeling.masked_lm import masked_lm_logits
from distilnlu.tokenization import word_start_table
from distilnlu.training.losses import IntentSlotLoss, MaskedLMLoss


class Objective(Protocol):
    """What the training loop needs from an objective.

    Optional extras, looked up with ``getattr`` by the loop: ``after_step(step)`` and
    ``after_eval(step, evaluation)`` may return a dict that is logged (e.g. a teacher switch;
    ``"stop": True`` in it ends training early);
    ``state_dict()`` / ``load_state_dict(state)`` carry the objective's own state (a teacher
    schedule) through checkpoints.
    """

    def prepare(self, input_ids: torch.Tensor, batch_seed: int) -> dict[str, torch.Tensor]:
        """Turn a ``[B, T]`` id batch into model inputs (CPU, before device placement)."""

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named scalar losses for one batch; ``"loss"`` is the one to back-propagate."""


class MLMObjective:
    """Masked-LM pretraining with dynamic masks drawn per batch (80/10/10 by default).

    ``isolate_documents``: the batches hold documents packed with ``<s> doc </s>`` framing
    (``training.packing: isolated``); each batch then carries ``document_ids`` so that every
    document attends only to itself, with its own positions.
    """

    def __init__(self, tokenizer, masking: MaskingConfig, isolate_documents: bool = False) -> None:
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


class MaskedLMModel(nn.Module):
    """A masked LM whose forward gives logits at the masked positions only (``[N, V]``).

    The training loop hands this module to Accelerate, so a DDP/FSDP wrapper sees the forward
    that computes the loss, and the vocabulary projection still runs on the N masked rows only
    (calling a wrapped model's sub-modules directly would bypass its gradient hooks).
    """

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor,
        document_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return masked_lm_logits(
            self.model, input_ids, attention_mask, positions, document_ids=document_ids
        )


class EarlyStopping:
    """Best dev score so far and evaluations since it improved (checkpointed with the objective)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -float("inf")
        self.best_step = 0
        self.since_best = 0

    def update(self, step: int, score: float) -> bool:
        """Record an evaluation; True when it is the best so far."""
        if score > self.best:
            self.best, self.best_step, self.since_best = score, step, 0
            return True
        self.since_best += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.since_best >= self.patience

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "best_step": self.best_step, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best = float(state["best"])
        self.best_step, self.since_best = int(state["best_step"]), int(state["since_best"])


class ClassificationObjective:
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

    def prepare(self, batch: dict[str, torch.Tensor], batch_seed: int) -> dict[str, torch.Tensor]:
        return batch

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        intent_logits, slot_logits = model(batch["input_ids"], batch["attention_mask"])
        return self.loss(
            intent_logits, batch["intent_labels"], slot_logits, batch.get("slot_labels")
        )

    def after_eval(self, step: int, evaluation: dict) -> dict | None:
        if self.stopper.update(step, self.score(evaluation["dev"])) and self.on_best is not None:
            self.on_best(step)
        if not self.stopper.should_stop:
            return None
        best = {"best_step": self.stopper.best_step, "best": self.stopper.best}
        return {"early_stop": best, "stop": True}

    def state_dict(self) -> dict[str, float | int]:
        return self.stopper.state_dict()

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.stopper.load_state_dict(state)
