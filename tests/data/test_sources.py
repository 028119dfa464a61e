"""Tests for distilnlu.data.sources: streaming, format dispatch, bad input, empty sources."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from distilnlu.data import sources as sources_module
from distilnlu.data.records import SourceStats
from distilnlu.data.source_config import Document, SourceConfig
from distilnlu.data.sources import iter_documents, iter_texts
from distilnlu.errors import DataError
from tests.data.helpers import WIKI, docs, jsonl, texts, write

# ------------------------------------------------------------------------------- streaming


def test_language_field_and_filter_need_records(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "hello\n")
    with pytest.raises(DataError, match="language_field and filter"):
        docs(path, language_field="locale")


def test_max_docs_stops_early_across_files(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt", "1\n2\n3\n")
    # A later file that would fail shows that reading stops at max_docs.
    write(tmp_path / "d" / "b.txt", b"\xff\xfe broken\n")
    assert texts(tmp_path / "d", max_docs=2) == ["1", "2"]
    assert texts(tmp_path / "d", max_docs=3) == ["1", "2", "3"]
    with pytest.raises(DataError, match=r"b\.txt:1: invalid UTF-8"):
        texts(tmp_path / "d", max_docs=4)


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    path = write(tmp_path / "records.txt", jsonl({"text": "from json"}))
    assert texts(path) == ['{"text": "from json"}']
    assert texts(path, format="jsonl") == ["from json"]


def test_reading_streams_lazily(tmp_path: Path) -> None:
    # The bad line at the end is never reached when only the first documents are consumed.
    path = write(tmp_path / "a.jsonl", jsonl({"text": "a"}, {"text": "b"}) + "broken\n")
    stream = iter_documents(SourceConfig(path=str(path)))
    assert next(stream).text == "a"
    assert next(stream).text == "b"
    with pytest.raises(DataError, match=r"a\.jsonl:3"):
        next(stream)


# ------------------------------------------------------------------------------- bad input


BAD_CASES = [
    # (file name, content, reason, expected line, message fragment)
    ("bad.jsonl", jsonl({"text": "ok"}) + "{not json\n", "invalid JSON", 2, "invalid JSON"),
    ("bad.jsonl", jsonl({"text": "ok"}) + "[1, 2]\n", "JSON not an object", 2, "an array"),
    (
        "bad.jsonl",
        jsonl({"text": "ok"}, {"txt": "x"}),
        "missing text field",
        2,
        "missing text field 'text'",
    ),
    (
        "bad.jsonl",
        jsonl({"text": "ok"}) + "\n" + jsonl({"text": ["a"]}),
        "non-string text field",
        3,
        "is an array, not a string",
    ),
    (
        "bad.jsonl",
        jsonl({"text": "ok"}).encode() + b'{"text": "caf\xe9"}\n',
        "invalid UTF-8",
        2,
        "invalid UTF-8 (byte 0xe9",
    ),
    ("bad.txt", b"ok\nbad \xff\xfe line\n", "invalid UTF-8", 2, "invalid UTF-8"),
    (
        "wiki_bad",
        WIKI + '<doc id="9" title="Open">\nOpen\nnever closed\n',
        "unterminated <doc>",
        12,
        "not closed by </doc> before the end of the file",
    ),
    (
        "wiki_bad",
        WIKI.replace("Beta comes second.\n</doc>\n", "Beta comes second.\n</doc>\nstray text\n"),
        "text outside <doc>",
        12,
        "text outside any <doc>",
    ),
]


@pytest.mark.parametrize(("name", "content", "reason", "line", "fragment"), BAD_CASES)
def test_bad_input_raises_with_file_and_line(
    tmp_path: Path, name: str, content: str | bytes, reason: str, line: int, fragment: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        docs(path)
    message = str(info.value)
    assert f"{name}:{line}: " in message
    assert fragment in message
    assert "on_error" in message  # tells the user how to skip instead


@pytest.mark.parametrize(("name", "content", "reason", "line", "fragment"), BAD_CASES)
def test_bad_input_skipped_and_counted(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    content: str | bytes,
    reason: str,
    line: int,
    fragment: str,
) -> None:
    path = write(tmp_path / name, content)
    stats = SourceStats()
    with caplog.at_level(logging.WARNING, logger="distilnlu.data.sources"):
        result = docs(path, on_error="skip", stats=stats)
    assert len(result) == (2 if name == "wiki_bad" else 1)  # the good records survive
    assert stats.skipped == 1
    assert stats.reasons == {reason: 1}
    assert stats.documents == len(result)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert reason in warnings[0].getMessage() and f"{name}:{line}" in warnings[0].getMessage()


def test_one_warning_summarises_many_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "a.jsonl", jsonl({"text": "ok"}) + "oops\n[]\n{\n")
    write(tmp_path / "b.txt", b"\xff\nfine\n")
    stats = SourceStats()
    sources = [
        SourceConfig(path=str(tmp_path / "a.jsonl")),
        SourceConfig(path=str(tmp_path / "b.txt")),
    ]
    with caplog.at_level(logging.WARNING, logger="distilnlu.data.sources"):
        result = list(iter_texts(sources, on_error="skip", stats=stats))
    assert [d.text for d in result] == ["ok", "fine"]
    assert stats.skipped == 4
    assert stats.reasons == {"invalid JSON": 2, "JSON not an object": 1, "invalid UTF-8": 1}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_no_warning_without_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "a.txt", "fine\n")
    with caplog.at_level(logging.WARNING):
        docs(path, on_error="skip")
    assert not caplog.records


def test_on_error_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "fine\n")
    with pytest.raises(ValueError, match="on_error"):
        iter_documents(SourceConfig(path=str(path)), on_error="ignore")  # type: ignore[arg-type]


def test_stats_accumulate_over_calls(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl({"text": "a"}, {"text": "b"}) + "bad\n")
    stats = SourceStats()
    docs(path, on_error="skip", stats=stats)
    docs(path, on_error="skip", stats=stats)
    assert (stats.documents, stats.skipped, stats.reasons["invalid JSON"]) == (4, 2, 2)


# ---------------------------------------------------------------------------- empty corpus


def test_empty_corpus_raises(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.txt", "\n\n   \n")
    with pytest.raises(DataError, match=r"source '.*empty\.txt' yielded no documents"):
        docs(path)


def test_empty_after_filter_says_why(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl({"text": "a", "partition": "train"}))
    with pytest.raises(
        DataError, match=r"yielded no documents \(1 record\(s\) did not match filter"
    ):
        docs(path, filter={"partition": "dev"})


def test_empty_after_skipping_everything(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", "bad\nworse\n")
    stats = SourceStats()
    with pytest.raises(DataError, match=r"yielded no documents \(2 bad record\(s\) skipped\)"):
        docs(path, on_error="skip", stats=stats)
    assert stats.skipped == 2


def test_iter_texts_chains_and_checks_each_source(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "a1\na2\n")
    b = write(tmp_path / "b.jsonl", jsonl({"text": "b1", "lang": "de-AT"}))
    empty = write(tmp_path / "c.txt", "\n")
    result = list(
        iter_texts(
            [SourceConfig(path=str(a)), SourceConfig(path=str(b), language_field="lang")],
            root=None,
            on_error="raise",
            stats=None,
        )
    )
    assert result == [Document("a1", "en"), Document("a2", "en"), Document("b1", "de")]

    stream = iter_texts([SourceConfig(path=str(a)), SourceConfig(path=str(empty))])
    assert [next(stream).text, next(stream).text] == ["a1", "a2"]
    with pytest.raises(DataError, match=r"source '.*c\.txt' yielded no documents"):
        next(stream)


def test_iter_texts_needs_sources() -> None:
    with pytest.raises(DataError, match="no sources"):
        iter_texts([])


def test_iter_texts_resolves_every_path_up_front(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "a\n")
    with pytest.raises(DataError, match="missing"):
        iter_texts([SourceConfig(path=str(a)), SourceConfig(path="missing/*.txt")], root=tmp_path)


def test_module_exports() -> None:
    for name in sources_module.__all__:
        assert hasattr(sources_module, name)
