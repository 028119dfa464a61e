"""The document length limit (``data.max_document_chars``): over-long documents are cut.

One document is tokenized, converted to spoken form and split into sentences as a whole, and
packing tokenizes many at a time, so a single huge record (a 10 MB line: a minified dump, a
whole book on one line) would make memory grow with its length times the batch. Every place that
reads documents for training or evaluation therefore cuts them to the limit first, right after
reading: :func:`capped` wraps a document stream, :func:`cut_text` is the rule.

The cut ends at a word boundary (whitespace) within :data:`BOUNDARY_WINDOW` characters before
the limit, so no word is split; text without whitespace there (Chinese, Japanese, Thai, base64)
is cut at exactly the limit. Cut documents are counted in a :class:`CutTally` and reported in one
warning line per corpus per process, however many passes over the corpus the process makes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from distilnlu.data.records import SourceStats
from distilnlu.data.source_config import Document

__all__ = ["BOUNDARY_WINDOW", "CutTally", "capped", "cut_text"]

logger = logging.getLogger(__name__)

BOUNDARY_WINDOW = 1000
"""How far before the limit a cut looks for whitespace (and at most half the limit): far longer
than any word, short enough that a cut document keeps nearly all of the limit."""

# (corpus, limit) pairs already warned about: the training stream restarts a corpus every epoch,
# and the tokenizer, evaluation and training stages of one run read the same corpora again.
_REPORTED: set[tuple[str, int]] = set()
_REPORTED_LOCK = threading.Lock()


def cut_text(text: str, limit: int) -> str:
    """``text`` itself when it has at most ``limit`` characters, else a prefix of at most
    ``limit`` characters.

    The prefix ends at the last word end (a non-space followed by whitespace) at or after
    ``limit - min(BOUNDARY_WINDOW, limit // 2)``, without the whitespace; when there is none it is
    exactly ``limit`` characters (trailing whitespace dropped).
    """
    if len(text) <= limit:
        return text
    window = min(BOUNDARY_WINDOW, limit // 2)
    # p is where the kept text ends: text[p] is whitespace and text[p - 1] is not, so the
    # prefix ends on a whole word. p = limit keeps the full limit when a space follows it.
    for p in range(limit, limit - window - 1, -1):
        if text[p].isspace() and not text[p - 1].isspace():
            return text[:p]
    return text[:limit].rstrip() or text[:limit]


@dataclass
class CutTally:
    """Counts the documents read from one corpus and those cut; warns once about the cuts."""

    corpus: str
    """The corpus's name in ``data.corpora`` (what the warning names)."""
    limit: int
    """``data.max_document_chars``."""
    stats: SourceStats | None = None
    """Also counts cuts in ``stats.cut`` when given."""
    read: int = 0
    cut: int = 0

    def apply(self, document: Document) -> Document:
        """``document``, cut to the limit (and counted) when it is longer."""
        self.read += 1
        if len(document.text) <= self.limit:
            return document
        self.cut += 1
        if self.stats is not None:
            self.stats.cut += 1
        return Document(cut_text(document.text, self.limit), document.language)

    def report(self) -> None:
        """Log the warning when documents were cut, unless this corpus was reported already."""
        if not self.cut:
            return
        with _REPORTED_LOCK:
            if (self.corpus, self.limit) in _REPORTED:
                return
            _REPORTED.add((self.corpus, self.limit))
        logger.warning("warning: %s", self.message())

    def message(self) -> str:
        noun = "document" if self.cut == 1 else "documents"
        return (
            f"corpus {self.corpus!r}: {self.cut:,} {noun} longer than {self.limit:,} characters "
            f"cut to that length ({self.cut:,} of {self.read:,} read; data.max_document_chars)"
        )


def capped(documents: Iterable[Document], tally: CutTally) -> Iterator[Document]:
    """``documents`` with each one cut to ``tally.limit``; the tally reports when the stream
    ends or is closed (a reader that stops early, a training run that finishes)."""
    iterator = iter(documents)
    try:
        for document in iterator:
            yield tally.apply(document)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # so the reader's own end-of-stream summary comes first
            close()
        tally.report()
