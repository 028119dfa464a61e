"""Ctrl-C and SIGTERM: stop at the next step boundary with a checkpoint, then say how to resume.

Schedulers (Slurm, Kubernetes) send SIGTERM and wait a grace period before SIGKILL; a user presses
Ctrl-C. Outside training both raise :class:`Interrupted` at once (nothing is lost: every file is
written atomically and finished stages are kept). Inside the training loop, :class:`StopRequests`
only records the signal; the loop takes it into the next step's agreement between processes
(one collective it already makes), finishes that step, writes a checkpoint and raises
:class:`TrainingInterrupted`. A second signal while it does so stops at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Any  # what signal.signal accepts and returns


class Interrupted(BaseException):
    """A signal asked the process to stop. A BaseException (like KeyboardInterrupt) so that no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(message or f"interrupted by {name}; run the same command again to resume")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signum


class TrainingInterrupted(Interrupted):
    """Raised by the training loop after it checkpointed on a stop request."""

    def __init__(self, signum: int, where: str, step: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(
            signum,
            f"interrupted by {name} at step {step} of {where}; checkpoint saved: run the same"
            " command again to resume from it",
        )


def raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def install_process_handlers() -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` (the CLI prints it on one line)."""
    for signum in SIGNALS:
        signal.signal(signum, raise_interrupted)


class StopRequests:
    """Within ``with``: SIGINT / SIGTERM are recorded rather than raised (main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self._restore()  # a second signal acts at once
        name = signal.Signals(signum).name
        print(
            f"\n{name} received: stopping after the next step with a checkpoint (send it again to"
            " stop at once)",
            file=sys.stderr,
            flush=True,
        )
