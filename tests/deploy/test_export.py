"""ONNX / int8 export: parity with PyTorch, dynamic shapes, the report, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from distilnlu.cli import app
from distilnlu.deploy.backends import OnnxBackend, TorchBackend, resolve_backend
from distilnlu.deploy.export import EXPORT_REPORT, dev_sample
from distilnlu.deploy.parser import Parser, split_words
from distilnlu.modeling.classifier import load_nlu_model


def test_fp32_onnx_matches_pytorch_within_1e_4(exported):
    _, report = exported
    parity = report["files"]["onnx"]["parity"]
    assert parity["n"] == 120
    assert parity["max_abs_diff_intent_logits"] <= 1e-4
    assert parity["max_abs_diff_slot_logits"] <= 1e-4
    assert parity["intent_agreement"] == 1.0 and parity["slot_tag_agreement"] == 1.0
    # The PyTorch reference on the gold sample (the fixture's seeded random heads, tags by
    # constrained BIO decoding): exact.
    assert parity["reference_intent_accuracy"] == 0.0
    assert parity["reference_slot_f1"] == pytest.approx(0.0020964360587002098, rel=1e-5)
    assert parity["exported_slot_f1"] == parity["reference_slot_f1"]


def test_int8_is_smaller_and_close(exported):
    folder, report = exported
    fp32, int8 = report["files"]["onnx"], report["files"]["onnx-int8"]
    assert (folder / "model.int8.onnx").stat().st_size < (folder / "model.onnx").stat().st_size
    assert int8["megabytes"] < fp32["megabytes"]
    parity = int8["parity"]
    assert 0.0 < parity["max_abs_diff_intent_logits"] < 5.0  # quantised: close, not equal
    assert parity["intent_agreement"] >= 0.9
    assert {"reference_slot_f1", "exported_slot_f1", "slot_f1_change"} <= parity.keys()


def test_report_is_written_next_to_the_model(exported):
    folder, report = exported
    assert json.loads((folder / EXPORT_REPORT).read_text()) == report
    assert not list(folder.glob("*.tmp"))


@pytest.mark.parametrize("batch, length", [(1, 3), (5, 17), (9, 31)])
def test_onnx_has_dynamic_batch_and_length(exported, batch, length):
    folder, _ = exported
    rng = np.random.default_rng(batch)
    ids = rng.integers(3, 300, size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[0, length // 2 :] = 0  # padded row
    ids[0, length // 2 :] = 1
    want_intent, want_slots = TorchBackend(load_nlu_model(folder))(ids, mask)
    got_intent, got_slots = OnnxBackend(folder / "model.onnx", threads=1)(ids, mask)
    assert got_intent.shape == (batch, want_intent.shape[1])
    assert got_slots.shape == (batch, length, want_slots.shape[2])
    np.testing.assert_allclose(got_intent, want_intent, atol=1e-4)
    valid = mask.astype(bool)
    np.testing.assert_allclose(got_slots[valid], want_slots[valid], atol=1e-4)


def test_auto_backend_picks_the_fastest_export(exported, tiny_nlu_dir):
    folder, _ = exported
    assert resolve_backend(folder, "auto") == "onnx-int8"
    assert resolve_backend(tiny_nlu_dir, "auto") == "torch"
    texts = ["set an alarm for seven", "play some jazz in the kitchen"]
    torch_out = Parser.load(folder, backend="torch").parse(texts)
    onnx_out = Parser.load(folder, backend="onnx").parse(texts)
    assert [(r["intent"], r["slots"]) for r in onnx_out] == [
        (r["intent"], r["slots"]) for r in torch_out
    ]


def test_dev_sample_prefers_the_dev_predictions(tmp_path):
    rows = {
        "predictions-test.jsonl": {"text": "b c", "intent": "t", "tags": ["O", "O"]},
        "predictions-nlu_dev.jsonl": {"text": "wake me", "intent": "alarm", "tags": ["O", "B-x"]},
    }
    for name, row in rows.items():
        (tmp_path / name).write_text(json.dumps(row) + "\n")
    (sample,) = dev_sample(tmp_path)
    assert (sample.words, sample.tags, sample.intent) == (("wake", "me"), ("O", "B-x"), "alarm")
    assert dev_sample(tmp_path / "missing") == []


def test_cli_export_prints_the_parity_table(tmp_path, tiny_nlu_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_nlu_dir, folder)
    result = CliRunner().invoke(app, ["export", str(folder), "--int8"])
    assert result.exit_code == 0, result.output
    assert "model.onnx" in result.output and "model.int8.onnx" in result.output
    assert (folder / EXPORT_REPORT).is_file()
    # no dev predictions in the folder: the built-in utterances are the sample
    assert json.loads((folder / EXPORT_REPORT).read_text())["files"]["onnx"]["parity"]["n"] == 8


def test_cli_export_refuses_to_export_nothing(tiny_nlu_dir):
    result = CliRunner().invoke(app, ["export", str(tiny_nlu_dir), "--no-onnx"])
    assert result.exit_code != 0
    assert "nothing to export" in str(result.exception)


def test_split_words_used_for_parity_matches_training_words(tiny_nlu_examples):
    ex = tiny_nlu_examples[0]
    assert split_words(ex.text).words == list(ex.words)


def test_cli_export_checks_parity_on_a_given_labeled_file(tmp_path, tiny_nlu_dir):
    from distilnlu.data.synthetic import labeled_examples

    folder = tmp_path / "model"
    shutil.copytree(tiny_nlu_dir, folder)
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps(ex) + "\n" for ex in labeled_examples(15, seed=4)))
    args = ["export", str(folder), "--data", str(data), "--format", "spans", "--sample", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    parity = json.loads((folder / EXPORT_REPORT).read_text())["files"]["onnx"]["parity"]
    assert parity["n"] == 10 and "reference_slot_f1" in parity  # gold labels from the file

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"premise": "a b", "hypothesis": "c", "label": "neutral", "language": "en"}\n'
    )
    refused = CliRunner().invoke(
        app, ["export", str(folder), "--data", str(pairs), "--format", "xnli_jsonl"]
    )
    assert refused.exit_code != 0 and "intent + slot data" in str(refused.exception)
