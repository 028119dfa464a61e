"""A text's answer must not depend on the other texts of its batch, on every backend: the service
batches unrelated requests together and pads them to the longest."""

from __future__ import annotations

import numpy as np
import pytest

from distilnlu.data.synthetic import domain_utterances
from distilnlu.deploy.backends import OnnxBackend, onnx_backend
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


def test_static_int8_runs_batched_and_each_text_gets_the_logits_it_gets_alone(exported):
    """Static int8 quantises each element with a fixed scale, so a batch of 32 mixed texts,
    run as one padded call, gives every text the answer, and the logits, it gets alone."""
    folder, _ = exported
    parser = Parser.load(folder, backend="onnx-int8", threads=1)
    assert isinstance(parser.run, OnnxBackend) and not parser.run.one_at_a_time
    split = [split_words(t) for t in mixed_texts()]
    batch = parser.tag_words(split)
    assert batch.mask.shape == (32, max(int(m.sum()) for m in batch.mask))  # one padded call
    for row, words in enumerate(split):
        single = parser.tag_words([words])
        width = single.mask.shape[1]
        np.testing.assert_allclose(batch.intent_logits[row], single.intent_logits[0], atol=1e-5)
        assert batch.slot_logits is not None and single.slot_logits is not None
        np.testing.assert_allclose(batch.slot_logits[row, :width], single.slot_logits[0], atol=1e-5)
    assert parser.parse(mixed_texts()) == [parser.parse([t])[0] for t in mixed_texts()]


def test_a_dynamic_int8_file_from_an_older_export_runs_one_text_at_a_time(exported, tmp_path):
    """Dynamic int8 takes activation scales from the whole batch: batched, a text's logits
    move with its neighbours. A file without the static mark is therefore run row by row."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder, _ = exported
    dynamic = tmp_path / "model.int8.onnx"
    quantize_dynamic(
        str(folder / "model.onnx"), str(dynamic), weight_type=QuantType.QInt8, per_channel=True,
        op_types_to_quantize=["MatMul"],
    )  # fmt: skip
    static = Parser.load(folder, backend="onnx-int8", threads=1)
    guarded = Parser(
        onnx_backend(dynamic, "onnx-int8", threads=1),
        static.tokenizer,
        static.labels,
        max_length=static.max_length,
        prior=static.prior,
    )
    assert isinstance(guarded.run, OnnxBackend) and guarded.run.one_at_a_time
    batched = OnnxBackend(dynamic, threads=1)
    split = [split_words(t) for t in mixed_texts()]
    ids, mask, _ = guarded.encode(split)
    alone = np.concatenate([batched(ids[i : i + 1, : n], mask[i : i + 1, : n])[0]
                            for i, n in enumerate(mask.sum(1))])  # fmt: skip
    assert not np.array_equal(batched(ids, mask)[0], alone)
    assert np.array_equal(guarded.run(ids, mask)[0], alone)
