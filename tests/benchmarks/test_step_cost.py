"""benchmarks/step_cost.py: step times from a metrics.jsonl, and the synthetic stand-in data."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_step_costs_leave_out_the_first_step_and_the_evaluation(load_benchmark):
    step_cost = load_benchmark("step_cost")
    times = [0.5, 0.7, 0.9, 1.1, 3.1, 3.3, 3.5]  # step 1 warms up; step 5 follows an eval at 4
    rows = [{"step": s, "loss": 1.0, "time": t} for s, t in enumerate(times, start=1)]
    rows.insert(4, {"step": 4, "eval": {"loss": 2.0}})
    result = step_cost.summarise(rows, eval_step=4)
    assert result["s_per_step"] == 0.2
    assert result["min_s_per_step"] == 0.2
    assert result["eval_s"] == 1.8


def test_synthetic_data_keeps_the_recipes_names(load_benchmark):
    step_cost = load_benchmark("step_cost")
    raw = step_cost.synthetic_data(yaml.safe_load((ROOT / "configs/massive.yaml").read_text()))
    assert "root" not in raw["data"]
    assert set(raw["data"]["labeled"]) == {"massive_train", "massive_dev", "massive_test"}
    assert raw["data"]["labeled"]["massive_dev"]["format"] == "synthetic"
    sources = [s["path"] for c in raw["data"]["corpora"].values() for s in c["sources"]]
    assert all(p.startswith("synthetic:") for p in sources)
