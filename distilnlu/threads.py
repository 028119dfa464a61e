"""One CPU thread setting for every command: ``distilnlu --threads N`` or a stage's
``training.threads``.

Each library keeps its own pool, and each is sized at a different moment, so one number is
handed to all of them here:

* PyTorch intra-op threads (``torch.set_num_threads``), changeable at any time; inter-op threads
  (``torch.set_num_interop_threads``) only once per process and before any inter-op work, so
  only the command-line flag sets them, at start-up;
* ONNX Runtime sessions, which read :func:`current` when they are made (``deploy/backends.py``);
* Hugging Face tokenizers' Rayon pool, sized from ``RAYON_NUM_THREADS`` when it first starts
  (``TOKENIZERS_PARALLELISM=false`` at one thread: no pool at all), hence the flag's early call;
* OpenMP / MKL in child processes (``accelerate launch`` workers, benchmarks' servers), through
  ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``: this process's own OpenMP runtime read them at
  start-up already, and is sized through torch.

Precedence: the flag over a stage's ``training.threads`` over each library's default. The
SentencePiece trainer keeps its fixed thread count (``tokenization.py``): its pieces depend on
it, and a thread count must not change what a stage produces.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from distilnlu.errors import ConfigError

ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")

_flag: int | None = None
"""``--threads`` of this process: it wins over every stage's ``training.threads``."""
_active: int | None = None
"""The count in force (the flag's or the running stage's); None: the libraries' defaults."""
_interop_tried = False


def parse_threads(text: str, option: str = "--threads") -> int:
    """A thread count given on the command line; a one-line :class:`ConfigError` otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{option} {text!r}: give a whole number of CPU threads, 1 or more (e.g. {option} 4),"
            " or leave it out to let each library choose"
        )
    return value


def current() -> int | None:
    """The thread count in force, for pools made from now on (None: the libraries' defaults)."""
    return _active


def use_flag(threads: int) -> None:
    """``--threads``: applied at once, before any library starts a pool, for the whole process."""
    global _flag
    _flag = threads
    apply_threads(threads, interop=True)


def apply_threads(threads: int, *, interop: bool = False) -> None:
    """Run on ``threads`` CPU threads from here on (see the module docstring for each library).

    ``interop``: also size torch's inter-op pool, which works once per process and only before
    any inter-op work; later calls leave it as it is.
    """
    global _active
    import torch

    torch.set_num_threads(threads)
    if interop:
        _set_interop(threads)
    for key in ENV_KEYS[:3]:
        os.environ[key] = str(threads)
    if threads == 1:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    # More than one: left as the user set it. "true" would also keep the pool on in forked
    # children, where tokenizers turns it off to avoid a deadlock.
    _active = threads


def _set_interop(threads: int) -> None:
    global _interop_tried
    if _interop_tried:
        return
    _interop_tried = True
    import torch

    # RuntimeError: inter-op work already ran in this process, whose pool then stays as it is.
    with suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


@contextmanager
def stage_threads(threads: int | None) -> Iterator[None]:
    """A stage's ``training.threads`` for the duration of the stage, then what was before.

    Nothing changes when it is unset, or when ``--threads`` was given (the flag wins).
    """
    global _active
    if threads is None or _flag is not None:
        yield
        return
    import torch

    before, env, active = torch.get_num_threads(), {k: os.environ.get(k) for k in ENV_KEYS}, _active
    apply_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _active = active
