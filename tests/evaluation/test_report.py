"""Run report: a fake run folder with the exact layout the stages write, rendered once."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from distilnlu import rundir
from distilnlu.errors import DataError
from distilnlu.evaluation import plots, render, report, run_view

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LM_EVAL = {"domain_dev": (18.5, 0.18), "public_dev": (300.0, 0.01)}
# source -> (EM, intent acc., SemER) on the primary set "test", full encoder. teacher_stage1 is
# the baseline; its "lm" is null, so its perplexity comes from its own stage's evaluation.
SCORES = {"final": (0.812, 0.91, 0.12), "teacher_stage2": (0.80, 0.93, 0.11)}
SCORES["teacher_stage1"] = (0.75, 0.88, 0.15)
LM = {"final": (18.5, 0.18), "teacher_stage2": (10.1, 0.23), "teacher_stage1": None}
STAGE1_PPL, STAGE1_FILL = 40.0, 0.10


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def _write_lines(path: Path, rows: list[dict[str, Any]], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def _lm_eval(ppl: float, fill: float) -> dict[str, Any]:
    return {
        "loss": math.log(ppl),
        "perplexity": ppl,
        "masked_tokens": 406,
        "mask_fill_accuracy": fill,
        "mask_fill_n": 300,
    }


def _lm_stage(run: Path, name: str, ppl: float, fill: float, switch: bool = False) -> None:
    """metrics.json + metrics.jsonl of a pretrain (or, with ``switch``, distill) stage."""
    metrics: dict[str, Any] = {
        "stage": name,
        "steps": 200,
        "tokens": 409600,
        "nonfinite_skipped": 0,
        "parameters": {"embedding": 625440, "non_embedding": 351408, "total": 976848},
        "eval": {"domain_dev": _lm_eval(ppl, fill), "public_dev": _lm_eval(10 * ppl, fill / 4)},
    }
    event = {"step": 100, "from_teacher": "teacher_stage1", "to_teacher": "teacher_stage2"}
    event["reason"] = "reached step 100"
    if switch:
        metrics |= {"teachers": ["teacher_stage1", "teacher_stage2"], "teacher_switches": [event]}
    _write(run / name / "metrics.json", metrics)
    rows: list[dict[str, Any]] = []
    for step in range(1, 201):
        row = {"step": step, "loss": 12 - step / 40, "mlm": 6 - step / 80}
        row |= {"soft": 6 - step / 80} if switch else {}
        rows.append(row | {"lr": 1e-3, "tokens": 2048 * step, "time": 0.1 * step})
        if step % 50 == 0:
            evals = {c: _lm_eval(ppl * (1 + 200 / step), fill * step / 200) for c in LM_EVAL}
            rows.append({"step": step, "eval": evals})
        if switch and step == 100:
            rows.append({"step": 100, "teacher_switch": event})
    rows.append({"step": 150, "nonfinite_skipped": 1})
    _write_lines(run / name / "metrics.jsonl", rows, tail='{"step": 201, "loss": 3.')  # killed


def _nlu_eval(em: float, intent: float, semer: float, language: str) -> dict[str, Any]:
    return {
        "intent_accuracy": intent,
        "slot_f1": 0.9,
        "slot_precision": 0.91,
        "slot_recall": 0.89,
        "exact_match": em,
        "semer": semer,
        "n": 300,
        "language": language,
    }


def _nlu_model(source: str, encoder: str) -> dict[str, Any]:
    em, intent, semer = SCORES[source]
    if encoder == "frozen":  # frozen encoders: 0.2 lower everywhere, SemER 0.2 higher
        em, intent, semer = em - 0.2, intent - 0.2, semer + 0.2
    lm = LM[source]
    return {
        "source": source,
        "encoder": encoder,
        "folder": f"runs/fake/finetune/{source}",
        "parameters": {"embedding": 625440, "non_embedding": 351408, "total": 976848},
        "lm": None if lm is None else {"perplexity": lm[0], "mask_fill_accuracy": lm[1]},
        "steps": 300,
        "best_step": 250,
        "seconds": 12.3,
        "eval": {
            "dev": _nlu_eval(em + 0.01, intent, semer, "en-US"),
            "test": _nlu_eval(em, intent, semer, "en-US"),
            "massive_de": _nlu_eval(em - 0.1, intent - 0.1, semer + 0.1, "de-DE"),
        },
        "latency_ms": {"p50": 1.9, "p99": 3.2, "n": 200},
    }


def _pair_model(source: str, en: float, de: float) -> dict[str, Any]:
    evals = {
        "dev": {"accuracy": en + 0.01, "n": 100, "language": "en"},
        "test": {"accuracy": en, "n": 100, "language": "en"},
        "xnli_de": {"accuracy": de, "n": 100, "language": "de"},
    }
    return {"source": source, "encoder": "full", "lm": None, "eval": evals}  # no latency


def _finetune_rows(em: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step in range(1, 301):
        rows.append({"step": step, "loss": 3 - step / 150, "intent": 1.0, "slots": 1.0})
        if step % 50 == 0:
            score = em * (1 - math.exp(-step / 60))
            rows.append({"step": step, "eval": {"dev": {"exact_match": score}}})
    return rows


def _finetune_stage(run: Path) -> None:
    models = {}
    for encoder in ("full", "frozen"):
        for source in SCORES:
            key = source if encoder == "full" else f"{source}-frozen"
            models[key] = _nlu_model(source, encoder)
            em = models[key]["eval"]["dev"]["exact_match"]
            _write_lines(run / "finetune" / key / "metrics.jsonl", _finetune_rows(em))
    metrics = {"stage": "finetune", "task": "intent_slot", "baseline": "teacher_stage1"}
    metrics |= {"lm_corpus": "domain_dev", "primary": "test", "models": models}
    _write(run / "finetune" / "metrics.json", metrics)


def _pair_stage(run: Path) -> None:
    models = {"final": _pair_model("final", 0.7, 0.6)}
    models["teacher_stage1"] = _pair_model("teacher_stage1", 0.65, 0.5)
    metrics = {"stage": "finetune_pairs", "task": "pair", "baseline": "teacher_stage1"}
    metrics |= {"lm_corpus": None, "primary": "test", "models": models}
    _write(run / "finetune_pairs" / "metrics.json", metrics)


def _manifest(run: Path, stages: dict[str, str]) -> None:
    entries = {
        name: {
            "hash": "0123456789abcdef",
            "kind": kind,
            "output": f"runs/fake/{name}",
            "seconds": 10.0 * (i + 1),
            "finished": f"2026-01-01T00:0{i}:00",
        }
        for i, (name, kind) in enumerate(stages.items())
    }
    _write(run / "manifest.json", {"stages": entries})


LM_STAGES = {"tokenizer": "tokenizer", "teacher_stage1": "pretrain"}
LM_STAGES |= {"teacher_stage2": "pretrain", "final": "distill"}


def _lm_run(run: Path) -> Path:
    _manifest(run, LM_STAGES)
    _write(run / "tokenizer" / "metrics.json", {"stage": "tokenizer", "vocab_size": 3000})
    _lm_stage(run, "teacher_stage1", STAGE1_PPL, STAGE1_FILL)
    _lm_stage(run, "teacher_stage2", 10.1, 0.23)
    _lm_stage(run, "final", 18.5, 0.18, switch=True)
    return run


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = _lm_run(tmp_path_factory.mktemp("run") / "fake")
    _manifest(run, LM_STAGES | {"finetune": "finetune", "finetune_pairs": "finetune"})
    _finetune_stage(run)
    _pair_stage(run)
    return run


@pytest.fixture(scope="module")
def written(full_run: Path) -> tuple[Path, str, str]:
    index = report.write_report(full_run)
    return index, (index.parent / "report.md").read_text(), index.read_text()


def _row(markdown: str, first_cell: str, after: str = "") -> list[str]:
    """Cells of the first Markdown table row starting with ``first_cell`` (after ``after``)."""
    for line in markdown[markdown.index(after) :].splitlines():
        cells = [c.strip().replace("\\*", "*") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def _spearman_by_hand(x: list[float], y: list[float]) -> float:
    """1 - 6 Σd² / (n (n² - 1)), valid without ties."""
    rank = [sorted(x).index(v) + 1 for v in x], [sorted(y).index(v) + 1 for v in y]
    d2 = sum((a - b) ** 2 for a, b in zip(*rank, strict=True))
    n = len(x)
    return 1 - 6 * d2 / (n * (n * n - 1))


def test_files_written(full_run: Path, written: tuple[Path, str, str]) -> None:
    index, _, page = written
    out = full_run / "report"
    assert index == out / "index.html"
    assert (out / "report.md").is_file()
    expected = [f"training_{s}" for s in ("teacher_stage1", "teacher_stage2", "final")]
    expected += ["finetune_finetune", "frozen_finetune", "correlation_finetune"]
    expected += ["languages_finetune", "languages_finetune_pairs", "correlation_finetune_pairs"]
    for name in expected:
        png = out / f"{name}.png"
        assert png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert f'src="{name}.png"' in page  # relative, so the folder can be moved or served
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    # The pair models have no training log: no curves, and no crash.
    assert not (out / "finetune_finetune_pairs.png").exists()


def test_header_lists_stages_and_total(written: tuple[Path, str, str]) -> None:
    _, md, _ = written
    assert _row(md, "teacher_stage1", "## Stages")[1:3] == ["pretrain", "20.0 s"]
    assert _row(md, "Total", "## Stages")[2] == "3 min 30 s"  # 10 + 20 + ... + 60 seconds


def test_comparison_table(written: tuple[Path, str, str]) -> None:
    _, md, _ = written
    at = "## Fine-tuning: finetune (intent_slot)"
    header = _row(md, "Model", at)
    final = dict(zip(header, _row(md, "final", at), strict=True))
    assert final["EM (%)"] == "81.2"
    assert final["Intent acc. (%)"] == "91.0"
    assert final["Perplexity"] == "18.50" and final["Mask-fill (%)"] == "18.0"
    assert final["Emb. params"] == "625.4K" and final["p50 (ms)"] == "1.90"
    # By hand: EM error 0.188 vs the baseline's 0.25; intent 0.09 vs 0.12; SemER 0.12 vs 0.15.
    assert final["Δerr EM"] == "−24.8%"
    assert final["Δerr Intent acc."] == "−25.0%"
    assert final["Δerr SemER"] == "−20.0%"
    worse = dict(zip(header, _row(md, "teacher_stage2", at), strict=True))
    assert worse["Δerr EM"] == "−20.0%" and worse["Δerr SemER"] == "−26.7%"
    base = dict(zip(header, _row(md, "teacher_stage1 (baseline)", at), strict=True))
    assert base["Δerr EM"] == "0.0%"
    assert base["Perplexity"] == "40.00*"  # "lm" is null: the source stage's own evaluation
    assert "Values with \\*: not scored by the fine-tune stage" in md


def test_models_in_the_order_their_sources_ran(written: tuple[Path, str, str]) -> None:
    _, md, _ = written
    at = "## Fine-tuning: finetune (intent_slot)"
    section = md[md.index(at) : md.index("Frozen encoder:", md.index(at))]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["teacher_stage1 (baseline)", "teacher_stage2", "final"]


def test_frozen_models_compare_with_the_frozen_baseline(written: tuple[Path, str, str]) -> None:
    _, md, _ = written
    at = "## Fine-tuning: finetune (intent_slot)"
    header = _row(md, "Model", at)
    frozen = dict(zip(header, _row(md, "final-frozen", at), strict=True))
    assert frozen["EM (%)"] == "61.2"
    assert frozen["Δerr EM"] == "−13.8%"  # error 0.388 vs 0.45 of teacher_stage1-frozen
    assert _row(md, "teacher_stage1-frozen (baseline)", at)
    assert _row(md, "final", "### Full vs frozen encoder")[1:] == ["81.2", "61.2", "−20.0"]


def test_spearman_matches_hand_computation(written: tuple[Path, str, str]) -> None:
    _, md, page = written
    em = [SCORES[s][0] for s in SCORES]
    ppl = [18.5, 10.1, STAGE1_PPL]
    fill = [0.18, 0.23, STAGE1_FILL]
    rho_ppl, rho_fill = _spearman_by_hand(ppl, em), _spearman_by_hand(fill, em)
    assert (rho_ppl, rho_fill) == (pytest.approx(-0.5), pytest.approx(0.5))
    at = "### Pretraining metrics vs downstream accuracy"
    assert _row(md, "Perplexity", at)[1:] == [f"{rho_ppl:.3f}".replace("-", "−"), "3"]
    assert _row(md, "Mask-filling accuracy", at)[1:] == [f"{rho_fill:.3f}", "3"]
    assert "across checkpoints" in md and "across checkpoints" in page


def test_teacher_switch_markers(full_run: Path) -> None:
    rows = rundir.read_jsonl(full_run / "final" / rundir.METRICS_LOG)
    metrics = rundir.read_json(full_run / "final" / rundir.METRICS) or {}
    assert plots.teacher_switches(rows, metrics) == [(100, "teacher_stage2")]
    assert plots.teacher_switches(rows, {}) == [(100, "teacher_stage2")]  # log alone suffices
    assert plots.teacher_switches([], {}) == []


def test_series_skip_events_and_broken_lines(full_run: Path) -> None:
    rows = rundir.read_jsonl(full_run / "final" / rundir.METRICS_LOG)
    losses = plots.loss_series(rows)
    assert list(losses) == ["loss", "mlm", "soft"]  # no lr/tokens/time/nonfinite_skipped
    assert losses["loss"][0][-1] == 200  # the truncated last line was skipped
    evals = plots.eval_series(rows)
    assert evals["domain_dev"]["perplexity"][0] == [50, 100, 150, 200]
    assert plots.moving_average([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]


def test_per_language_tables(written: tuple[Path, str, str]) -> None:
    _, md, _ = written
    at = "### Per-language results"
    header = _row(md, "Model", at)
    assert header[1:] == ["en-US EM (%)", "en-US intent (%)", "de-DE EM (%)", "de-DE intent (%)"]
    assert _row(md, "final", at)[1:] == ["81.2", "91.0", "71.2", "81.0"]  # test, massive_de
    at = "### Pair classification by language"
    assert _row(md, "Model", at)[1:] == ["en (%)", "de (zero-shot) (%)"]
    assert _row(md, "final", at)[1:] == ["70.0", "60.0"]
    assert "Trained on en" in md


def test_pair_comparison_without_latency(written: tuple[Path, str, str]) -> None:
    _, md, _ = written
    at = "## Fine-tuning: finetune_pairs (pair)"
    header = _row(md, "Model", at)
    final = dict(zip(header, _row(md, "final", at), strict=True))
    assert final["Accuracy (%)"] == "70.0"
    assert final["Δerr Accuracy"] == "−14.3%"  # error 0.30 vs 0.35
    assert final["p50 (ms)"] == "—"
    assert "—: not available" in md[md.index(at) :]


def test_markdown_and_html_say_the_same(written: tuple[Path, str, str]) -> None:
    _, md, page = written
    for text in ("−24.8%", "teacher_stage1 (baseline)", "de (zero-shot) (%)", "3 min 30 s"):
        assert text in md and text in page


def _cells(text: str, first: str, after: str = "") -> list[str]:
    """Words of the first terminal-table line starting with ``first`` (after ``after``)."""
    lines = text[text.index(after) :].splitlines()
    return next(line.split() for line in lines if line.split()[:1] == [first])


def _heldout_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """``{(stage, corpus): [perplexity, mask-fill, n]}`` of the held-out LM table in ``text``
    (the teacher-switch notes below it left out)."""
    table = text[text.index("Held-out language-model metrics:") :].split("\n\n")[1]
    rows = [line.split() for line in table.splitlines()[2:]]
    return {(w[0], w[1]): w[2:] for w in rows if not w[0].endswith(":")}


def test_a_model_still_improving_at_its_last_step_is_flagged(full_run: Path, tmp_path) -> None:
    import shutil

    run = tmp_path / "fake"
    shutil.copytree(full_run, run)
    path = run / "finetune" / "metrics.json"
    metrics = json.loads(path.read_text())
    key = next(iter(metrics["models"]))
    metrics["models"][key]["best_step"] = metrics["models"][key]["steps"]
    path.write_text(json.dumps(metrics))
    text = report.report_summary(run)
    firsts = [line.split()[0] for line in text.splitlines() if line.split()]
    flagged = [word for word in firsts if word.endswith(report.IMPROVING)]
    assert flagged == [key + report.IMPROVING]
    assert report.IMPROVING_NOTE in text
    assert report.IMPROVING_NOTE not in report.report_summary(full_run)
    report.write_report(run)
    assert report.IMPROVING_NOTE in (run / "report" / "report.md").read_text()


def test_one_stage_is_one_stage() -> None:
    assert report.stage_count(1) == "1 stage"
    assert report.stage_count(6) == "6 stages"


def test_summary(full_run: Path) -> None:
    text = report.report_summary(full_run)
    assert text.startswith("Run fake: 6 stages, 3 min 30 s")
    at = "finetune (intent_slot, scores on test):"
    # Perplexity, intent acc., slot F1, EM, SemER, Δerr EM, p50
    expected = ["18.50", "91.0", "90.0", "81.2", "12.0", "−24.8%", "1.90"]
    assert _cells(text, "final", at)[1:] == expected


def test_summary_has_one_heldout_lm_table(full_run: Path) -> None:
    text = report.report_summary(full_run)
    assert text.count("Held-out language-model metrics:") == 1
    header = ["Stage", "Held-out", "corpus", "Perplexity", "Mask-fill", "(%)", "n"]
    assert _cells(text, "Stage") == header
    rows = _heldout_rows(text)
    stages = ["teacher_stage1", "teacher_stage2", "final"]
    assert list(rows) == [(s, c) for s in stages for c in ("domain_dev", "public_dev")]
    assert rows["teacher_stage1", "domain_dev"] == ["40.00", "10.0", "300"]
    assert rows["teacher_stage1", "public_dev"] == ["400.00", "2.5", "300"]
    assert rows["final", "domain_dev"] == ["18.50", "18.0", "300"]
    switch = "final: teacher teacher_stage1 -> teacher_stage2 after step 100 (reached step 100)"
    assert text.count(switch) == 1


def test_heldout_summary_of_chosen_stages(full_run: Path, tmp_path: Path) -> None:
    text = report.heldout_summary(full_run, stages={"teacher_stage2", "finetune"})
    assert _heldout_rows(text) == {
        ("teacher_stage2", "domain_dev"): ["10.10", "23.0", "300"],
        ("teacher_stage2", "public_dev"): ["101.00", "5.8", "300"],  # 0.0575 rounds to 5.8
    }
    assert "->" not in text  # no distill stage chosen: no teacher switch
    assert report.heldout_summary(full_run, stages={"tokenizer"}) == ""  # no LM stage: no table
    assert report.heldout_summary(tmp_path) == ""  # nothing finished yet: no manifest


def test_run_without_finetune_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "available", lambda: False)  # no figures: keeps this test fast
    run = _lm_run(tmp_path / "lm_only")
    md = (report.write_report(run).parent / "report.md").read_text()
    assert "no fine-tune stage has finished yet" in md
    assert "matplotlib is not installed" in md
    assert _row(md, "final")[1] == "distill"
    assert "No fine-tune stage yet." in report.report_summary(run)


def test_output_is_deterministic(full_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(plots, "available", lambda: False)
    first = report.write_report(full_run, tmp_path / "a").read_text()
    second = report.write_report(full_run, tmp_path / "b").read_text()
    assert first == second


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no manifest\.json"):
        report.write_report(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not a valid run manifest"):
        report.report_summary(tmp_path)


def test_html_is_escaped() -> None:
    section = render.Section("a <b>", ["x & y", render.Table(["<th>"], [["<td>"]])])
    page = render.html_page("t", [section])
    assert "a &lt;b&gt;" in page and "x &amp; y" in page and "&lt;td&gt;" in page
    assert "<td>" not in page.replace("<td>&lt;td&gt;</td>", "")


def test_missing_and_nan_values_show_a_dash() -> None:
    base = {"source": "b", "encoder": "full", "eval": {"test": {"exact_match": 1.0}}}
    nan = {"source": "a", "encoder": "full", "eval": {"test": {"exact_match": math.nan}}}
    bad = {"source": "c", "encoder": "full", "eval": {"test": {"exact_match": 81.2}}}  # a % value
    models = {"b": base, "a": nan, "c": bad, "a-frozen": {"source": "a", "encoder": "frozen"}}
    ft = run_view.Finetune("ft", {"baseline": "b", "primary": "test", "models": models})
    columns = report.comparison_columns(run_view.Run(Path("x"), {}, {}), ft)
    table = report.model_table(ft, list(ft.models.items()), columns)
    cells = {row[0]: dict(zip(table.header, row, strict=True)) for row in table.rows}
    assert cells["a"]["EM (%)"] == "—" and cells["a"]["Δerr EM"] == "—"
    assert cells["b (baseline)"]["Δerr EM"] == "—"  # no errors at all: undefined
    assert cells["c"]["Δerr EM"] == "—"  # out of range: no crash
    assert cells["a-frozen"]["Perplexity"] == "—" and cells["a-frozen"]["p50 (ms)"] == "—"
    assert ft.baseline_for(models["a-frozen"]) is None  # no frozen baseline: no comparison


@pytest.mark.parametrize(
    ("value", "text"), [(-0.248, "−24.8%"), (0.1, "+10.0%"), (-0.0001, "0.0%"), (math.nan, "—")]
)
def test_fmt_change(value: float, text: str) -> None:
    assert render.fmt_change(value) == text


def test_an_lm_stage_is_shown_with_its_encoder_size_like_its_fine_tuned_rows(tmp_path) -> None:
    """The MLM head (dense, LayerNorm, output bias) is not part of the encoder a fine-tuned
    model reports, so the pretraining table shows the encoder's size when it was recorded."""
    from distilnlu.evaluation.run_view import load_run

    run = tmp_path / "fake"
    _lm_run(run)
    _manifest(run, LM_STAGES)
    path = run / "teacher_stage1" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["encoder_parameters"] = {"embedding": 625440, "non_embedding": 326640, "total": 1}
    path.write_text(json.dumps(metrics))
    view = load_run(run)
    table = report.stage_table(view, report.heldout_lm(view))
    rows = {row[0]: row for row in table.rows}
    assert rows["teacher_stage1"][5] == "326.6K"  # the encoder's
    assert rows["teacher_stage2"][5] == "351.4K"  # recorded before: the whole masked LM's
