"""Loading the benchmark scripts (``benchmarks/*.py`` are scripts, not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def load_benchmark():
    """``load_benchmark("latency")`` imports ``benchmarks/latency.py`` as a fresh module."""

    def load(name: str) -> ModuleType:
        path = BENCHMARKS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
