"""Language-model metrics: seeded perplexity and mask-filling accuracy on tiny models."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from distilnlu.data.masking import (
    IGNORE_INDEX,
    MaskingConfig,
    mask_tokens,
    random_candidates,
    special_tokens_mask,
)
from distilnlu.errors import ModelError
from distilnlu.evaluation import lm
from distilnlu.modeling.masked_lm import masked_lm_logits

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as RoBERTa
SUBJECTS = ["the farmer", "my neighbour", "a teacher", "the pilot", "our doctor", "the painter"]
VERBS = ["repaired", "painted", "borrowed", "cleaned", "ordered", "delivered"]
OBJECTS = ["bicycle", "kitchen", "umbrella", "telescope", "computer", "guitar", "blanket"]
PLACES = ["garden", "village", "harbour", "station", "library", "market"]


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} the {rng.choice(OBJECTS)} "
        f"near the {rng.choice(PLACES)}"
        for _ in range(n)
    ]


def _wrap(tok: Tokenizer, **special) -> transformers.PreTrainedTokenizerFast:
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        **special,
    )


def _train_unigram(vocab_size: int = 100) -> Tokenizer:
    """A small SentencePiece-style tokenizer that splits most words into several pieces."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>"
    )
    tok.train_from_iterator(_sentences(200), trainer)
    return tok


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and do not stall when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer() -> transformers.PreTrainedTokenizerFast:
    tok = _wrap(_train_unigram(), mask_token="<mask>")
    assert tok.convert_tokens_to_ids(SPECIALS) == [0, 1, 2, 3, 4]
    assert tok.mask_token_id == 4 and tok.pad_token_id == 1
    return tok


def _model(vocab_size: int, seed: int = 0, dropout: float = 0.0) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    config = transformers.RobertaPreLayerNormConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=160,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return transformers.RobertaPreLayerNormForMaskedLM(config)


CORPUS = _sentences(12, seed=1)


@pytest.fixture(scope="module")
def untrained(tokenizer):
    return _model(len(tokenizer), seed=0)


@pytest.fixture(scope="module")
def trained(tokenizer):
    """The untrained model's initialisation, then 200 MLM steps on CORPUS (about 2.5 s on CPU)."""
    model = _model(len(tokenizer), seed=0)
    batch = tokenizer(CORPUS, padding=True, return_tensors="pt")
    ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    specials = tokenizer.all_special_ids
    candidates = random_candidates(len(tokenizer), specials)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(200):
        masked, labels = mask_tokens(
            ids,
            maskable=~special_tokens_mask(ids, specials),
            mask_token_id=tokenizer.mask_token_id,
            random_token_ids=candidates,
            config=MaskingConfig(mlm_probability=0.3),
            generator=torch.Generator().manual_seed(step),
        )
        positions = labels != IGNORE_INDEX
        logits = masked_lm_logits(model, masked, attention_mask, positions)
        loss = F.cross_entropy(logits, labels[positions])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


# ---------------------------------------------------------------------------------------------
# perplexity


def test_untrained_perplexity_is_of_vocabulary_order(tokenizer, untrained):
    result = lm.lm_perplexity(untrained, tokenizer, CORPUS)
    vocab = len(tokenizer)
    assert set(result) == {"loss", "perplexity", "masked_tokens"}
    assert result["masked_tokens"] == 49
    assert math.isfinite(result["perplexity"]) and result["perplexity"] > 1
    assert vocab / 4 < result["perplexity"] < vocab * 4
    # Seeded model and masks: the exact values (a change means the maths or the masks changed).
    assert result["loss"] == pytest.approx(4.154344831194196, rel=1e-5)
    assert result["perplexity"] == pytest.approx(63.71020992898794, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))


def test_perplexity_is_deterministic_and_independent_of_batch_size(tokenizer):
    model = _model(len(tokenizer), seed=3, dropout=0.3)  # dropout: eval mode must be used
    texts = _sentences(40, seed=5)
    first = lm.lm_perplexity(model, tokenizer, texts)
    second = lm.lm_perplexity(model, tokenizer, texts)
    assert first == second
    assert first["masked_tokens"] == 194
    assert first["loss"] == pytest.approx(4.200523769732603, rel=1e-5)
    single = lm.lm_perplexity(model, tokenizer, texts, batch_size=1)
    assert single["masked_tokens"] == first["masked_tokens"]
    assert single["loss"] == pytest.approx(first["loss"], rel=1e-5)
    other_seed = lm.lm_perplexity(model, tokenizer, texts, seed=99)
    assert other_seed["loss"] != first["loss"]


def test_two_models_are_scored_on_the_same_positions(tokenizer, untrained, trained):
    a = lm.lm_perplexity(untrained, tokenizer, CORPUS)
    b = lm.lm_perplexity(trained, tokenizer, CORPUS)
    assert a["masked_tokens"] == b["masked_tokens"]
    bert = transformers.BertForMaskedLM(
        transformers.BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            pad_token_id=1,
        )
    )
    assert lm.lm_perplexity(bert, tokenizer, CORPUS)["masked_tokens"] == a["masked_tokens"]


def test_training_flag_is_restored(tokenizer):
    model = _model(len(tokenizer), seed=4, dropout=0.1)
    model.train()
    lm.evaluate_lm(model, tokenizer, CORPUS[:3])
    assert model.training
    model.eval()
    lm.evaluate_lm(model, tokenizer, CORPUS[:3])
    assert not model.training


def test_training_improves_both_metrics(tokenizer, untrained, trained):
    before = lm.evaluate_lm(untrained, tokenizer, CORPUS)
    after = lm.evaluate_lm(trained, tokenizer, CORPUS)
    assert after["perplexity"] < before["perplexity"] / 3
    assert after["mask_fill_n"] == before["mask_fill_n"] == len(CORPUS)
    assert after["mask_fill_accuracy"] > before["mask_fill_accuracy"]
    assert after["mask_fill_accuracy"] >= 0.25
    assert before["mask_fill_accuracy"] == 0.0
    assert after["mask_fill_accuracy"] == pytest.approx(10 / 12)
    assert before["perplexity"] == pytest.approx(63.71020992898794, rel=1e-5)
    assert after["perplexity"] == pytest.approx(1.3477718758103792, rel=1e-5)


def test_whole_word_masking_config(tokenizer, untrained):
    texts = _sentences(20, seed=6)
    plain = lm.lm_perplexity(untrained, tokenizer, texts)
    whole = lm.lm_perplexity(
        untrained, tokenizer, texts, masking=MaskingConfig(whole_word=True, mlm_probability=0.3)
    )
    assert whole["masked_tokens"] > 0 and whole["masked_tokens"] != plain["masked_tokens"]
    assert math.isfinite(whole["loss"])
    assert (plain["masked_tokens"], whole["masked_tokens"]) == (99, 259)
    assert plain["loss"] == pytest.approx(4.197619813861269, rel=1e-5)
    assert whole["loss"] == pytest.approx(4.194145997979006, rel=1e-5)


def test_empty_and_truncated_inputs(tokenizer, untrained):
    empty = lm.lm_perplexity(untrained, tokenizer, [])
    assert empty["masked_tokens"] == 0 and math.isnan(empty["perplexity"])
    fill = lm.mask_filling_accuracy(untrained, tokenizer, [])
    assert fill["mask_fill_n"] == 0 and math.isnan(fill["mask_fill_accuracy"])
    long_text = " ".join(_sentences(30))
    result = lm.lm_perplexity(untrained, tokenizer, [long_text, ""], max_length=64)
    assert 0 < result["masked_tokens"] <= 62
    assert result["masked_tokens"] == 6
    assert result["loss"] == pytest.approx(4.22701899210612, rel=1e-5)


def test_tokenizer_without_mask_token(untrained):
    no_mask = _wrap(_train_unigram())
    with pytest.raises(ModelError, match="mask"):
        lm.lm_perplexity(untrained, no_mask, CORPUS)


# ---------------------------------------------------------------------------------------------
# mask filling


def test_stop_word_lists():
    assert set(lm.STOP_WORDS) >= {"en", "de", "es", "fr"}
    assert len(lm.STOP_WORDS["en"]) >= 100
    for words in lm.STOP_WORDS.values():
        assert len(words) >= 50
        assert all(w == w.lower() for w in words)
    assert {"the", "and", "near"} & lm.STOP_WORDS["en"] == {"the", "and"}


def test_stop_words_are_never_chosen(tokenizer):
    stop = lm.STOP_WORDS["en"]
    texts = [
        "the farmer and the pilot",
        "it is what it is",  # only stop words: skipped
        "they were there with them and the guitar",
        "we have the kitchen",
        "",
        *_sentences(60, seed=8),
    ]
    examples = lm._mask_fill_examples(tokenizer, texts, language="en")
    assert [e.index for e in examples] == [0, *range(2, 4), *range(5, len(texts))]
    for example in examples:
        assert example.word.casefold() not in stop
        assert example.word.isalpha() and len(example.word) >= 2
    chosen = {e.index: e.word for e in examples}
    assert chosen[2] == "guitar" and chosen[3] == "kitchen"


def test_all_sub_tokens_of_the_word_are_masked(tokenizer):
    texts = _sentences(50, seed=9)
    examples = lm._mask_fill_examples(tokenizer, texts)
    assert len(examples) == len(texts)
    n_multi = 0
    for example in examples:
        text = texts[example.index]
        start, end = example.span
        assert text[start:end] == example.word
        encoding = tokenizer(text, return_offsets_mapping=True)
        offsets = encoding["offset_mapping"]
        # Every token carrying characters of the word is masked ...
        for j, (s, e) in enumerate(offsets):
            if e > s and s < end and e > start and text[s:e].strip():
                assert j in example.positions, (example.word, j)
        # ... the masked pieces spell exactly the word, and they are contiguous.
        pieces = tokenizer.convert_ids_to_tokens([example.input_ids[j] for j in example.positions])
        assert tokenizer.convert_tokens_to_string(pieces).strip() == example.word
        assert example.positions == list(range(example.positions[0], example.positions[-1] + 1))
        n_multi += len(example.positions) >= 3
    assert n_multi > len(examples) // 2, "the test tokenizer must split words into pieces"


def test_mask_filling_masks_every_piece_in_the_model_input(tokenizer, untrained, monkeypatch):
    texts = _sentences(5, seed=10)
    examples = lm._mask_fill_examples(tokenizer, texts)
    seen = []

    def spy(model, input_ids, attention_mask, positions):
        seen.append((input_ids.clone(), positions.clone()))
        return masked_lm_logits(model, input_ids, attention_mask, positions)

    monkeypatch.setattr(lm, "masked_lm_logits", spy)
    lm.mask_filling_accuracy(untrained, tokenizer, texts)
    ((input_ids, positions),) = seen
    assert int(positions.sum()) == sum(len(e.positions) for e in examples)
    assert (input_ids[positions] == tokenizer.mask_token_id).all()
    assert int((input_ids == tokenizer.mask_token_id).sum()) == int(positions.sum())


def test_word_choice_is_seeded(tokenizer):
    texts = _sentences(40, seed=11)
    a = [(e.index, e.word, e.positions) for e in lm._mask_fill_examples(tokenizer, texts, seed=1)]
    b = [(e.index, e.word, e.positions) for e in lm._mask_fill_examples(tokenizer, texts, seed=1)]
    c = [(e.index, e.word, e.positions) for e in lm._mask_fill_examples(tokenizer, texts, seed=2)]
    assert a == b
    assert a != c
    # The choice for a text depends on its own index only (seed + index), not on its neighbours.
    tail = lm._mask_fill_examples(tokenizer, texts[:10], seed=1)
    assert [(e.index, e.word) for e in tail] == [(i, w) for i, w, _ in a[:10]]


def test_word_rules_punctuation_and_truncation(tokenizer):
    text = "Don't call 42 people, the guitar! x ok."
    words = [w for w, _, _ in lm._candidate_words(text, lm.STOP_WORDS["en"])]
    assert words == ["call", "people", "guitar", "ok"]
    # A word cut off by truncation is never chosen.
    text = "the farmer repaired the umbrella near the library"
    full = lm._mask_fill_examples(tokenizer, [text] * 30, seed=0)
    assert {e.word for e in full} >= {"library"}
    short = tokenizer(text)["input_ids"]
    examples = lm._mask_fill_examples(tokenizer, [text] * 30, max_length=len(short) - 2, seed=0)
    assert examples and all(e.word != "library" for e in examples)


def test_unknown_language_warns_and_uses_no_stop_list(tokenizer):
    with pytest.warns(UserWarning, match="stop-word"):
        examples = lm._mask_fill_examples(tokenizer, ["the the the"], language="xx")
    assert [e.word for e in examples] == ["the"]
    assert lm._mask_fill_examples(tokenizer, ["the the the"], language="en-US") == []


def test_evaluate_lm_merges_and_limits(tokenizer, untrained):
    texts = _sentences(30, seed=12)
    result = lm.evaluate_lm(untrained, tokenizer, texts, max_texts=10)
    assert set(result) == {
        "loss",
        "perplexity",
        "masked_tokens",
        "mask_fill_accuracy",
        "mask_fill_n",
    }
    assert result["mask_fill_n"] == 10
    assert result == lm.evaluate_lm(untrained, tokenizer, texts[:10])
    assert result["mask_fill_accuracy"] == 0.0  # the untrained model fills no word
    assert result["masked_tokens"] == 40
    assert result["loss"] == pytest.approx(4.127709579467774, rel=1e-5)
