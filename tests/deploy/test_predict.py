"""``distilnlu predict``: arguments or a file in, one JSON line per utterance out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from distilnlu.cli import app
from distilnlu.deploy.commands import read_inputs
from distilnlu.deploy.parser import Parser
from distilnlu.errors import DataError


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_predict_arguments_give_the_parser_answers(tiny_nlu_dir):
    texts = ["set an alarm for seven am", "play jazz in the kitchen"]
    result = CliRunner().invoke(app, ["predict", str(tiny_nlu_dir), *texts, "--backend", "torch"])
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout) == Parser.load(tiny_nlu_dir, backend="torch").parse(texts)


def test_predict_reads_txt_and_jsonl_and_keeps_ids(tiny_nlu_dir, tmp_path):
    txt = tmp_path / "in.txt"
    txt.write_text("wake me up at six\n  turn off the lights  \n")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": "a1", "text": "wake me up at six"}\n{"text": "hi there"}\n')
    out_txt = CliRunner().invoke(app, ["predict", str(tiny_nlu_dir), "--input", str(txt)])
    out_jsonl = CliRunner().invoke(
        app, ["predict", str(tiny_nlu_dir), "--input", str(jsonl), "--batch-size", "1"]
    )
    assert out_txt.exit_code == 0 and out_jsonl.exit_code == 0, out_txt.output + out_jsonl.output
    rows_txt, rows_jsonl = _lines(out_txt.stdout), _lines(out_jsonl.stdout)
    assert [r["text"] for r in rows_txt] == ["wake me up at six", "turn off the lights"]
    assert rows_jsonl[0]["id"] == "a1" and "id" not in rows_jsonl[1]
    assert rows_jsonl[0]["intent"] == rows_txt[0]["intent"]
    assert rows_jsonl[0]["slots"] == rows_txt[0]["slots"]


@pytest.mark.parametrize(
    "content, error",
    [
        ('{"text": "ok"}\nnot json\n', "not JSON (Expecting value)"),
        ('{"text": "ok"}\n{"text": ""}\n', "the text is empty or only whitespace"),
        ('{"text": "ok"}\n["a list"]\n', "expected an object with a 'text' field"),
        ('{"text": "ok"}\n{"utt": "wrong field"}\n', "expected an object with a 'text' field"),
        ('{"text": "ok"}\n{"text": 3}\n', "the text must be a string, not a number"),
        ('{"text": "ok"}\n\n', "the line is blank"),
        ('{"text": "ok"}\n{"text": "a \\ud800"}\n', "lone surrogate U+D800"),
    ],
)
def test_bad_jsonl_lines_become_error_records_for_their_line(tmp_path, content, error):
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    first, second = read_inputs(path)
    assert first == {"line": 1, "text": "ok"}
    assert set(second) == {"line", "error"} and second["line"] == 2
    assert error in second["error"]


def test_a_missing_input_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"missing\.txt: no such file"):
        list(read_inputs(tmp_path / "missing.txt"))


def test_predict_needs_exactly_one_input_source(tiny_nlu_dir, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    neither = CliRunner().invoke(app, ["predict", str(tiny_nlu_dir)])
    both = CliRunner().invoke(
        app, ["predict", str(tiny_nlu_dir), "hi", "--input", str(tmp_path / "in.txt")]
    )
    for result in (neither, both):
        assert result.exit_code != 0
        assert "one of the two" in str(result.exception)


def test_predict_errors_exit_2_with_one_line(tmp_path):
    """A folder that is not a fine-tuned model: a clear message, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "distilnlu", "predict", str(tmp_path), "hello"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "is not a fine-tuned NLU model folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_predict_names_the_backend_that_answered_on_stderr(exported):
    folder, _ = exported
    auto = CliRunner().invoke(app, ["predict", str(folder), "play jazz"])
    torch_run = CliRunner().invoke(app, ["predict", str(folder), "play jazz", "--backend", "torch"])
    assert auto.exit_code == 0 and torch_run.exit_code == 0, auto.output + torch_run.output
    # auto picks the int8 export once it exists: say so, and keep stdout pure JSON lines
    assert auto.stderr.strip() == f"predict: onnx-int8 backend, chosen by --backend auto ({folder})"
    assert torch_run.stderr.strip() == f"predict: torch backend ({folder})"
    assert [json.loads(line)["text"] for line in auto.stdout.splitlines()] == ["play jazz"]
