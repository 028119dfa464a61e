import random
import unicodedata

import pytest
import torch

from distilnlu.errors import ConfigError, DataError, ModelError
from distilnlu.tokenization import (
    SPECIAL_TOKENS,
    FertilityRow,
    fertility_report,
    format_report,
    load_tokenizer,
    train_tokenizer,
    word_start_table,
)

SYLLABLES = {
    # two made-up "languages" with different letters, so each needs its own pieces
    "aa": ["ka", "lo", "mi", "ne", "ru", "ta", "si", "po", "de", "ga", "bu", "fe"],
    "bb": ["zö", "wy", "hax", "jü", "qev", "ßo", "vy", "cuz", "xi", "yö", "üj", "wo"],
}


def make_lexicon(language: str, size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    syllables = SYLLABLES[language]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(size)]


def make_sentences(language: str, n: int, seed: int, lexicon_seed: int = 0) -> list[str]:
    """Deterministic sentences with capitals, digits and punctuation."""
    rng = random.Random(seed)
    lexicon = make_lexicon(language, 300, lexicon_seed)
    sentences = []
    for _ in range(n):
        words = [rng.choice(lexicon) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 999)))
        words[0] = words[0].capitalize()
        sentences.append(" ".join(words) + rng.choice([".", "?", "!", ",", ""]))
    return sentences


@pytest.fixture(scope="module")
def corpus():
    return make_sentences("aa", 500, seed=1)


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return train_tokenizer(corpus, 400, model_max_length=128)


@pytest.fixture(scope="module")
def saved_tokenizer(tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return load_tokenizer(path)


def test_special_token_ids(tokenizer):
    for i, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(token) == i
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert (tokenizer.unk_token_id, tokenizer.mask_token_id) == (3, 4)
    assert tokenizer.cls_token_id == 0 and tokenizer.sep_token_id == 2
    assert tokenizer.model_max_length == 128
    assert len(tokenizer) == 400  # the corpus has enough pieces to fill the vocabulary


def test_round_trip_through_save_pretrained(tokenizer, saved_tokenizer, corpus):
    loaded = saved_tokenizer
    assert (loaded.bos_token_id, loaded.pad_token_id, loaded.eos_token_id) == (0, 1, 2)
    assert (loaded.unk_token_id, loaded.mask_token_id) == (3, 4)
    assert len(loaded) == len(tokenizer)
    assert loaded.model_max_length == 128
    for text in corpus[:50]:
        ids = loaded(text)["input_ids"]
        assert ids == tokenizer(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2
        assert 3 not in ids  # every character was seen in training
        assert loaded.decode(ids, skip_special_tokens=True) == text


def test_decode_is_identity_modulo_nfkc(saved_tokenizer):
    # "ﬁ" (ligature) and full-width digits are NFKC-normalised; the rest comes back unchanged.
    text = "Kalo ne\ufb01 \uff14\uff12 ruta!"
    ids = saved_tokenizer(text)["input_ids"]
    decoded = saved_tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded == unicodedata.normalize("NFKC", text) == "Kalo nefi 42 ruta!"


def test_pair_template_and_padding(saved_tokenizer):
    enc = saved_tokenizer("kalo mi", "ruta ne")
    ids = enc["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    assert ids.count(2) == 3  # <s> A </s> </s> B </s>
    first_eos = ids.index(2)
    assert ids[first_eos + 1] == 2
    batch = saved_tokenizer(["kalo", "kalo mi ruta ne"], padding=True)
    assert batch["input_ids"][0][-1] == 1 and batch["attention_mask"][0][-1] == 0
    masked = saved_tokenizer.convert_tokens_to_ids("<mask>")
    assert saved_tokenizer("kalo <mask> ruta")["input_ids"].count(masked) == 1


def test_unknown_characters_become_unk(saved_tokenizer):
    ids = saved_tokenizer("kalo \u4e2d ruta")["input_ids"]
    assert 3 in ids
    assert ids == [0, 5, 16, 22, 3, 185, 2]  # <s> ▁ka lo ▁ <unk> ▁ruta </s>


def test_word_start_table_matches_word_ids(saved_tokenizer, corpus):
    table = word_start_table(saved_tokenizer)
    assert table.dtype == torch.bool and table.shape == (len(saved_tokenizer),)
    assert table[[0, 1, 2, 4]].all()  # <s> <pad> </s> <mask>
    assert not table[3]  # <unk> stands for an unseen character inside a word
    # unseen characters (Q, X, 中) exercise <unk> inside and at the start of words
    sentences = [*corpus[100:140], "Qkalo miX ne, \u4e2druta 42!", "X Y Z kalo"]
    checked = 0
    for text in sentences:
        enc = saved_tokenizer(text)
        word_ids = enc.word_ids()
        previous = None
        for token_id, word in zip(enc["input_ids"], word_ids, strict=True):
            if word is None:
                assert table[token_id]  # special tokens
            else:
                assert bool(table[token_id]) == (word != previous), (text, token_id)
                checked += 1
            previous = word
    assert checked == 414
    assert int(table.sum()) == 271  # word-start pieces of the trained vocabulary


def test_word_start_table_is_same_before_and_after_saving(tokenizer, saved_tokenizer):
    assert torch.equal(word_start_table(tokenizer), word_start_table(saved_tokenizer))


def _wrap(tok, **special):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, **special)


def test_word_start_table_wordpiece(corpus):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
    )
    wrapped = _wrap(
        tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    table = word_start_table(wrapped)
    vocab = wrapped.get_vocab()
    assert any(t.startswith("##") for t in vocab)
    for token, idx in vocab.items():
        expected = not token.startswith("##") or token in specials
        assert bool(table[idx]) == expected, token
    assert table[wrapped.unk_token_id]
    for text in corpus[:30]:
        enc = wrapped(text, add_special_tokens=False)
        previous = None
        for token_id, word in zip(enc["input_ids"], enc.word_ids(), strict=True):
            assert bool(table[token_id]) == (word != previous)
            previous = word


def test_word_start_table_byte_level_bpe(corpus):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    wrapped = _wrap(
        tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    table = word_start_table(wrapped)
    assert table[[0, 1, 2, 4]].all() and not table[3]
    assert any(t.startswith("\u0120") for t in wrapped.get_vocab())
    # Byte-level pre-tokenization splits punctuation into its own "word", so compare with
    # whitespace words (what whole-word masking wants): a token starts one when its span begins
    # at the start of the text, with a space ("Ġ..."), or right after a space no token covered.
    for text in corpus[:30]:
        enc = wrapped(text, add_special_tokens=False, return_offsets_mapping=True)
        previous_end = 0
        for token_id, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            starts_word = (
                start == 0
                or text[start].isspace()
                or (text[start - 1].isspace() and previous_end < start)
            )
            assert bool(table[token_id]) == starts_word, (text, start)
            previous_end = end


def test_small_corpus_gives_smaller_vocab():
    # Few distinct words: the Unigram trainer cannot fill a large vocabulary (documented).
    texts = ["wake me up at seven", "play some music", "turn off the lights"] * 50
    tok = train_tokenizer(texts, 5000)
    assert len(SPECIAL_TOKENS) < len(tok) < 5000
    assert len(tok) == 30
    ids = tok("play some music")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "play some music"


def test_train_accepts_a_generator_and_skips_blank_lines(corpus):
    tok = train_tokenizer((t for t in ["", "   ", *corpus[:200]]), 200)
    assert tok("kalo")["input_ids"] == [0, 6, 5, 2]
    assert len(tok) == 200


def test_train_errors():
    with pytest.raises(DataError, match="no text"):
        train_tokenizer(["", "  \n"], 100)
    with pytest.raises(DataError):
        train_tokenizer([b"bytes"], 100)
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer(["hello world"], 5)


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ModelError, match="does not exist"):
        load_tokenizer("./no/such/tokenizer")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no tokenizer"):
        load_tokenizer(tmp_path)


def test_fertility_report_two_languages_two_sizes():
    train = make_sentences("aa", 400, seed=2) + make_sentences("bb", 400, seed=3)
    evaluation = {
        "aa": make_sentences("aa", 60, seed=4),
        "bb": make_sentences("bb", 60, seed=5),
    }
    rows = fertility_report(train, evaluation, [80, 600])
    assert [(r.vocab_size, r.language) for r in rows] == [
        (80, "aa"),
        (80, "bb"),
        (600, "aa"),
        (600, "bb"),
    ]
    by_key = {(r.vocab_size, r.language): r for r in rows}
    for language in ("aa", "bb"):
        small, large = by_key[(80, language)], by_key[(600, language)]
        assert small.words == large.words == sum(len(t.split()) for t in evaluation[language])
        assert small.fertility > large.fertility >= 1.0
        assert small.fertility == pytest.approx(small.tokens / small.words)
        assert small.unk_rate == 0.0
        assert small.trained_vocab_size == 80
        assert large.trained_vocab_size <= 600
    # The exact counts (deterministic Unigram training on seeded sentences).
    assert {k: (r.words, r.tokens, r.trained_vocab_size) for k, r in by_key.items()} == {
        (80, "aa"): (418, 2514, 80),
        (80, "bb"): (456, 3003, 80),
        (600, "aa"): (418, 643, 600),
        (600, "bb"): (456, 691, 600),
    }

    # A language whose letters were mostly never seen gets many <unk> tokens.
    rows = fertility_report(train[:400], {"bb": evaluation["bb"][:10]}, [60])
    assert rows[0].unk_rate > 0.2
    assert (rows[0].words, rows[0].tokens) == (91, 358)
    assert rows[0].unk_rate == pytest.approx(157 / 358)


def test_format_report_is_aligned():
    rows = [
        FertilityRow(8000, "en-US", 1200, 1500, 1.25, 0.001, 8000),
        FertilityRow(32000, "ko-KR", 90, 200, 2.2222, 0.0, 20111),
    ]
    text = format_report(rows)
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].split() == [
        "vocab",
        "trained",
        "language",
        "words",
        "tokens",
        "fertility",
        "unk",
        "%",
    ]
    assert "1.250" in lines[2] and "0.10" in lines[2] and "2.222" in lines[3]
    # columns line up: every row's fertility value ends at the same column
    ends = {
        line.index(value) + len(value) for line, value in [(lines[2], "1.250"), (lines[3], "2.222")]
    }
    assert len(ends) == 1
