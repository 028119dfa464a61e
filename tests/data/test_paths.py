"""Tests for distilnlu.data.paths: files, directories and glob patterns of a source path."""

from __future__ import annotations

from pathlib import Path

import pytest

from distilnlu.data.paths import resolve_paths
from distilnlu.data.source_config import SourceConfig
from distilnlu.data.sources import iter_documents
from distilnlu.errors import DataError
from tests.data.helpers import WIKI, texts, write


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
