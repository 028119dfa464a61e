"""The CLI turns user mistakes into one clear line on stderr (exit 2), never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from transformers import GPT2Config

from distilnlu.threads import ENV_KEYS
from tests.conftest import TINY_RECIPE


def cli(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "distilnlu", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def assert_clean_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def write_recipe(tmp_path, mutate=None):
    raw = json.loads(json.dumps(TINY_RECIPE))
    raw["output_dir"] = str(tmp_path / "runs")
    if mutate:
        mutate(raw)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def jsonl_domain(raw, path):
    raw["data"]["corpora"]["domain"] = {"sources": [{"path": str(path), "text_field": "text"}]}


def test_help_is_readable():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("run", "pretrain", "tokenizer", "evaluate"):
        assert command in proc.stdout


def test_unknown_config_key_names_key_and_file(tmp_path):
    path = write_recipe(tmp_path, lambda r: r["data"].update(onerror="skip"))
    assert_clean_error(cli("run", path), str(path), "data.onerror: unknown key")


def test_unknown_override_key(tmp_path):
    assert_clean_error(cli("run", write_recipe(tmp_path), "seeed=3"), "seeed: unknown key")


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    data = tmp_path / "domain.jsonl"
    data.write_text('{"text": "play jazz"}\n{"text": broken\n')
    path = write_recipe(tmp_path, lambda r: jsonl_domain(r, data))
    assert_clean_error(cli("run", path), "domain.jsonl", ":2")


def test_empty_corpus(tmp_path):
    data = tmp_path / "empty.txt"
    data.write_text("\n\n")
    path = write_recipe(
        tmp_path, lambda r: r["data"]["corpora"]["domain"].update(sources=[{"path": str(data)}])
    )
    assert_clean_error(cli("run", path), "empty.txt", "no documents")


def test_non_utf8_bytes_stop_or_are_skipped_and_counted(tmp_path):
    data = tmp_path / "domain.txt"
    data.write_bytes(b"play some jazz\nturn \xff\xfe on the lights\nwhat time is it\n" * 50)
    path = write_recipe(
        tmp_path, lambda r: r["data"]["corpora"]["domain"].update(sources=[{"path": str(data)}])
    )
    assert_clean_error(cli("run", path, "--until", "tokenizer"), "domain.txt", ":2")
    proc = cli("run", path, "--until", "tokenizer", "data.on_error=skip")
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in (proc.stderr + proc.stdout).lower()
    assert "skipped 50 bad record(s)" in proc.stderr, proc.stderr  # the second line of each three
    metrics = json.loads((tmp_path / "runs/tiny/tokenizer/metrics.json").read_text())
    assert metrics["trained_on"] == 300 + 100  # the public documents and the 100 good lines


def test_teacher_path_that_is_not_a_masked_lm(tmp_path):
    not_mlm = tmp_path / "gpt2"
    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(not_mlm)
    path = write_recipe(tmp_path)
    proc = cli(
        "run",
        path,
        f"stages.teacher_stage2.init={not_mlm}",
        "--until",
        "teacher_stage2",
        "stages.teacher_stage1.training.max_steps=2",
    )
    assert_clean_error(proc, str(not_mlm), "masked")


@pytest.mark.parametrize("args", [["run", "missing.yaml"], ["evaluate", "nowhere"]])
def test_missing_paths(tmp_path, args):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


THREADS_PROBE = """
import json, os, sys
import distilnlu.pipeline
from distilnlu import cli

def probe(*args, **kwargs):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    before = len(os.listdir("/proc/self/task"))
    tok.encode_batch(["a b c d e f"] * 5000)  # starts the tokenizers' Rayon pool
    print(json.dumps({
        "torch": torch.get_num_threads(),
        "interop": torch.get_num_interop_threads(),
        "rayon_threads": len(os.listdir("/proc/self/task")) - before,
        "omp_env": os.environ.get("OMP_NUM_THREADS"),
    }))
    sys.exit(0)

distilnlu.pipeline.run_recipe = probe
sys.argv = ["distilnlu", *sys.argv[1:]]
cli.main()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_threads_flag_sizes_every_pool_in_a_fresh_process(tmp_path):
    """In a new process, as a user runs it: torch's intra- and inter-op pools, the tokenizers'
    Rayon pool (sized when it first starts) and the environment children inherit."""
    recipe = write_recipe(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", THREADS_PROBE, "--threads", "3", "run", str(recipe)],
        capture_output=True,
        text=True,
        timeout=300,
        # As a user's shell has it: nothing an earlier test (or its forks) set for the pools.
        env={k: v for k, v in os.environ.items() if k not in ENV_KEYS},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"torch": 3, "interop": 3, "rayon_threads": 3, "omp_env": "3"}


def test_run_ends_with_the_commands_that_ship_the_recommended_model(tmp_path, capsys) -> None:
    from distilnlu.cli import _deploy_hint
    from distilnlu.config import load_recipe
    from tests.evaluation.test_recommend import make_run

    run_dir = make_run(tmp_path)  # final (listed last) is worse than final_task, the choice
    (run_dir / "final_task" / "final").mkdir()
    cfg = load_recipe(Path("configs/demo.yaml"), [f"output_dir={tmp_path}", "name=fake"])
    _deploy_hint(cfg)
    out = capsys.readouterr().out
    assert f"distilnlu export {run_dir / 'final_task' / 'final'} --int8" in out
    cfg = load_recipe(
        Path("configs/demo.yaml"),
        [f"output_dir={tmp_path}", "name=fake", "report.latency_budget_ms=10"],
    )
    (run_dir / "finetune" / "teacher").mkdir(parents=True)
    _deploy_hint(cfg)  # a budget the teacher fits: the teacher, the most accurate
    assert f"distilnlu export {run_dir / 'finetune' / 'teacher'} --int8" in capsys.readouterr().out
