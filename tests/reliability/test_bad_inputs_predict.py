"""``distilnlu predict`` on texts it cannot parse: one ``error:`` line, never a traceback, and
with ``--input`` one output row per input line, so outputs line up with inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from distilnlu.cli import app
from distilnlu.deploy.parser import Parser
from distilnlu.errors import DataError, ModelError


def run_predict(*args: str | bytes) -> subprocess.CompletedProcess:
    """``python -m distilnlu predict`` with raw argv bytes (what a shell passes on)."""
    argv = [os.fsencode(sys.executable), b"-m", b"distilnlu", b"predict"]
    argv += [os.fsencode(a) if isinstance(a, str) else a for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, timeout=180, env=env)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"", "utterance 2 is empty or only whitespace: there is nothing to parse"),
        (b" \t ", "utterance 2 is empty or only whitespace: there is nothing to parse"),
        (b"play \xff jazz", "not valid UTF-8"),
        (b"caf\xc3", "not valid UTF-8"),
    ],
    ids=["empty", "whitespace", "invalid byte", "cut character"],
)
def test_unparseable_arguments_are_one_error_line(tiny_nlu_dir, text, says):
    proc = run_predict(str(tiny_nlu_dir), "play jazz", text, "--backend", "torch")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, stderr
    (line,) = stderr.splitlines()
    assert line.startswith("error: ") and says in line
    assert "Traceback" not in stderr and proc.stdout == b""


def test_predict_itself_names_the_bad_byte(tiny_nlu_dir):
    """The command's own check, for callers that do not go through the CLI's argv check."""
    text = os.fsdecode(b"play \xff jazz")  # what Python makes of the bytes: "play \udcff jazz"
    result = CliRunner().invoke(app, ["predict", str(tiny_nlu_dir), "hi", text])
    assert isinstance(result.exception, DataError)
    assert str(result.exception) == "utterance 2 is not valid UTF-8 (byte 0xff at character 5)"


def test_input_file_rows_line_up_with_its_lines(tiny_nlu_dir, tmp_path):
    path = tmp_path / "in.txt"
    lines = [b"\xef\xbb\xbfwake me up at six", b"", b"  play jazz  ", b"   ", b"bad \xff", b"hi"]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")  # a BOM, CRLF, blank and undecodable lines
    proc = run_predict(str(tiny_nlu_dir), "--input", str(path), "--backend", "torch")
    rows = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert len(rows) == len(lines)
    assert [r.get("text") for r in rows] == [
        "wake me up at six", None, "play jazz", None, None, "hi"
    ]  # fmt: skip
    assert [r.get("line") for r in rows] == [None, 2, None, 4, 5, None]
    assert rows[1]["error"] == "the text is empty or only whitespace: there is nothing to parse"
    assert rows[4]["error"] == "the text is not valid UTF-8 (byte 0xff at character 4)"
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    assert rows[0]["intent"] == parser.parse(["wake me up at six"])[0]["intent"]
    stderr = proc.stderr.decode()
    assert proc.returncode == 2
    assert stderr.splitlines() == [
        f"predict: torch backend ({tiny_nlu_dir})",
        f"error: {path}: 3 of 6 lines could not be parsed (their output rows hold an 'error');"
        " line 2: the text is empty or only whitespace: there is nothing to parse",
    ]


def test_jsonl_error_rows_keep_their_id(tiny_nlu_dir, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": "a", "text": "play jazz"}\n{"id": "b", "text": " "}\n'
        '{"id": "\\ud800", "text": "\\udfff"}\n{"id": "d", "text": "hi"}\n'
    )
    result = CliRunner().invoke(app, ["predict", str(tiny_nlu_dir), "--input", str(path)])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "\ud800", "d"]
    assert [sorted(r) for r in rows[1:3]] == [["error", "id", "line"]] * 2
    assert "lone surrogate U+DFFF" in rows[2]["error"]
    assert isinstance(result.exception, DataError)
    assert "2 of 4 lines could not be parsed" in str(result.exception)


def test_a_clean_input_file_exits_0(tiny_nlu_dir, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('\ufeff{"id": 7, "text": "play jazz"}\n{"text": "hi"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tiny_nlu_dir), "--input", str(path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r.get("id"), r["text"]) for r in rows] == [(7, "play jazz"), (None, "hi")]


def test_a_model_folder_without_its_tokenizer_is_refused(tiny_nlu_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_nlu_dir, folder)
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").unlink()
    result = CliRunner().invoke(app, ["predict", str(folder), "play jazz"])
    assert isinstance(result.exception, ModelError)
    assert "no tokenizer here" in str(result.exception) and result.output == ""


def test_parser_refuses_texts_the_checks_refuse(tiny_nlu_dir):
    parser = Parser.load(tiny_nlu_dir, backend="torch", max_chars=20)
    for bad, says in [
        ("play \ud800", "text 1 is not valid Unicode text"),
        ("  ", "text 1 is empty"),
        ("x" * 21, "text 1 is 21 characters long; the limit is 20"),
    ]:
        with pytest.raises(DataError, match=says):
            parser.parse(["play jazz", bad])
