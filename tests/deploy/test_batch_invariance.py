"""A text's answer must not depend on the other texts of its batch, on every backend: the service
batches unrelated requests together and pads them to the longest."""

from __future__ import annotations

import numpy as np
import pytest

from distilnlu.data.synthetic import domain_utterances
from distilnlu.deploy.backends import OnnxBackend
from distilnlu.deploy.parser import Parser, split_words


def mixed_texts() -> list[str]:
    """32 texts of very different lengths: most rows of a batch are padded."""
    texts = list(dict.fromkeys(domain_utterances(80, seed=5)))[:28]
    texts += ["hi", "play jazz", " ".join(["alarm"] * 40), "wake me up at seven am tomorrow"]
    assert len(texts) == 32
    lengths = {len(t.split()) for t in texts}
    assert max(lengths) >= 5 * min(lengths)
    return texts


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_answers_alone_equal_answers_in_a_padded_batch_of_32(exported, backend):
    folder, _ = exported
    parser = Parser.load(folder, backend=backend, threads=1)
    texts = mixed_texts()
    together = parser.parse(texts)
    alone = [parser.parse([t])[0] for t in texts]
    assert [(r["intent"], r["slots"], r["truncated"]) for r in together] == [
        (r["intent"], r["slots"], r["truncated"]) for r in alone
    ]
    for a, b in zip(together, alone, strict=True):
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-3)
    reversed_batch = parser.parse(texts[::-1])[::-1]
    assert [(r["intent"], r["slots"]) for r in reversed_batch] == [
        (r["intent"], r["slots"]) for r in alone
    ]


def test_int8_logits_are_exactly_those_of_the_text_alone(exported):
    """Dynamic int8 takes its activation scales from the whole batch, so batched int8 logits
    move with the neighbours; run one text at a time they are bit for bit the same."""
    folder, _ = exported
    parser = Parser.load(folder, backend="onnx-int8", threads=1)
    split = [split_words(t) for t in mixed_texts()]
    batch = parser.tag_words(split)
    for row, words in enumerate(split):
        single = parser.tag_words([words])
        width = single.mask.shape[1]
        assert np.array_equal(batch.intent_logits[row], single.intent_logits[0])
        assert batch.slot_logits is not None and single.slot_logits is not None
        assert np.array_equal(batch.slot_logits[row, :width], single.slot_logits[0])
    assert parser.parse(mixed_texts()) == [parser.parse([t])[0] for t in mixed_texts()]


def test_batched_int8_session_is_not_batch_invariant(exported):
    """Why the int8 backend runs one text at a time: the same graph, batched, differs."""
    folder, _ = exported
    one_by_one = Parser.load(folder, backend="onnx-int8", threads=1)
    batched = Parser(
        OnnxBackend(folder / "model.int8.onnx", threads=1),
        one_by_one.tokenizer,
        one_by_one.labels,
        max_length=one_by_one.max_length,
        prior=one_by_one.prior,
    )
    split = [split_words(t) for t in mixed_texts()]
    alone = np.concatenate([batched.tag_words([w]).intent_logits for w in split])
    assert not np.array_equal(batched.tag_words(split).intent_logits, alone)
    assert np.array_equal(one_by_one.tag_words(split).intent_logits, alone)
