"""Reading records from files and reporting bad ones (DESIGN.md §3 "Bad input").

Shared by the text sources (:mod:`distilnlu.data.sources`) and the labeled-data formats
(:mod:`distilnlu.data.intent_formats`, :mod:`distilnlu.data.pair_formats`):

- :func:`open_binary` opens a file, decompressing ``.gz`` and ``.bz2`` on the fly;
  :func:`iter_lines` decodes it line by line (each line on its own, so that a bad line can be
  reported) and :func:`iter_json_records` reads one JSON object per line.
- :class:`Problems` handles a bad record: with ``on_error="raise"`` it raises
  :class:`~distilnlu.errors.DataError` ``"<where>: <detail>"`` plus a hint on how to skip; with
  ``on_error="skip"`` it counts the record (in :class:`SourceStats` too) and
  :meth:`Problems.summarise` logs one warning at the end.
- Small helpers that word the messages: :func:`json_type`, :func:`describe`, :func:`preview`.
"""

from __future__ import annotations

import bz2
import codecs
import collections
import gzip
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from distilnlu.errors import DataError

__all__ = [
    "COMPRESSED",
    "REASON_JSON",
    "REASON_MISSING_FIELD",
    "REASON_NOT_OBJECT",
    "REASON_UTF8",
    "OnError",
    "Problems",
    "RaiseProblems",
    "SourceStats",
    "describe",
    "detail",
    "iter_json_records",
    "iter_lines",
    "json_type",
    "open_binary",
    "preview",
    "record_id",
    "string_fields",
]

# The skip summary has always been logged under this name; logging set-ups filter on it.
logger = logging.getLogger("distilnlu.data.sources")

OnError = Literal["raise", "skip"]

# Reasons counted in SourceStats.reasons when on_error="skip".
REASON_UTF8 = "invalid UTF-8"
REASON_JSON = "invalid JSON"
REASON_NOT_OBJECT = "JSON not an object"
REASON_MISSING_FIELD = "missing or bad field"

COMPRESSED: dict[str, Callable[[Path, Literal["rb"]], io.BufferedIOBase]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
}
"""Openers of compressed files by (lower-case) suffix, called as ``opener(path, "rb")``."""

_SKIP_HINT = " (set data.on_error: skip to skip bad records)"


@dataclass
class SourceStats:
    """Counts gathered while streaming; pass one in to accumulate over several calls."""

    documents: int = 0
    """Documents yielded."""
    skipped: int = 0
    """Bad records skipped (on_error='skip')."""
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    """Skipped records by reason, e.g. {'invalid JSON': 2}."""
    cut: int = 0
    """Documents cut to ``data.max_document_chars`` (see :mod:`distilnlu.data.limits`)."""


# ------------------------------------------------------------------------------- bad records


class Problems:
    """Raises or counts bad records; remembers what the end-of-stream summary needs."""

    def __init__(self, on_error: str, stats: SourceStats | None, hint: str = _SKIP_HINT) -> None:
        """``hint``: what a raised error adds after the bad record (how to get past it)."""
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error, self.hint = on_error, hint
        self.stats = stats if stats is not None else SourceStats()
        self.skipped = 0
        self.reasons: collections.Counter[str] = collections.Counter()
        self.first: str | None = None
        # Per source, for the empty-corpus message.
        self.source_skipped = 0
        self.source_filtered = 0

    def bad(self, where: str, reason: str, detail: str) -> None:
        """Report a bad record at ``where`` (``<file>:<line>``): raise, or count it."""
        message = f"{where}: {detail}"
        if self.on_error == "raise":
            raise DataError(message + self.hint)
        self.stats.skipped += 1
        self.stats.reasons[reason] += 1
        self.skipped += 1
        self.source_skipped += 1
        self.reasons[reason] += 1
        if self.first is None:
            self.first = message

    def summarise(self, what: str) -> None:
        """Log one warning about the records skipped in ``what``; nothing when none were."""
        if not self.skipped:
            return
        counts = ", ".join(f"{reason}: {n}" for reason, n in self.reasons.most_common())
        logger.warning(
            "skipped %d bad record(s) in %s (%s); first: %s", self.skipped, what, counts, self.first
        )


def reporter(
    problems: Problems | None, on_error: str, stats: SourceStats | None
) -> tuple[Problems, bool]:
    """A reader's problem reporter: the caller's (who then summarises), or a new one that the
    reader summarises itself (``True``)."""
    if problems is not None:
        return problems, False
    return Problems(on_error, stats), True


class RaiseProblems(Problems):
    """Raises every bad record without the on_error hint: in-memory records cannot be skipped."""

    def __init__(self) -> None:
        super().__init__("raise", None)

    def bad(self, where: str, reason: str, detail: str) -> None:
        raise DataError(f"{where}: {detail}")


def detail(exc: DataError, where: str) -> str:
    """The message of ``exc`` without its ``"<where>: "`` prefix, for :meth:`Problems.bad`.

    Parsing helpers prefix their message with ``where``; :meth:`Problems.bad` adds it again.
    """
    return str(exc).removeprefix(f"{where}: ")


# ------------------------------------------------------------------------------------- files


def open_binary(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading bytes, ``.gz``/``.bz2`` decompressed; DataError if it fails."""
    opener = COMPRESSED.get(path.suffix.lower())
    try:
        return opener(path, "rb") if opener else open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot open: {exc.strerror or exc}") from exc


def utf8_detail(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Which byte of a line is not UTF-8, for a ``file:line`` problem."""
    bad = raw[exc.start : exc.start + 1].hex()
    return f"invalid UTF-8 (byte 0x{bad} at byte {exc.start + 1} of the line)"


def iter_lines(
    path: Path, problems: Problems, max_bytes: int | None = None
) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its line break); bad UTF-8 lines reported.

    With ``max_bytes``, a longer line gives only the characters of its first ``max_bytes`` bytes
    (a character cut in two is dropped) and the rest is read past without being held: a file
    that is one huge line costs ``max_bytes``, not its size.
    """
    with open_binary(path) as fh:
        number = 0
        raws = ((raw, False) for raw in fh) if max_bytes is None else _bounded(fh, max_bytes)
        try:
            for number, (raw, cut) in enumerate(raws, 1):
                try:
                    line = _decode(raw, cut)
                except UnicodeDecodeError as exc:
                    problems.bad(f"{path}:{number}", REASON_UTF8, utf8_detail(raw, exc))
                    continue
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield number, line.rstrip("\r\n")
        except (OSError, EOFError) as exc:  # a truncated or corrupt compressed file
            raise DataError(f"{path}:{number + 1}: cannot read: {exc}") from exc


def _decode(raw: bytes, cut: bool) -> str:
    if not cut:
        return raw.decode("utf-8")
    # A cut line may end inside a character: decode all but that one (final=False).
    return codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)


def _bounded(fh: io.BufferedIOBase, max_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """(the first ``max_bytes`` bytes of each line, whether the line was longer)."""
    while raw := fh.readline(max_bytes):
        cut = len(raw) == max_bytes and not raw.endswith(b"\n")
        if cut:
            while (rest := fh.readline(max_bytes)) and not rest.endswith(b"\n"):
                pass
        yield raw, cut


def iter_json_records(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-empty line; bad JSON and non-objects go to ``problems``."""
    for number, line in iter_lines(path, problems):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.bad(where, REASON_JSON, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            problems.bad(
                where,
                REASON_NOT_OBJECT,
                f"expected a JSON object per line, got {json_type(record)}",
            )
            continue
        yield number, record


# ----------------------------------------------------------------------------------- records


def string_fields(
    record: Mapping[str, Any], names: tuple[str, ...], where: str, problems: Problems
) -> list[str] | None:
    """The stripped values of ``names``; None (reported to ``problems``) if one is not a
    non-empty string."""
    values = []
    for name in names:
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            got = "missing" if name not in record else describe(value)
            problems.bad(
                where, REASON_MISSING_FIELD, f"field {name!r} must be a non-empty string, got {got}"
            )
            return None
        values.append(value.strip())
    return values


def record_id(record: Mapping[str, Any]) -> str | None:
    """The record's ``id`` field as a string, None when it has none."""
    value = record.get("id")
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------- messages


def json_type(value: Any) -> str:
    """What a JSON value is, for messages: 'null', 'a number', 'an array', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def describe(value: Any) -> str:
    """A value for messages: its repr for strings and scalars, else its JSON type."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if value.strip() else "an empty string"
    if isinstance(value, bool | int | float):
        return f"{json_type(value)} {value!r}"
    return json_type(value)


def preview(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters with '...'."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
