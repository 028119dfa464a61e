"""Packing documents into blocks: concatenated (RoBERTa FULL-SENTENCES) and isolated."""

from __future__ import annotations

import torch

from distilnlu.data.corpus import document_ids, pack
from distilnlu.data.source_config import Document

BOS, PAD, EOS = 0, 1, 2


class WordTokenizer:
    """Each whitespace word is its own id (10 + its length), enough to check block layouts."""

    bos_token_id, pad_token_id, eos_token_id = BOS, PAD, EOS

    def __call__(self, texts, add_special_tokens=False, verbose=True):
        return {"input_ids": [[10 + len(w) for w in t.split()] for t in texts]}


def _docs(*texts: str) -> list[Document]:
    return [Document(t, "en") for t in texts]


DOCS = _docs("a bb ccc", "dddd", "e ff", "ggg hhhh iiiii")


def test_concatenated_blocks_are_framed_once_and_separated_by_eos():
    blocks = list(pack(DOCS, WordTokenizer(), seq_len=6))
    assert blocks == [
        [BOS, 11, 12, 13, EOS, EOS],
        [BOS, 14, EOS, 11, 12, EOS],
        [BOS, EOS, 13, 14, 15, EOS],  # the last document's text starts after its neighbour's </s>
    ]


def test_isolated_blocks_frame_every_document_as_if_alone():
    isolated = list(pack(DOCS, WordTokenizer(), seq_len=6, isolate=True))
    # A document cut by the block end continues in the next block; the trailing partial block
    # (the last document, 5 ids) is not yielded.
    assert isolated == [[BOS, 11, 12, 13, EOS, BOS], [14, EOS, BOS, 11, 12, EOS]]


def test_document_ids_start_a_new_document_at_every_bos():
    blocks = torch.tensor(list(pack(DOCS, WordTokenizer(), seq_len=6, isolate=True)))
    ids = document_ids(blocks, BOS)
    # Row 0: a whole document, then the <s> of the next; row 1 begins with that document's tail.
    assert ids.tolist() == [[1, 1, 1, 1, 1, 2], [0, 0, 1, 1, 1, 1]]
