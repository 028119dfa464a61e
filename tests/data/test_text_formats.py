"""Tests for distilnlu.data.text_formats: txt, WikiExtractor, jsonl, parquet, hf, synthetic."""

from __future__ import annotations

import bz2
import gzip
import itertools
import sys
import types
from pathlib import Path

import pytest

import distilnlu.data
from distilnlu.data.records import SourceStats
from distilnlu.data.source_config import Document, SourceConfig
from distilnlu.data.sources import iter_documents
from distilnlu.data.text_formats import detect_format
from distilnlu.errors import DataError
from tests.data.helpers import MASSIVE_EN, WIKI, WIKI_SHARD, docs, jsonl, texts, write

# --------------------------------------------------------------- txt, wikiextractor, jsonl


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


# --------------------------------------------------------------------------------- parquet


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
    assert len(calls) == 1 and calls[0]["columns"] == ["text"]
    assert calls[0]["batch_size"] == 1024  # of the 5000 rows

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


# -------------------------------------------------------------------------------------- hf


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


# ------------------------------------------------------------------------------- synthetic


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


# ------------------------------------------------------------------------------- real data


@pytest.mark.skipif(not WIKI_SHARD.is_file(), reason="WikiExtractor shard not available")
def test_real_wikiextractor_shard() -> None:
    raw = WIKI_SHARD.read_text(encoding="utf-8")
    articles = raw.count('<doc id="')
    assert detect_format(WIKI_SHARD) == "wikiextractor"
    result = docs(WIKI_SHARD)
    # Only empty articles may vanish; this shard has none.
    assert len(result) == articles == 38
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
