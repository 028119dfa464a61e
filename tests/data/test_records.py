"""Tests for distilnlu.data.records: line and JSON-line reading, bad-record reporting."""

from __future__ import annotations

import bz2
import gzip
import logging
from pathlib import Path

import pytest

from distilnlu.data.records import (
    Problems,
    RaiseProblems,
    SourceStats,
    describe,
    detail,
    iter_json_records,
    iter_lines,
    json_type,
    open_binary,
    preview,
    record_id,
    string_fields,
)
from distilnlu.errors import DataError
from tests.data.helpers import write


def test_open_binary_decompresses(tmp_path: Path) -> None:
    write(tmp_path / "a.gz", gzip.compress(b"zipped\n"))
    write(tmp_path / "b.BZ2", bz2.compress(b"bzipped\n"))
    write(tmp_path / "c.txt", b"plain\n")
    for name, content in (("a.gz", b"zipped\n"), ("b.BZ2", b"bzipped\n"), ("c.txt", b"plain\n")):
        with open_binary(tmp_path / name) as fh:
            assert fh.read() == content
    with pytest.raises(DataError, match=r"missing\.txt: cannot open: No such file or directory"):
        open_binary(tmp_path / "missing.txt")


def test_iter_lines_bom_line_breaks_and_bad_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", b"\xef\xbb\xbffirst\r\nbad \xff\n\nlast")
    stats = SourceStats()
    problems = Problems("skip", stats)
    assert list(iter_lines(path, problems)) == [(1, "first"), (3, ""), (4, "last")]
    assert (stats.skipped, dict(stats.reasons)) == (1, {"invalid UTF-8": 1})
    assert problems.first == f"{path}:2: invalid UTF-8 (byte 0xff at byte 5 of the line)"
    with pytest.raises(DataError, match=r"a\.txt:2: invalid UTF-8 .*set data\.on_error: skip"):
        list(iter_lines(path, Problems("raise", None)))


def test_iter_json_records(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"a": 1}\n\n[1]\n{bad\n{"b": 2}\n')
    problems = Problems("skip", None)
    assert list(iter_json_records(path, problems)) == [(1, {"a": 1}), (5, {"b": 2})]
    assert dict(problems.reasons) == {"JSON not an object": 1, "invalid JSON": 1}
    assert problems.first == f"{path}:3: expected a JSON object per line, got an array"


def test_problems_count_per_source_and_summarise_once(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        Problems("ignore", None)
    stats = SourceStats(documents=3)
    problems = Problems("skip", stats)
    problems.bad("f:1", "invalid JSON", "invalid JSON (x)")
    problems.bad("f:2", "invalid JSON", "invalid JSON (y)")
    problems.bad("f:4", "bad label", "label 7")
    assert (problems.skipped, problems.source_skipped, stats.skipped) == (3, 3, 3)
    assert stats.reasons == {"invalid JSON": 2, "bad label": 1}
    with caplog.at_level(logging.WARNING, logger="distilnlu.data.sources"):
        problems.summarise("source 'f'")
        Problems("skip", None).summarise("nothing skipped")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (
            "distilnlu.data.sources",
            "skipped 3 bad record(s) in source 'f' (invalid JSON: 2, bad label: 1); "
            "first: f:1: invalid JSON (x)",
        )
    ]


def test_raise_problems_has_no_skip_hint() -> None:
    with pytest.raises(DataError) as info:
        RaiseProblems().bad("demo: record 1", "bad label", "label 7")
    assert str(info.value) == "demo: record 1: label 7"
    with pytest.raises(DataError) as info:
        Problems("raise", None).bad("f:1", "bad label", "label 7")
    assert str(info.value) == "f:1: label 7 (set data.on_error: skip to skip bad records)"


def test_string_fields_and_record_id() -> None:
    problems = Problems("skip", None)
    record = {"text": " hi ", "intent": "", "id": 7}
    assert string_fields(record, ("text",), "f:1", problems) == ["hi"]
    assert string_fields(record, ("text", "intent"), "f:1", problems) is None
    assert string_fields(record, ("label",), "f:2", problems) is None
    assert dict(problems.reasons) == {"missing or bad field": 2}
    assert problems.first == "f:1: field 'intent' must be a non-empty string, got an empty string"
    assert (record_id(record), record_id({})) == ("7", None)


def test_message_helpers() -> None:
    values = [None, True, 1.5, "x", [1], {"a": 1}, (1,)]
    assert [json_type(v) for v in values] == [
        "null",
        "a boolean",
        "a number",
        "a string",
        "an array",
        "an object",
        "a tuple",
    ]
    assert [describe(v) for v in values] == [
        "null",
        "a boolean True",
        "a number 1.5",
        "'x'",
        "an array",
        "an object",
        "a tuple",
    ]
    assert describe("  ") == "an empty string"
    assert preview("short") == "'short'"
    assert preview("x" * 70) == repr("x" * 57 + "...")
    assert detail(DataError("f:3: bad thing"), "f:3") == "bad thing"
