"""Shared by the standalone tests: a fine-tuned folder with a slot prior, a dev set, the docs
snippets, a Python that cannot import distilnlu, and ``distilnlu predict``'s own output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from distilnlu.cli import app

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "deployment.md"
SECTION = "## Using a model without distilnlu"
DOCS_FOLDER = '"runs/demo/finetune/final"'
STANDALONE = ("modeling_nlu.py", "nlu_parse.py")

# Beyond the synthetic dev utterances: odd whitespace (offsets must count it), punctuation,
# non-ASCII, one word, and one far past max_length=32 sub-tokens (truncated: true).
EDGE_TEXTS = [
    "  set   an alarm\tfor  seven  ",
    "what's the weather, today?!",
    "Ünïcödé café naïve 東京",
    "hi",
    " ".join(["play the next song by the band from the kitchen speaker"] * 5),
]


def dev_texts(examples: list, n: int = 40) -> list[str]:
    return [ex.text for ex in examples[:n]] + EDGE_TEXTS


def skewed_prior(n_tags: int, weight: float):
    """A slot prior that strongly prefers staying on ``O``: strong enough to change some
    answers, so a standalone copy that ignored it would fail the comparison."""
    from distilnlu.evaluation.decoding import TagPrior

    rng = np.random.default_rng(0)
    start = rng.integers(0, 5, n_tags)
    bigrams = rng.integers(0, 5, (n_tags, n_tags))
    start[0], bigrams[0, 0] = 2000, 2000
    return TagPrior(start, bigrams, weight)


def make_prior_folder(source: Path, dest: Path) -> Path:
    """``source`` (a fine-tuned folder) saved again by ``save_pretrained``, with a slot prior."""
    from distilnlu.modeling.classifier import load_nlu_model
    from distilnlu.tokenization import load_tokenizer

    model = load_nlu_model(source)
    model.slot_prior = skewed_prior(len(model.labels.slot_tags), 0.7)
    model.save_pretrained(dest, extra={"max_length": 32})
    load_tokenizer(source).save_pretrained(dest)
    return dest


def make_old_folder(source: Path, dest: Path) -> Path:
    """A copy of ``source`` as fine-tuning wrote it before the standalone files existed."""
    shutil.copytree(source, dest)
    for name in STANDALONE:
        (dest / name).unlink()
    config = json.loads((dest / "config.json").read_text())
    del config["auto_map"], config["distilnlu"]
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def docs_snippet(marker: str) -> str:
    """The python block of the docs section that contains ``marker``."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    found = [b for b in blocks if marker in b]
    assert len(blocks) == 2 and len(found) == 1, f"expected 2 python blocks, one with {marker!r}"
    return found[0]


def fill_snippet(code: str, folder: Path, texts: list[str], **replace: str) -> str:
    """The docs snippet on ``folder`` and ``texts`` instead of the docs' own."""
    assert code.count(DOCS_FOLDER) == 1, "the snippet no longer names the docs' folder"
    code = code.replace(DOCS_FOLDER, repr(str(folder)))
    code, n = re.subn(r"^texts = \[.*\]$", f"texts = {texts!r}", code, flags=re.MULTILINE)
    assert n == 1, "the snippet no longer has one `texts = [...]` line"
    for old, new in replace.items():
        assert code.count(old) == 1, f"the snippet no longer holds {old!r}"
        code = code.replace(old, new)
    return code


def run_without_distilnlu(code: str, tmp: Path) -> str:
    """Run ``code`` in a fresh Python that cannot import distilnlu; its stdout.

    ``-I -S``: no site processing, so the editable install's path hook (a ``.pth`` file) is not
    loaded, and neither the working directory nor the script's is on ``sys.path``; the
    environment's packages are added as a plain path. The program first checks that
    ``import distilnlu`` fails, and says so on stderr.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    guard = (
        "import sys\n"
        f"sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
        "try:\n"
        "    import distilnlu\n"
        "except ImportError as exc:\n"
        "    print('distilnlu not importable:', type(exc).__name__, file=sys.stderr)\n"
        "else:\n"
        "    raise SystemExit(f'distilnlu is importable from {distilnlu.__file__}')\n"
    )
    program = tmp / "snippet.py"
    program.write_text(guard + code, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "HF_HOME": str(tmp / "hf"),
        "HF_MODULES_CACHE": str(tmp / "hf_modules"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(program)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distilnlu not importable: ModuleNotFoundError" in done.stderr
    return done.stdout


def predict_stdout(folder: Path, texts: list[str], backend: str) -> str:
    """``distilnlu predict FOLDER TEXT... --backend BACKEND``'s stdout, run in-process."""
    result = CliRunner().invoke(app, ["predict", str(folder), *texts, "--backend", backend])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="session")
def hf_modules(tmp_path_factory):
    """transformers' remote-code module cache in a temporary folder, for in-process loads.

    One for the whole session: the first load imports the cache's ``transformers_modules``
    package, and later loads resolve their relative imports through that package."""
    from transformers import dynamic_module_utils

    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("hf_modules")
        patch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(path))
        yield path
