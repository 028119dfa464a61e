"""``benchmarks/service_load.py``, reduced, on the tiny model and every backend (slow: three real
servers, each held through a stall of its read timeout)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "service_load.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("service_load_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_service_under_load_and_hostile_clients_on_every_backend(tiny_nlu_dir, tmp_path):
    bench = load_script()
    out = tmp_path / "rows.json"
    argv = [str(tiny_nlu_dir), "--backend", "all", "--requests", "600", "--poisoned", "40"]
    argv += ["--stalled", "100", "--disconnects", "10", "--read-timeout", "1", "--unique", "60"]
    rows = bench.main([*argv, "--json", str(out)])
    assert [r.backend for r in rows] == ["torch", "onnx", "onnx-int8"]
    for row in rows:
        assert row.good_failed == 0, row
        assert row.poisoned_4xx == row.poisoned == 40, row.poison_statuses
        assert row.differences == 0, row
        assert row.stalled_closed == row.stalled_408 == 100, row
        assert row.stalled_last_close_s < 1 + 2.0
        assert row.health_during.startswith("ok") and row.health_after.startswith("ok")
        assert row.disconnect_lines == 10 and row.tracebacks == 0
        assert bench.passed(row)
    assert out.is_file()
    assert not list(Path(tiny_nlu_dir).glob("*.onnx"))  # exported into a copy, not the folder
