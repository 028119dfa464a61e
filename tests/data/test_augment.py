"""The masked-LM augmenter: seeded, one word-for-word variant per copy, no special tokens."""

from __future__ import annotations

import random

import pytest
import torch

from distilnlu.data.augment import Augmenter
from distilnlu.modeling.loading import load_masked_lm
from distilnlu.supervised_config import AugmentConfig
from distilnlu.tokenization import load_tokenizer


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is far faster on a busy machine
    yield load_masked_lm(tiny_mlm_dir).eval(), load_tokenizer(tiny_mlm_dir)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def texts(tiny_nlu_examples):
    return [list(ex.words) for ex in tiny_nlu_examples[:40]]


def augmenter(mlm, max_length=64, **cfg):
    model, tokenizer = mlm
    return Augmenter(model, tokenizer, AugmentConfig(model="unused", **cfg), max_length)


def test_same_seed_same_variants_other_seed_other_variants(mlm, texts):
    first = augmenter(mlm, copies=2, seed=0).variants(texts)
    assert augmenter(mlm, copies=2, seed=0).variants(texts) == first
    other = augmenter(mlm, copies=2, seed=1).variants(texts)
    assert other != first
    assert sum(a != b for a, b in zip(first, other, strict=True)) > len(first) // 2


def test_variants_do_not_depend_on_the_batching(mlm, texts):
    aug = augmenter(mlm, copies=2, seed=4)
    assert aug.variants(texts, batch_size=9) == aug.variants(texts, batch_size=64)
    # each utterance's variants are its own, whatever else is augmented with it
    assert aug.variants(texts[:5]) == aug.variants(texts)[:10]


@pytest.mark.parametrize("copies", [1, 3])
def test_every_variant_keeps_the_word_count_and_changes_a_word(mlm, texts, copies):
    aug = augmenter(mlm, copies=copies, seed=2)
    out = aug.variants(texts)
    assert len(out) == copies * len(texts)
    specials = {t.lower() for t in aug.tokenizer.all_special_tokens}
    for i, variant in enumerate(out):
        original = texts[i // copies]  # the copies of one text come together
        assert len(variant) == len(original)
        changed = [j for j, (a, b) in enumerate(zip(original, variant, strict=True)) if a != b]
        assert changed, (original, variant)
        for j in changed:
            word = variant[j]
            assert word and word == word.strip() and " " not in word
            assert word.lower() != original[j].lower()
            assert word.lower() not in specials
            assert not any(s in word for s in aug.tokenizer.all_special_tokens)
    # the copies of one utterance are drawn apart (not all the same)
    if copies > 1:
        groups = [tuple(map(tuple, out[k : k + copies])) for k in range(0, len(out), copies)]
        assert any(len(set(g)) > 1 for g in groups)


def test_replacements_are_single_token_whole_words(mlm, texts):
    aug = augmenter(mlm, copies=2, seed=5, word_prob=0.6)
    tokenizer = aug.tokenizer
    allowed = {aug.words[i] for i in range(len(aug.words)) if not aug.blocked[i]}
    assert allowed and not allowed & {t for t in tokenizer.all_special_tokens}
    for i, variant in enumerate(aug.variants(texts)):
        original = texts[i // 2]
        for a, b in zip(original, variant, strict=True):
            if a != b:
                assert b in allowed
                pieces = tokenizer(b, add_special_tokens=False)["input_ids"]
                assert len(pieces) == 1, (b, pieces)


def test_word_prob_sets_how_many_words_change(mlm, texts):
    few = augmenter(mlm, copies=2, seed=0, word_prob=0.05).variants(texts)
    many = augmenter(mlm, copies=2, seed=0, word_prob=0.9).variants(texts)

    def changed(out):
        return sum(a != b for i, v in enumerate(out) for a, b in zip(texts[i // 2], v, strict=True))

    assert changed(few) >= len(few)  # at least one word each
    assert changed(many) > 2 * changed(few)


def test_pick_chooses_at_least_one_word(mlm):
    aug = augmenter(mlm, word_prob=0.01)
    rng = random.Random(0)
    for _ in range(50):
        chosen = aug.pick(["a", "b", "c"], rng)
        assert chosen and all(0 <= i < 3 for i in chosen)
        assert chosen == sorted(set(chosen))


def test_empty_utterances_make_no_variants(mlm, texts):
    aug = augmenter(mlm, copies=2, seed=0)
    assert aug.variants([]) == []
    out = aug.variants([[], texts[0], []])
    assert len(out) == 2 and all(len(v) == len(texts[0]) for v in out)


def test_words_cut_off_by_max_length_stay(mlm, texts):
    """Only words inside max_length are masked; a chosen word past it comes back unchanged."""
    long = [w for t in texts[:6] for w in t]
    aug = augmenter(mlm, max_length=8, copies=4, seed=0, word_prob=1.0)
    for variant in aug.variants([long]):
        assert len(variant) == len(long)
        assert variant[6:] == long[6:]  # <s> + 6 tokens + </s>: at most 6 words are kept
        assert variant[:6] != long[:6]
