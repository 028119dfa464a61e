"""A corpus of one 10 MB line trains its tokenizer and a few pretraining steps in bounded memory.

Before ``data.max_document_chars``, packing tokenized 256 documents per call and the mixer
repeats a one-document corpus, so one call got 256 copies of the line: the process grew to 23 GB
and was killed; the tokenizer stage failed inside SentencePiece (the line is over its limit).
Now the line is cut to 200,000 characters when read, with one warning line, and the whole run
stays far under 2 GB.
"""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import yaml

from tests.conftest import TINY_RECIPE, TINY_TRAINING

LINE_CHARS = 10_000_000
MAX_RSS_BYTES = 2 << 30
TIMEOUT_S = 300
WARNING = (
    "warning: corpus 'web': 1 document longer than 200,000 characters cut to that length"
    " (1 of 1 read; data.max_document_chars)"
)
WORDS = ["alpha", "beta", "gamma", "delta", "river", "stone", "light", "north", "seven", "ka"]


class Run(NamedTuple):
    returncode: int
    stderr: str
    max_rss_bytes: int
    seconds: float


def huge_line(path: Path, chars: int = LINE_CHARS) -> Path:
    """One line of ``chars`` characters of space-separated words (a repeated random block)."""
    rng = random.Random(0)
    block = " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(20_000)) + " "
    text = (block * (chars // len(block) + 1))[:chars].strip()
    path.write_text(text + "\n", encoding="utf-8")
    return path


def recipe(tmp_path: Path, corpus_file: Path) -> Path:
    """The tiny recipe on one corpus 'web': tokenizer, then pretraining evaluated on 'web'."""
    raw = copy.deepcopy(TINY_RECIPE)
    raw["output_dir"] = str(tmp_path / "runs")
    raw["data"]["corpora"] = {"web": {"sources": [{"path": str(corpus_file), "format": "txt"}]}}
    raw["stages"] = {
        "tokenizer": {"kind": "tokenizer", "corpora": ["web"], "vocab_size": 400},
        "pretrain": {
            "kind": "pretrain",
            "model": "tiny",
            "data": {"web": 1.0},
            "training": {**TINY_TRAINING, "max_steps": 4, "eval_every": 4},
            "eval": {"corpora": ["web"], "max_texts": 20},
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_measured(recipe_file: Path, tmp_path: Path) -> Run:
    """``distilnlu run`` in a subprocess, with that one child's peak RSS (``os.wait4``)."""
    err_file = tmp_path / "stderr.txt"
    started = time.monotonic()
    with open(err_file, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "distilnlu", "run", str(recipe_file)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        while True:  # wait4 rather than wait: the usage of this child alone, not of all children
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > TIMEOUT_S:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise AssertionError(f"the run took over {TIMEOUT_S} s")
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    # ru_maxrss is in KiB on Linux
    return Run(proc.returncode, err_file.read_text(), usage.ru_maxrss * 1024, seconds)


def test_a_ten_megabyte_line_trains_with_one_warning_in_bounded_memory(tmp_path: Path) -> None:
    corpus = huge_line(tmp_path / "web.txt")
    assert corpus.stat().st_size > LINE_CHARS
    run = run_measured(recipe(tmp_path, corpus), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("longer than 200,000 characters") == 1, run.stderr
    assert WARNING in run.stderr.splitlines(), run.stderr
    assert run.max_rss_bytes < MAX_RSS_BYTES, f"peak RSS {run.max_rss_bytes / 2**20:.0f} MiB"
    assert (tmp_path / "runs/tiny/pretrain/metrics.json").is_file()
