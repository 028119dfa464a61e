"""Timing helpers shared by ``pick-student`` and ``benchmarks/latency.py``.

Latency here is what one request costs: one utterance at batch 1, from raw text to intent and
slots (word splitting, tokenisation, model, decoding), on a fixed number of CPU threads.
"""

from __future__ import annotations

import platform
import resource
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from distilnlu.evaluation.inference import latency_summary, time_calls


def measure(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 10) -> dict[str, float]:
    """``p50``/``p99``/``n`` of :func:`time_calls`."""
    return latency_summary(time_calls(fn, items, warmup))


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux; elsewhere the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux this is ``VmHWM``, the high-water mark of this process's own address space.
    ``ru_maxrss`` is not: a process started by fork + exec (``multiprocessing``'s spawn) inherits
    the larger of its parent's resident size at the fork and its own, so every benchmark row
    spawned from a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, IndexError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB else


def cpu_name() -> str:
    """The CPU's model name (as ``lscpu`` shows it), where /proc/cpuinfo tells it; else what
    ``platform`` knows. Benchmarks print it with their figures, which follow the CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
