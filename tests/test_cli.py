"""The CLI turns user mistakes into one clear line on stderr (exit 2), never a traceback."""

import json
import subprocess
import sys

import pytest
import yaml
from transformers import GPT2Config

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
