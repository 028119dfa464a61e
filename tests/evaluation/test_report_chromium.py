"""The report page in headless Chromium (tests/chromium.py): at 1,280 px nothing runs off the
right edge, so the latency column of the comparison tables stays in view."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.chromium import chromium, needs_chromium
from tests.evaluation.test_recommend import make_run
from tests.evaluation.test_report import _finetune_stage, _lm_run, _manifest, _pair_stage

pytestmark = needs_chromium

WINDOW = (1280, 900)
MEASURE = """
const view = document.documentElement.clientWidth;
const over = Array.from(document.querySelectorAll('table, img')).filter(
  e => e.getBoundingClientRect().right > view + 0.5
).map(e => (e.previousElementSibling || {}).textContent || e.tagName);
return {view: view, page: document.documentElement.scrollWidth, over: over};
"""


def _widest_run(root: Path) -> Path:
    """The report test's run: a held-out table over two corpora, a comparison table with every
    column, per-language tables and a pair view."""
    run = _lm_run(root / "fake")
    stages = {"tokenizer": "tokenizer", "teacher_stage1": "pretrain", "teacher_stage2": "pretrain"}
    stages |= {"final": "distill", "finetune": "finetune", "finetune_pairs": "finetune"}
    _manifest(run, stages)
    _finetune_stage(run)
    _pair_stage(run)
    return run


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the IHDR chunk
    return width, height


def _check(browser, page: Path, shot: Path) -> None:
    browser.window(*WINDOW)
    browser.go(page.resolve().as_uri())
    found = browser.execute(MEASURE)
    browser.screenshot(shot)
    assert _png_size(shot)[0] == WINDOW[0]
    assert found["over"] == [], f"past the right edge at {WINDOW[0]} px (see {shot})"
    assert found["page"] <= found["view"], f"the page scrolls sideways (see {shot})"


def test_the_report_fits_a_1280_px_window(tmp_path) -> None:
    from distilnlu.evaluation import report

    wide = report.write_report(_widest_run(tmp_path / "a"))
    recommended = report.write_report(make_run(tmp_path / "b"))
    (tmp_path / "chromium").mkdir()
    with chromium(tmp_path / "chromium") as browser:
        _check(browser, wide, tmp_path / "wide.png")
        _check(browser, recommended, tmp_path / "recommended.png")
