"""Memory figures of the latency helpers: a spawned row reports its own peak, not its parent's."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from distilnlu.deploy.latency import peak_rss_mb, rss_mb

PARENT_MIB = 800


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_spawned_process_reports_its_own_peak_not_its_parents():
    ballast = bytearray(PARENT_MIB * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touch every page: really resident
    assert peak_rss_mb() >= rss_mb() >= PARENT_MIB
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        child_peak = pool.submit(peak_rss_mb).result()
    # A fresh interpreter with torch imported takes about 230 MiB, well below the parent's
    # ballast; ru_maxrss would report at least the parent's size here.
    assert 0 < child_peak < PARENT_MIB - 200
    del ballast
