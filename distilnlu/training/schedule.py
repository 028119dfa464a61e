"""Which teacher a distillation stage uses at each step (DESIGN.md §2).

The AlexaTM recipe distils the intermediate student from the Stage 1 teacher until the student
converges, then from the Stage 2 teacher. A schedule is a list of phases; each but the last ends
after a step count (``until_step``) or when the student's validation loss has not improved by more
than ``min_delta`` for ``patience`` evaluations in a row. The switch happens before the next
optimizer step and is recorded (step, from, to, reason) so that logs and reports can show it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phase:
    """One teacher of a schedule."""

    teacher: str
    until_step: int | None = None
    until_converged: bool = False
    patience: int = 3
    min_delta: float = 0.0


@dataclass
class Switch:
    step: int
    from_teacher: str
    to_teacher: str
    reason: str


@dataclass
class TeacherSchedule:
    """Tracks the active phase; pure bookkeeping, no models (so it is easy to test)."""

    phases: list[Phase]
    index: int = 0
    best: float = math.inf
    bad_evals: int = 0
    switches: list[Switch] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValueError("a teacher schedule needs at least one teacher")

    @property
    def current(self) -> Phase:
        return self.phases[self.index]

    @property
    def is_last(self) -> bool:
        return self.index == len(self.phases) - 1

    def after_step(self, step: int) -> Switch | None:
        """Called after optimizer step ``step``; switches when the step budget is used up."""
        phase = self.current
        if not self.is_last and phase.until_step is not None and step >= phase.until_step:
            return self._advance(step, f"reached step {phase.until_step}")
        return None

    def observe(self, step: int, val_loss: float) -> Switch | None:
        """Record an evaluation; switches when the student stopped improving on this teacher."""
        if math.isfinite(val_loss) and val_loss < self.best - self.current.min_delta:
            self.best, self.bad_evals = val_loss, 0
        else:  # like Keras early stopping: a gain within min_delta does not move the best
            self.bad_evals += 1
        phase = self.current
        if not self.is_last and phase.until_converged and self.bad_evals >= phase.patience:
            return self._advance(
                step, f"converged: no improvement > {phase.min_delta} in {phase.patience} evals"
            )
        return None

    def _advance(self, step: int, reason: str) -> Switch:
        switch = Switch(step, self.current.teacher, self.phases[self.index + 1].teacher, reason)
        self.index += 1
        self.best, self.bad_evals = math.inf, 0
        self.switches.append(switch)
        return switch

    def state_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "best": self.best if math.isfinite(self.best) else None,
            "bad_evals": self.bad_evals,
            "switches": [asdict(s) for s in self.switches],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.index = int(state["index"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad_evals = int(state["bad_evals"])
        self.switches = [Switch(**s) for s in state["switches"]]
