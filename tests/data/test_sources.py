"""Tests for distilnlu.data.sources: formats, path resolution, filters, bad input, streaming."""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import logging
import sys
import types
from pathlib import Path

import pydantic
import pytest

import distilnlu.data
from distilnlu.data import sources as sources_module
from distilnlu.data.sources import (
    Document,
    SourceConfig,
    SourceStats,
    detect_format,
    iter_documents,
    iter_texts,
    normalize_language,
    resolve_paths,
)
from distilnlu.errors import DataError

SHARED_DATA_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "shared" / "data",
    Path("/work/shared/data"),
]
SHARED_DATA = next((p for p in SHARED_DATA_CANDIDATES if p.is_dir()), SHARED_DATA_CANDIDATES[-1])
WIKI_SHARD = SHARED_DATA / "wikipedia_en" / "text" / "AA" / "wiki_00"
MASSIVE_EN = SHARED_DATA / "massive" / "data" / "en-US.jsonl"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(*records: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def docs(path: str | Path, **kwargs: object) -> list[Document]:
    root = kwargs.pop("root", None)
    on_error = kwargs.pop("on_error", "raise")
    stats = kwargs.pop("stats", None)
    source = SourceConfig(path=str(path), **kwargs)
    return list(iter_documents(source, root=root, on_error=on_error, stats=stats))


def texts(path: str | Path, **kwargs: object) -> list[str]:
    return [d.text for d in docs(path, **kwargs)]


WIKI = """<doc id="1" url="https://en.wikipedia.org/wiki?curid=1" title="Alpha">
Alpha

Alpha is the first letter.
It has a second line.
</doc>
<doc id="2" url="https://en.wikipedia.org/wiki?curid=2" title="Beta">
Beta

Beta comes second.
</doc>
"""


# ------------------------------------------------------------------------------------ config


def test_config_rejects_unknown_keys_and_documents_every_field() -> None:
    with pytest.raises(pydantic.ValidationError):
        SourceConfig(path="a.txt", txt_field="text")
    for name, info in SourceConfig.model_fields.items():
        assert info.description, f"field {name} has no description"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": ""},
        {"path": "synthetic:nonsense"},
        {"path": "hf:"},
        {"path": "hf:json", "format": "jsonl"},
        {"path": "synthetic:public", "filter": {"a": "b"}},
        {"path": "a.jsonl", "filter": {"partition": []}},
        {"path": "a.txt", "max_docs": 0},
    ],
)
def test_config_rejects_inconsistent_settings(kwargs: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        SourceConfig(**kwargs)


@pytest.mark.parametrize(
    ("code", "expected"), [("en", "en"), ("en-US", "en"), ("de_DE", "de"), (" ZH-cn ", "zh")]
)
def test_normalize_language(code: str, expected: str) -> None:
    assert normalize_language(code) == expected


# ------------------------------------------------------------------------------------ formats


def test_txt_one_document_per_non_empty_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "first line\n\n   \nsecond line  \r\nthird")
    assert docs(path, language="de-DE") == [
        Document("first line", "de"),
        Document("second line", "de"),
        Document("third", "de"),
    ]


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello\nworld\n")
    assert texts(path) == ["hello", "world"]


def test_wikiextractor_one_document_per_article(tmp_path: Path) -> None:
    path = write(tmp_path / "wiki_00", WIKI)
    assert detect_format(path) == "wikiextractor"
    assert docs(path) == [
        Document("Alpha is the first letter.\nIt has a second line.", "en"),
        Document("Beta comes second.", "en"),
    ]


def test_wikiextractor_empty_article_yields_nothing(tmp_path: Path) -> None:
    content = '<doc id="3" title="Empty">\nEmpty\n\n</doc>\n' + WIKI
    path = write(tmp_path / "wiki_01", content)
    assert len(docs(path)) == 2


def test_jsonl_text_field_and_empty_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.jsonl",
        jsonl({"utt": "hello there"}, {"utt": "  "}) + "\n\n" + jsonl({"utt": "bye"}),
    )
    assert texts(path, text_field="utt") == ["hello there", "bye"]


def test_jsonl_filter_single_and_list_values(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.jsonl",
        jsonl(
            {"text": "a", "partition": "train", "n": 1},
            {"text": "b", "partition": "dev", "n": 2},
            {"text": "c", "partition": "test", "n": 3},
            {"text": "d"},
            # Filtered-out records are dropped before their text is checked.
            {"partition": "other"},
        ),
    )
    assert texts(path, filter={"partition": "dev"}) == ["b"]
    assert texts(path, filter={"partition": ["train", "test"]}) == ["a", "c"]
    assert texts(path, filter={"partition": ["train", "test"], "n": "3"}) == ["c"]


def test_language_field_reduces_locales(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.jsonl",
        jsonl(
            {"text": "hello", "locale": "en-US"},
            {"text": "hallo", "locale": "de_DE"},
            {"text": "salut", "locale": "fr"},
        ),
    )
    assert [d.language for d in docs(path, language_field="locale")] == ["en", "de", "fr"]


def test_language_field_missing_is_a_bad_record(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl({"text": "hello", "locale": "en-US"}, {"text": "x"}))
    with pytest.raises(DataError, match=r"a\.jsonl:2: language field 'locale'"):
        docs(path, language_field="locale")
    stats = SourceStats()
    assert texts(path, language_field="locale", on_error="skip", stats=stats) == ["hello"]
    assert stats.reasons == {"bad language field": 1}


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


def test_compressed_files(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl.gz", gzip.compress(jsonl({"text": "zipped"}).encode()))
    write(tmp_path / "wiki_00.bz2", bz2.compress(WIKI.encode()))
    assert detect_format(tmp_path / "a.jsonl.gz") == "jsonl"
    assert detect_format(tmp_path / "wiki_00.bz2") == "wikiextractor"
    assert texts(tmp_path / "a.jsonl.gz") == ["zipped"]
    assert len(docs(tmp_path / "wiki_00.bz2")) == 2


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(write(tmp_path / "a.jsonl", "")) == "jsonl"
    assert detect_format(write(tmp_path / "a.json", "")) == "jsonl"
    assert detect_format(write(tmp_path / "a.parquet", "")) == "parquet"
    assert detect_format(write(tmp_path / "w", "\n\n  <doc id=1>\n")) == "wikiextractor"
    assert detect_format(write(tmp_path / "t", "\nplain <doc later\n")) == "txt"
    assert detect_format(write(tmp_path / "empty", "")) == "txt"


# ------------------------------------------------------------------------------------- parquet


def _write_parquet(path: Path, rows: int, **extra_columns: list) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    columns = {"text": [f"doc {i}" for i in range(rows)], **extra_columns}
    pq.write_table(pa.table(columns), path, row_group_size=100)
    return path


def test_parquet_reads_text_and_filters(tmp_path: Path) -> None:
    path = _write_parquet(
        tmp_path / "a.parquet",
        5,
        split=["train", "dev", "train", "dev", "train"],
        lang=["en-US", "de-DE", "fr", "es", "en"],
    )
    assert docs(path, filter={"split": "dev"}, language_field="lang") == [
        Document("doc 1", "de"),
        Document("doc 3", "es"),
    ]


def test_parquet_streams_batches_of_needed_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = _write_parquet(tmp_path / "big.parquet", 5000, other=list(range(5000)))
    calls: list[dict] = []
    real_iter_batches = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real_iter_batches(self, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("parquet must be streamed, not read whole")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(pq.ParquetFile, "read", forbidden)
    monkeypatch.setattr(pq, "read_table", forbidden)

    stream = iter_documents(SourceConfig(path=str(path)))
    assert [d.text for d in itertools.islice(stream, 3)] == ["doc 0", "doc 1", "doc 2"]
    stream.close()
    assert calls and calls[0]["columns"] == ["text"]
    assert calls[0]["batch_size"] < 5000

    assert len(docs(path, max_docs=4321)) == 4321
    assert len(docs(path)) == 5000


def test_parquet_bad_rows(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "a.parquet", 3)
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"text": ["ok", None, "fine"]}), path)
    with pytest.raises(DataError, match=r"a\.parquet: row 2: missing text field 'text'"):
        docs(path)
    stats = SourceStats()
    assert texts(path, on_error="skip", stats=stats) == ["ok", "fine"]
    assert stats.reasons == {"missing text field": 1}

    numbers = pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "n.parquet")
    del numbers
    with pytest.raises(DataError, match=r"n\.parquet: row 1: text field 'text' is a number"):
        docs(tmp_path / "n.parquet")


def test_parquet_missing_column_and_corrupt_file(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "a.parquet", 3)
    with pytest.raises(DataError, match=r"a\.parquet: no column 'utt' \(columns: text\)"):
        docs(path, text_field="utt")
    broken = write(tmp_path / "broken.parquet", b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable parquet file"):
        docs(broken)


# ------------------------------------------------------------------------------------------ hf


def test_hf_json_offline(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    write(
        tmp_path / "corpus.jsonl",
        jsonl(
            {"sentence": "hello", "locale": "en-US", "split": "a"},
            {"sentence": "hallo", "locale": "de-DE", "split": "b"},
            {"sentence": "bonjour", "locale": "fr-FR", "split": "a"},
        ),
    )
    source = SourceConfig(
        path="hf:json",
        data_files=["corpus.jsonl"],  # relative to root
        text_field="sentence",
        language_field="locale",
        filter={"split": "a"},
    )
    assert list(iter_documents(source, root=tmp_path)) == [
        Document("hello", "en"),
        Document("bonjour", "fr"),
    ]


def test_hf_bad_records_and_load_errors(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    path = write(tmp_path / "c.jsonl", jsonl({"text": "ok", "n": 1}, {"text": 5, "n": 2}))
    source = SourceConfig(path="hf:json", data_files=[str(path)])
    with pytest.raises(DataError, match=r"hf:json: record 2: text field 'text'"):
        list(iter_documents(source))
    stats = SourceStats()
    assert [d.text for d in iter_documents(source, on_error="skip", stats=stats)] == ["ok"]
    assert stats.reasons == {"non-string text field": 1}

    missing = SourceConfig(path="hf:json", data_files=[str(tmp_path / "nope.jsonl")])
    with pytest.raises(DataError, match="hf:json: cannot load dataset"):
        list(iter_documents(missing))


# ----------------------------------------------------------------------------------- synthetic


def test_synthetic_calls_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_iter_texts(kind: str, num_docs: int, seed: int):
        calls.append((kind, num_docs, seed))
        return (f"{kind} text {i}" for i in range(num_docs))

    fake = types.ModuleType("distilnlu.data.synthetic")
    fake.iter_texts = fake_iter_texts
    monkeypatch.setitem(sys.modules, "distilnlu.data.synthetic", fake)
    monkeypatch.setattr(distilnlu.data, "synthetic", fake, raising=False)

    result = docs("synthetic:domain", num_docs=3, seed=7)
    assert calls == [("domain", 3, 7)]
    assert result == [Document(f"domain text {i}", "en") for i in range(3)]
    assert len(docs("synthetic:public", num_docs=10, max_docs=4)) == 4


def test_synthetic_real_module_if_present() -> None:
    pytest.importorskip("distilnlu.data.synthetic")
    for kind in ("public", "domain", "labeled"):
        first = docs(f"synthetic:{kind}", num_docs=5, seed=1)
        assert len(first) == 5
        assert all(isinstance(d.text, str) and d.text for d in first)
        assert first == docs(f"synthetic:{kind}", num_docs=5, seed=1)


# ---------------------------------------------------------------------------------------- paths


def test_directory_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write(tmp_path / "corpus" / "b.txt", "b\n")
    write(tmp_path / "corpus" / "a" / "z.txt", "az\n")
    write(tmp_path / "corpus" / "a" / "c.txt", "ac\n")
    write(tmp_path / "corpus" / ".hidden", "hidden\n")
    write(tmp_path / "corpus" / ".git" / "x.txt", "hidden\n")
    assert texts(tmp_path / "corpus") == ["ac", "az", "b"]


def test_glob_pattern(tmp_path: Path) -> None:
    write(tmp_path / "wiki" / "AB" / "wiki_01", WIKI)
    write(tmp_path / "wiki" / "AA" / "wiki_00", WIKI.replace("Alpha is", "Gamma is"))
    write(tmp_path / "wiki" / "AA" / "other", "not matched\n")
    files = resolve_paths("wiki/*/wiki_*", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "wiki/AA/wiki_00",
        "wiki/AB/wiki_01",
    ]
    result = texts("wiki/*/wiki_*", root=tmp_path)
    assert len(result) == 4 and result[0].startswith("Gamma is")
    assert len(resolve_paths(str(tmp_path / "wiki" / "**" / "wiki_*"), None)) == 2


def test_relative_paths_use_root_else_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "root" / "data" / "a.txt", "from root\n")
    write(tmp_path / "cwd" / "data" / "a.txt", "from cwd\n")
    monkeypatch.chdir(tmp_path / "cwd")
    assert texts("data/a.txt", root=tmp_path / "root") == ["from root"]
    assert texts("data/a.txt") == ["from cwd"]
    # Absolute paths ignore root.
    assert texts(tmp_path / "root" / "data" / "a.txt", root=tmp_path / "cwd") == ["from root"]


@pytest.mark.parametrize("path", ["missing.txt", "nothing/*.jsonl", "empty_dir"])
def test_nothing_matches_names_the_pattern(tmp_path: Path, path: str) -> None:
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match=path.replace("*", r"\*").replace(".", r"\.")):
        resolve_paths(path, tmp_path)
    # The error comes when the iterator is created, before anything is read.
    with pytest.raises(DataError):
        iter_documents(SourceConfig(path=path), root=tmp_path)


# ------------------------------------------------------------------------------------ bad input

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
    assert result  # the good records survive
    assert stats.skipped == 1
    assert stats.reasons == {reason: 1}
    assert stats.documents == len(result)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert reason in warnings[0].getMessage() and f"{name}:{line}" in warnings[0].getMessage()


def test_wikiextractor_doc_inside_doc(tmp_path: Path) -> None:
    content = '<doc id="1" title="A">\nA\nlost text\n' + WIKI
    path = write(tmp_path / "wiki_00", content)
    with pytest.raises(
        DataError, match=r'wiki_00:1: <doc title="A"> is not closed by </doc> before'
    ):
        docs(path)
    stats = SourceStats()
    assert len(docs(path, on_error="skip", stats=stats)) == 2
    assert stats.reasons == {"unterminated <doc>": 1}


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


def test_reading_streams_lazily(tmp_path: Path) -> None:
    # The bad line at the end is never reached when only the first documents are consumed.
    path = write(tmp_path / "a.jsonl", jsonl({"text": "a"}, {"text": "b"}) + "broken\n")
    stream = iter_documents(SourceConfig(path=str(path)))
    assert next(stream).text == "a"
    assert next(stream).text == "b"
    with pytest.raises(DataError, match=r"a\.jsonl:3"):
        next(stream)


# --------------------------------------------------------------------------------- empty corpus


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


# ------------------------------------------------------------------------------------ real data


@pytest.mark.skipif(not WIKI_SHARD.is_file(), reason="WikiExtractor shard not available")
def test_real_wikiextractor_shard() -> None:
    raw = WIKI_SHARD.read_text(encoding="utf-8")
    articles = raw.count('<doc id="')
    assert detect_format(WIKI_SHARD) == "wikiextractor"
    result = docs(WIKI_SHARD)
    assert 0 < len(result) <= articles
    assert articles - len(result) <= 2  # only empty articles may vanish
    assert result[0].text.startswith("Anarchism is a political philosophy")
    assert all("<doc" not in d.text and "</doc>" not in d.text for d in result)
    assert all(d.language == "en" for d in result)


@pytest.mark.skipif(not MASSIVE_EN.is_file(), reason="MASSIVE en-US.jsonl not available")
def test_real_massive_dev_partition() -> None:
    result = docs(
        MASSIVE_EN, text_field="utt", filter={"partition": "dev"}, language_field="locale"
    )
    assert len(result) == 2033
    assert {d.language for d in result} == {"en"}
    assert all(d.text for d in result)


def test_module_exports() -> None:
    for name in sources_module.__all__:
        assert hasattr(sources_module, name)
