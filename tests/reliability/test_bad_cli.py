"""Bad command lines: each is one `error:` line naming what to fix, exit 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = {
    "no such recipe": ["run", "nonexistent.yaml", "recipe file not found"],
    "broken YAML": ["run", "broken.yaml", "broken.yaml"],
    "unknown override key": ["run", "demo.yaml", "stages.teacher_stage1.nosuch=1", "nosuch"],
    "override without =": ["run", "demo.yaml", "noequals", "key=value"],
    "empty run name": ["run", "demo.yaml", "name=", "name"],
    "run name with a slash": ["run", "demo.yaml", "name=../elsewhere", "name"],
    "unknown --until": ["run", "demo.yaml", "--until", "nosuch", "--until nosuch"],
    "option without its value": ["run", "demo.yaml", "--until", "requires an argument"],
    "unknown command": ["nosuchcommand", "No such command"],
    "missing argument": ["run", "Missing argument"],
    "extra argument": ["pick-student", "extra", "unexpected extra argument"],
    "bad --vocab-sizes": ["tokenizer", "demo.yaml", "--report", "--vocab-sizes", "abc", "abc"],
    "unknown tokenizer stage": ["tokenizer", "demo.yaml", "--stage", "nosuch", "nosuch"],
    "unknown model preset": [
        "run",
        "demo.yaml",
        "stages.teacher_stage1.model=huge9000",
        "huge9000",
    ],
    "unknown init stage": [
        "run",
        "demo.yaml",
        "stages.teacher_stage2.init=teacher_stage3",
        "stages.teacher_stage2.init='teacher_stage3': not a stage of this recipe",
    ],
    "teacher model that nobody writes": [
        "run",
        "demo.yaml",
        "stages.final_task.teacher=finetune/nosuch",
        "writes no model 'nosuch'",
    ],
    "--threads 0": ["--threads", "0", "run", "demo.yaml", "--threads '0': give a whole number"],
    "negative --threads": ["--threads", "-2", "run", "demo.yaml", "1 or more (e.g. --threads 4)"],
    "non-integer --threads": ["--threads", "two", "report", "runs", "--threads 'two': give"],
    "--threads after the command": [
        "run",
        "demo.yaml",
        "--threads",
        "2",
        "--threads goes before the command: distilnlu --threads N run",
    ],
    "training.threads 0": [
        "run",
        "demo.yaml",
        "stages.teacher_stage1.training.threads=0",
        "stages.teacher_stage1.training.threads",
    ],
    "texts file missing": ["evaluate", "folder", "--texts", "nonexistent.txt", "nonexistent.txt"],
    "not a model folder": ["predict", "folder", "play jazz", "nlu_config.json"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad_cli")
    shutil.copy(ROOT / "configs" / "demo.yaml", root / "demo.yaml")
    (root / "broken.yaml").write_text("name: x\nstages: [1\n")
    (root / "folder").mkdir()
    return root


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_bad_command_line_is_one_error_line(workdir: Path, case: str) -> None:
    *args, needle = CASES[case]
    proc = subprocess.run(
        [sys.executable, "-m", "distilnlu", *args],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert needle in proc.stderr, proc.stderr[-2000:]
    assert not (workdir / "runs").exists(), "a refused command wrote a run folder"
