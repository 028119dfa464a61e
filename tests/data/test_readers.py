"""Tests for distilnlu.data.readers: every format name has its reader."""

from __future__ import annotations

from pathlib import Path

from distilnlu.data.labeled_config import LABELED_FORMATS, LabeledSetConfig
from distilnlu.data.readers import LABELED_READERS, TEXT_READERS
from distilnlu.data.records import Problems
from distilnlu.data.source_config import FILE_FORMATS, Document, SourceConfig
from tests.data.helpers import WIKI, jsonl, massive_record, write


def test_tables_cover_the_formats() -> None:
    assert tuple(TEXT_READERS) == FILE_FORMATS
    # 'bio' is a folder and 'synthetic' is generated: load_labeled reads those itself.
    assert set(LABELED_READERS) == set(LABELED_FORMATS) - {"bio", "synthetic"}


def test_text_readers(tmp_path: Path) -> None:
    source = SourceConfig(path="unused", language="de-AT")
    files = {
        "txt": write(tmp_path / "a.txt", "eins\n\nzwei\n"),
        "wikiextractor": write(tmp_path / "wiki_00", WIKI),
        "jsonl": write(tmp_path / "a.jsonl", jsonl({"text": "drei"})),
    }
    read = {
        fmt: list(TEXT_READERS[fmt](path, source, Problems("raise", None)))
        for fmt, path in files.items()
    }
    assert read == {
        "txt": [Document("eins", "de"), Document("zwei", "de")],
        "wikiextractor": [
            Document("Alpha is the first letter.\nIt has a second line.", "de"),
            Document("Beta comes second.", "de"),
        ],
        "jsonl": [Document("drei", "de")],
    }


def test_labeled_readers_take_the_set_config(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.jsonl",
        jsonl(
            massive_record("[time : five am]", id=1),
            massive_record("[time : six]", partition="dev"),
        ),
    )
    cfg = LabeledSetConfig(format="massive", path=str(path), partition="dev")
    examples = LABELED_READERS["massive"](path, cfg, Problems("raise", None))
    assert [(e.words, e.tags) for e in examples] == [(("six",), ("B-time",))]
    pairs = write(tmp_path / "dev-de.tsv", "a\tb\tneutral\n")
    cfg = LabeledSetConfig(format="xnli_tsv", path=str(pairs), language="fr")
    assert [
        p.language for p in LABELED_READERS["xnli_tsv"](pairs, cfg, Problems("raise", None))
    ] == ["fr"]
