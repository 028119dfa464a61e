"""Sub-token alignment, truncation and the length-grouped, resumable batch stream."""

import torch

from distilnlu.data.examples import NLUExample, PairExample
from distilnlu.data.finetune import (
    IGNORE,
    collate,
    encode_nlu,
    encode_pairs,
    eval_batches,
    training_batches,
)
from distilnlu.data.labeled import LabelVocab

EXAMPLES = [
    NLUExample(("wake", "me", "up", "at", "seven"), ("O", "O", "O", "O", "B-time"), "alarm_set"),
    NLUExample(("play", "smooth", "jazz"), ("O", "B-genre", "I-genre"), "play_music"),
]
LABELS = LabelVocab.build(EXAMPLES)


def test_slot_labels_sit_on_the_first_sub_token_of_each_word(tiny_tokenizer):
    items = encode_nlu(EXAMPLES, tiny_tokenizer, LABELS, max_length=32)
    for item, ex in zip(items, EXAMPLES, strict=True):
        enc = tiny_tokenizer(list(ex.words), is_split_into_words=True)
        assert item.input_ids == enc["input_ids"]
        word_ids = enc.word_ids()
        firsts = [p for p, w in enumerate(word_ids) if w is not None and w != word_ids[p - 1]]
        assert item.word_starts == firsts
        labelled = [p for p, t in enumerate(item.slot_labels) if t != IGNORE]
        assert labelled == firsts
        assert [LABELS.slot_tags[item.slot_labels[p]] for p in firsts] == list(ex.tags)
        assert item.intent == LABELS.intent_id(ex.intent)


def test_truncated_words_and_unknown_labels(tiny_tokenizer):
    long = NLUExample(tuple(["seven"] * 40), tuple(["B-time"] * 40), "alarm_set")
    unknown = NLUExample(("hello",), ("B-nope",), "nope_intent")
    items = encode_nlu([long, unknown], tiny_tokenizer, LABELS, max_length=10)
    assert len(items[0].input_ids) == 10
    assert items[0].word_starts[-1] == -1  # cut off: decoded as O, counted as an error
    assert items[1].intent == -1 and set(items[1].slot_labels) == {IGNORE}


def test_pairs_are_encoded_as_roberta_pairs(tiny_tokenizer):
    labels = LabelVocab.build_pairs([PairExample("a b", "c", "entailment", "en")])
    [item] = encode_pairs(
        [PairExample("wake me up", "play jazz", "entailment", "en")], tiny_tokenizer, labels, 32
    )
    tokens = tiny_tokenizer.convert_ids_to_tokens(item.input_ids)
    assert tokens[0] == "<s>" and tokens.count("</s>") == 3 and tokens[-1] == "</s>"


def test_collate_pads_right():
    from distilnlu.data.finetune import Encoded

    batch = collate(
        [Encoded([0, 5, 2], 1, [-100, 3, -100], [1]), Encoded([0, 2], 0, [-100, -100], [])], 1, True
    )
    assert batch["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["slot_labels"].tolist() == [[-100, 3, -100], [-100, -100, -100]]
    assert batch["intent_labels"].tolist() == [1, 0]


def _items(n: int):
    from distilnlu.data.finetune import Encoded

    return [Encoded([0] + [7] * (1 + i % 9) + [2], i, [], []) for i in range(n)]


def test_training_stream_is_deterministic_resumable_and_covers_each_epoch():
    items = _items(50)
    stream = training_batches(items, batch_size=8, seed=3, pad_id=1, with_slots=False)
    first = [next(stream) for _ in range(20)]
    epoch = torch.cat([b["intent_labels"] for b in first[:7]])  # 50 items = 7 batches
    assert sorted(epoch.tolist()) == list(range(50))
    resumed = training_batches(items, batch_size=8, seed=3, pad_id=1, with_slots=False, skip=13)
    for a, b in zip(first[13:], [next(resumed) for _ in range(7)], strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"])
    other = training_batches(items, batch_size=8, seed=4, pad_id=1, with_slots=False)
    assert not torch.equal(next(other)["intent_labels"], first[0]["intent_labels"])


def test_eval_batches_visit_every_item_once():
    items = _items(23)
    seen = [i for indices, _ in eval_batches(items, 5, pad_id=1) for i in indices]
    assert sorted(seen) == list(range(23))
