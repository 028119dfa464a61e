"""Helpers shared by the data tests: writing files, reading sources, labeled-data fixtures."""

from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from distilnlu.data.examples import NLUExample
from distilnlu.data.source_config import Document, SourceConfig
from distilnlu.data.sources import iter_documents
from distilnlu.errors import DataError

# ------------------------------------------------------------------------------- shared data

SHARED_DATA_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "shared" / "data",
    Path("/work/shared/data"),
]
SHARED_DATA = next((p for p in SHARED_DATA_CANDIDATES if p.is_dir()), SHARED_DATA_CANDIDATES[-1])
WIKI_SHARD = SHARED_DATA / "wikipedia_en" / "text" / "AA" / "wiki_00"
MASSIVE_EN = SHARED_DATA / "massive" / "data" / "en-US.jsonl"

# The shared labeled data sets live next to the repository, never inside it.
LABELED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path under LABELED_DATA; skips the test when it is absent."""
    path = LABELED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path.resolve()} is absent (real-data test; ../shared/data is optional)")
    return path


# -------------------------------------------------------------------------------------- files


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(*records: object) -> str:
    """JSON lines, non-ASCII escaped (json.dumps' default)."""
    return "".join(json.dumps(r) + "\n" for r in records)


def jsonl_utf8(*records: object) -> str:
    """JSON lines, non-ASCII written as UTF-8."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


# ------------------------------------------------------------------------------------ sources


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

# ------------------------------------------------------------------------------- labeled data

TEXT = "wake me up at five am this week"
WORDS = ("wake", "me", "up", "at", "five", "am", "this", "week")
TAGS = ("O", "O", "O", "O", "B-time", "I-time", "B-date", "I-date")
ALARM = NLUExample(WORDS, TAGS, "alarm_set")
SLOTS = [{"start": 14, "end": 21, "type": "time"}, {"start": 22, "end": 31, "type": "date"}]


def massive_record(annot: str, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "0",
        "locale": "en-US",
        "partition": "train",
        "intent": "alarm_set",
        "annot_utt": annot,
    }
    record.update(fields)
    return record


def bio_folder(folder: Path, seq_in: str, seq_out: str, label: str) -> Path:
    write(folder / "seq.in", seq_in)
    write(folder / "seq.out", seq_out)
    write(folder / "label", label)
    return folder


def raises_at(
    where: str | Path, line: int, problem: str
) -> AbstractContextManager[pytest.ExceptionInfo[DataError]]:
    """Expect a DataError whose message starts with '<where>:<line>: ' and names ``problem``."""
    return pytest.raises(DataError, match=re.escape(f"{where}:{line}: ") + ".*" + problem)
