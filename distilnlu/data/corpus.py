"""From configured corpora to training batches: cut, mix, convert, tokenize, pack, shuffle, batch.

Everything here is a deterministic function of the recipe seed, so a resumed run can rebuild the
stream and skip the batches it already consumed (the checkpoint stores that count), and sees
exactly the same data afterwards.

Every reader here cuts documents to ``data.max_document_chars`` right after reading them (see
:mod:`distilnlu.data.limits`), and :func:`pack` tokenizes in groups bounded in characters as well
as in documents, so memory stays bounded whatever the corpus holds.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING

import torch

from distilnlu.config import CorpusConfig, DataConfig
from distilnlu.data.limits import CutTally, capped
from distilnlu.data.mixing import (
    mix_by_text_share,
    mix_languages,
    source_size,
    temperature_weights,
)
from distilnlu.data.records import SourceStats
from distilnlu.data.source_config import Document, SourceConfig, normalize_language
from distilnlu.data.sources import iter_documents
from distilnlu.data.spoken import to_spoken
from distilnlu.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TOKENIZE_CHUNK = 256  # documents tokenized per call: fast tokenizers batch internally
TOKENIZE_CHARS = 1 << 20
"""Characters tokenized per call at most (one document may exceed it, alone): the ids and
encodings of a call are held at once, so its size, not only its document count, is bounded."""


def _language_stream(
    corpus: CorpusConfig, language: str, data: DataConfig, tally: CutTally
) -> Iterator[Document]:
    return capped(_read_language(corpus, language, data, tally.stats), tally)


def _read_language(
    corpus: CorpusConfig, language: str, data: DataConfig, stats: SourceStats | None
) -> Iterator[Document]:
    for source in corpus.sources:
        if _source_language(source) == language:
            yield from iter_documents(
                source, data.root, data.on_error, stats, data.max_document_chars
            )


def _source_language(source: SourceConfig) -> str:
    # Sources with a per-record language field are mixed as one group: their languages are only
    # known while reading.
    return "*" + source.path if source.language_field else normalize_language(source.language)


def corpus_name(corpus: CorpusConfig, data: DataConfig) -> str:
    """The name of ``corpus`` in ``data.corpora`` (for messages), else its source paths."""
    for name, candidate in data.corpora.items():
        if candidate is corpus:
            return name
    for name, candidate in data.corpora.items():
        if candidate == corpus:
            return name
    return ", ".join(source.path for source in corpus.sources)


def corpus_documents(
    corpus: CorpusConfig, data: DataConfig, seed: int, stats: SourceStats | None = None
) -> Iterator[Document]:
    """Endless documents of one corpus, languages mixed by temperature, spoken share applied.

    Documents are cut to ``data.max_document_chars`` before the spoken-form conversion.
    """
    stats = stats if stats is not None else SourceStats()
    sizes: dict[str, float] = defaultdict(float)
    for source in corpus.sources:
        sizes[_source_language(source)] += source_size(source, data.root)
    weights = temperature_weights(dict(sizes), data.alpha)
    # One tally for every language and epoch: its one warning counts the whole corpus.
    tally = CutTally(corpus_name(corpus, data), data.max_document_chars, stats)
    streams = {lang: partial(_language_stream, corpus, lang, data, tally) for lang in weights}
    docs = mix_languages(streams, weights, seed)
    return apply_spoken_share(docs, corpus.spoken_share, seed)


def apply_spoken_share(docs: Iterable[Document], share: float, seed: int) -> Iterator[Document]:
    """Convert a seeded random ``share`` of documents to spoken form."""
    rng = random.Random(f"spoken-{seed}")
    for doc in docs:
        if share > 0 and rng.random() < share:
            yield Document(to_spoken(doc.text, doc.language), doc.language)
        else:
            yield doc


def mixed_documents(
    data: DataConfig, weights: dict[str, float], seed: int, stats: SourceStats | None = None
) -> Iterator[Document]:
    """Endless documents from several corpora; ``weights`` are shares of the text (characters).

    Shares of text rather than of documents, because a stage mixes corpora whose documents differ
    in length by orders of magnitude (see :func:`~distilnlu.data.mixing.mix_by_text_share`).
    """
    streams: dict[str, Callable[[], Iterator[Document]]] = {
        name: partial(corpus_documents, data.corpora[name], data, seed + i, stats)
        for i, name in enumerate(weights)
    }
    return mix_by_text_share(streams, weights)


def pack(
    docs: Iterable[Document],
    tokenizer: PreTrainedTokenizerBase,
    seq_len: int,
    isolate: bool = False,
) -> Iterator[list[int]]:
    """Concatenate tokenized documents into blocks of ``seq_len`` ids (no padding).

    ``isolate=False`` (RoBERTa's FULL-SENTENCES packing): each block is ``<s> … </s>`` and
    documents inside it are separated by ``</s>``. ``isolate=True``: every document is framed
    ``<s> doc </s>`` exactly as it is when encoded alone, so that :func:`document_ids` can give
    each one its own attention span and positions (see docs/models.md). A long document continues
    into the next block either way.
    """
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    body = seq_len if isolate else seq_len - 2
    buffer: list[int] = []
    for chunk in text_chunks(docs, TOKENIZE_CHUNK, TOKENIZE_CHARS):
        # verbose=False: documents longer than the model are expected here (they are cut into
        # blocks), so HF's "sequence length is longer than the maximum" warning is only noise.
        for ids in tokenizer(chunk, add_special_tokens=False, verbose=False)["input_ids"]:
            if ids:
                buffer.extend([bos, *ids, eos] if isolate else [*ids, eos])
        # Blocks are sliced at an offset and the buffer trimmed once per chunk: re-slicing the
        # rest of the buffer after every block is quadratic in the chunk's tokens.
        start = 0
        while len(buffer) - start >= body:
            block = buffer[start : start + body]
            start += body
            yield block if isolate else [bos, *block, eos]
        del buffer[:start]


def text_chunks(
    docs: Iterable[Document], max_docs: int = TOKENIZE_CHUNK, max_chars: int = TOKENIZE_CHARS
) -> Iterator[list[str]]:
    """The documents' texts in order, in groups of at most ``max_docs`` texts that stop at the
    first text reaching ``max_chars`` characters in all (a longer text forms a group alone)."""
    chunk: list[str] = []
    size = 0
    for doc in docs:
        chunk.append(doc.text)
        size += len(doc.text)
        if len(chunk) >= max_docs or size >= max_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def document_ids(input_ids: torch.Tensor, bos_id: int) -> torch.Tensor:
    """``[B, T]`` index of the document each token belongs to in blocks packed with ``isolate``.

    A document starts at each ``<s>``; tokens before the first ``<s>`` of a block (the tail of a
    document cut at the previous block) form document 0.
    """
    return torch.cumsum((input_ids == bos_id).long(), dim=1)


def shuffled(items: Iterable[list[int]], buffer_size: int, seed: int) -> Iterator[list[int]]:
    """Seeded reservoir-style shuffle with a bounded buffer (streaming friendly)."""
    rng = random.Random(f"shuffle-{seed}")
    buffer: list[list[int]] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= buffer_size:
            yield buffer.pop(rng.randrange(len(buffer)))
    rng.shuffle(buffer)
    yield from buffer


def batches(blocks: Iterable[list[int]], batch_size: int) -> Iterator[torch.Tensor]:
    """Stack blocks into ``[batch_size, seq_len]`` LongTensors (the last short batch dropped)."""
    blocks = iter(blocks)
    while len(group := list(islice(blocks, batch_size))) == batch_size:
        yield torch.tensor(group, dtype=torch.long)


def pretraining_batches(
    data: DataConfig,
    weights: dict[str, float],
    tokenizer: PreTrainedTokenizerBase,
    *,
    seq_len: int,
    batch_size: int,
    seed: int,
    shuffle_buffer: int = 256,
    skip: int = 0,
    stats: SourceStats | None = None,
    isolate: bool = False,
) -> Iterator[torch.Tensor]:
    """The endless, deterministic batch stream of a pretraining stage, after ``skip`` batches."""
    docs = mixed_documents(data, weights, seed, stats)
    blocks = shuffled(pack(docs, tokenizer, seq_len, isolate), shuffle_buffer, seed)
    return islice(batches(blocks, batch_size), skip, None)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")


def split_sentences(text: str) -> list[str]:
    """Rough sentence split for held-out written text (evaluation wants sentence-sized items)."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if len(s.split()) >= 3)
    return out


def heldout_texts(
    corpus: CorpusConfig, data: DataConfig, max_texts: int, seed: int = 0
) -> list[tuple[str, str]]:
    """The first ``max_texts`` held-out (text, language) items of a corpus, split into sentences.

    Spoken-form share applies as in training so held-out text looks like what the model sees.
    """
    items: list[tuple[str, str]] = []
    for doc in apply_spoken_share(in_file_order(corpus, data), corpus.spoken_share, seed):
        for sentence in split_sentences(doc.text) or [doc.text]:
            items.append((sentence, doc.language))
        if len(items) >= max_texts:
            break
    if not items:
        names = ", ".join(s.path for s in corpus.sources)
        raise DataError(f"held-out corpus ({names}) yielded no texts")
    return items[:max_texts]


def first_documents(corpus: CorpusConfig, data: DataConfig, limit: int) -> list[Document]:
    """Up to ``limit`` documents of a corpus, in file order, cut to the limit (tokenizer
    training)."""
    return list(islice(in_file_order(corpus, data), limit))


def in_file_order(corpus: CorpusConfig, data: DataConfig) -> Iterator[Document]:
    """One pass over a corpus's sources as written (no mixing, no repetition), each document
    cut to ``data.max_document_chars``."""
    stats = SourceStats()
    tally = CutTally(corpus_name(corpus, data), data.max_document_chars, stats)
    return capped(_read_sources(corpus, data, stats), tally)


def _read_sources(corpus: CorpusConfig, data: DataConfig, stats: SourceStats) -> Iterator[Document]:
    for source in corpus.sources:
        yield from iter_documents(source, data.root, data.on_error, stats, data.max_document_chars)
