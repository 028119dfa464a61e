"""Which labeled format a file or folder given on the command line is in (``--format auto``).

Decided from what is there, not from a name: a folder holding ``seq.in``, ``seq.out`` and
``label`` is the ATIS/SNIPS three-file layout (``bio``); a ``.tsv`` is XTREME's XNLI; a JSON-lines
file (or a folder of them) is told apart by the keys of its first record: MASSIVE has ``utt`` /
``annot_utt``, XNLI ``premise`` and ``hypothesis``, our span format ``text`` and ``intent``.
"""

from __future__ import annotations

import json
from pathlib import Path

from distilnlu.data.intent_formats import BIO_FILES
from distilnlu.data.records import COMPRESSED
from distilnlu.errors import DataError

__all__ = ["guess_format"]

_BY_KEYS = (
    ("massive", {"annot_utt"}),
    ("massive", {"utt"}),
    ("xnli_jsonl", {"premise", "hypothesis"}),
    ("spans", {"text", "intent"}),
)
_CHOICES = "massive, bio, spans, xnli_tsv, xnli_jsonl"


def guess_format(path: Path) -> str:
    """The labeled format of ``path``.

    Raises:
        DataError: nothing tells; the message says what was looked at and names ``--format``.
    """
    if path.is_dir():
        if all((path / name).is_file() for name in BIO_FILES):
            return "bio"
        files = sorted(p for p in path.rglob("*") if p.is_file() and _is_jsonl(p))
        if not files:
            raise DataError(
                f"{path}: cannot tell its format: no {', '.join(BIO_FILES)} (bio) and no .jsonl"
                f" files; give --format ({_CHOICES})"
            )
        return guess_format(files[0])
    if not path.is_file():
        raise DataError(f"--data {path}: no such file or folder")
    if path.suffix.lower() == ".tsv":
        return "xnli_tsv"
    keys = _first_record_keys(path)
    for name, needed in _BY_KEYS:
        if needed <= keys:
            return name
    shown = ", ".join(sorted(keys)) or "none"
    raise DataError(
        f"{path}: cannot tell its format from its first record (keys: {shown}); give --format"
        f" ({_CHOICES})"
    )


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".json")


def _first_record_keys(path: Path) -> set[str]:
    opener = COMPRESSED.get(path.suffix.lower())
    try:
        with opener(path, "rb") if opener else open(path, "rb") as fh:
            for raw in fh:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    record = json.loads(line)
                    return set(record) if isinstance(record, dict) else set()
    except (OSError, ValueError):
        return set()
    return set()
