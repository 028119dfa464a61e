"""The document length limit: the cutting rule, its counts and warning, and where it applies."""

from __future__ import annotations

import gzip
import logging
import random
from itertools import islice
from pathlib import Path

import pytest

from distilnlu.config import DataConfig, Recipe, load_recipe
from distilnlu.data import corpus as corpus_module
from distilnlu.data import limits
from distilnlu.data.corpus import (
    corpus_documents,
    first_documents,
    heldout_texts,
    in_file_order,
    mixed_documents,
    pack,
    text_chunks,
)
from distilnlu.data.limits import BOUNDARY_WINDOW, CutTally, capped, cut_text
from distilnlu.data.records import SourceStats
from distilnlu.data.source_config import Document, SourceConfig
from distilnlu.data.sources import iter_documents
from distilnlu.errors import ConfigError
from tests.conftest import TINY_RECIPE
from tests.data.helpers import docs, write
from tests.data.test_corpus import WordTokenizer


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no corpus reported (the registry is per process)."""
    monkeypatch.setattr(limits, "_REPORTED", set())


def cut_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "data.max_document_chars" in r.getMessage()]


def data_config(tmp_path: Path, limit: int, **corpora: str) -> DataConfig:
    return DataConfig.model_validate(
        {
            "root": str(tmp_path),
            "max_document_chars": limit,
            "corpora": {name: {"sources": [{"path": path}]} for name, path in corpora.items()},
        }
    )


# ------------------------------------------------------------------------------ cut_text


def test_a_text_within_the_limit_is_returned_as_it_is() -> None:
    text = "exactly ten"[:10]
    assert cut_text(text, 10) is text
    assert cut_text("short", 100) == "short"


def test_the_cut_ends_on_the_last_whole_word() -> None:
    assert cut_text("hello world foo", 10) == "hello"
    assert cut_text("hello world foo", 11) == "hello world"  # a space right after the limit
    assert cut_text("aaa    bbbbbbb", 6) == "aaa"  # no trailing whitespace is kept
    assert cut_text("one\ttwo\nthree", 9) == "one\ttwo"
    assert cut_text("日本語\u3000の文章です", 6) == "日本語"  # U+3000 is whitespace too


def test_text_without_whitespace_near_the_limit_is_cut_at_exactly_the_limit() -> None:
    assert cut_text("x" * 50, 20) == "x" * 20
    assert cut_text("文章" * 30, 25) == ("文章" * 30)[:25]
    # whitespace only further back than the window: a hard cut rather than losing most of it
    text = "a " + "x" * 3000
    assert cut_text(text, 2000) == text[:2000]
    assert cut_text("ab cdefghijklmnop", 10) == "ab cdefghi"  # window is half of a small limit


def test_cut_rule_holds_on_random_texts() -> None:
    rng = random.Random(7)
    for _ in range(300):
        words = ["".join(rng.choices("abcdé語", k=rng.randint(1, 30))) for _ in range(200)]
        seps = [rng.choice([" ", "  ", "\n", "\t"]) for _ in words]
        text = "".join(w + s for w, s in zip(words, seps, strict=True)).strip()
        limit = rng.randint(1, len(text) + 10)
        out = cut_text(text, limit)
        assert text.startswith(out) and 0 < len(out) <= limit
        if len(text) <= limit:
            assert out == text
            continue
        window = min(BOUNDARY_WINDOW, limit // 2)
        assert len(out) >= limit - window
        at_word_end = text[len(out)].isspace() and not out[-1].isspace()
        assert at_word_end or len(out) == limit


# ----------------------------------------------------------------- counts and the warning


def test_tally_counts_read_and_cut_documents_and_words_the_warning() -> None:
    stats = SourceStats()
    tally = CutTally("web", 5, stats)
    texts = ["tiny", "a much longer text", "12345", "also too long"]
    out = [d.text for d in capped((Document(t, "en") for t in texts), tally)]
    assert out == ["tiny", "a muc", "12345", "also"]  # no word end in the window: a hard cut
    assert (tally.read, tally.cut, stats.cut) == (4, 2, 2)
    assert tally.message() == (
        "corpus 'web': 2 documents longer than 5 characters cut to that length"
        " (2 of 4 read; data.max_document_chars)"
    )
    one = CutTally("web", 100_000)
    one.apply(Document("x" * 100_001, "en"))
    assert one.message() == (
        "corpus 'web': 1 document longer than 100,000 characters cut to that length"
        " (1 of 1 read; data.max_document_chars)"
    )


def test_the_warning_is_said_once_per_corpus_however_often_it_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long = [Document("word " * 10, "en"), Document("ok", "en")]
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # three passes, e.g. tokenizer, evaluation and training
            list(capped(iter(long), CutTally("web", 8)))
        list(capped(iter(long), CutTally("other", 8)))
        list(capped(iter([Document("ok", "en")]), CutTally("clean", 8)))
    assert cut_warnings(caplog) == [
        "warning: corpus 'web': 1 document longer than 8 characters cut to that length"
        " (1 of 2 read; data.max_document_chars)",
        "warning: corpus 'other': 1 document longer than 8 characters cut to that length"
        " (1 of 2 read; data.max_document_chars)",
    ]


def test_a_stream_closed_early_still_reports(caplog: pytest.LogCaptureFixture) -> None:
    endless = (Document("word " * 10, "en") for _ in iter(int, 1))
    with caplog.at_level(logging.WARNING):
        stream = capped(endless, CutTally("web", 8))
        assert len(list(islice(stream, 3))) == 3
        stream.close()
    assert cut_warnings(caplog) == [
        "warning: corpus 'web': 3 documents longer than 8 characters cut to that length"
        " (3 of 3 read; data.max_document_chars)"
    ]


# ------------------------------------------------------------- every reader of the corpora


def test_every_corpus_reader_applies_the_limit_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "web.txt", "short one\n" + "many words here. " * 20 + "\nshort two\n")
    data = data_config(tmp_path, 30, web="web.txt")
    web = data.corpora["web"]
    with caplog.at_level(logging.WARNING):
        firsts = [d.text for d in first_documents(web, data, 2)]
        ordered = [d.text for d in in_file_order(web, data)]
        held = heldout_texts(web, data, 10)
        stats = SourceStats()
        mixed = [d.text for d in islice(mixed_documents(data, {"web": 1.0}, 0, stats), 6)]
    assert firsts == ["short one", "many words here. many words"]
    assert ordered == ["short one", "many words here. many words", "short two"]
    assert [t for t, _ in held] == ordered  # sentences split at a capital letter only
    assert mixed == ordered * 2 and stats.cut == 2
    assert cut_warnings(caplog) == [
        "warning: corpus 'web': 1 document longer than 30 characters cut to that length"
        " (1 of 2 read; data.max_document_chars)"
    ]


def test_corpus_documents_cut_before_the_spoken_form(tmp_path: Path) -> None:
    write(tmp_path / "web.txt", "One Two Three Four Five Six\n")
    data = DataConfig.model_validate(
        {
            "root": str(tmp_path),
            "max_document_chars": 13,
            "corpora": {"web": {"spoken_share": 1.0, "sources": [{"path": "web.txt"}]}},
        }
    )
    out = next(corpus_documents(data.corpora["web"], data, seed=0))
    assert out.text == "one two three"


def test_normal_documents_are_untouched(tmp_path: Path) -> None:
    lines = [f"line {i} " + "word " * (i % 17) for i in range(300)]
    write(tmp_path / "web.txt", "\n".join(lines) + "\n")
    data = data_config(tmp_path, 100_000, web="web.txt")
    assert [d.text for d in in_file_order(data.corpora["web"], data)] == [
        line.strip() for line in lines
    ]


# ------------------------------------------------------ readers never hold a huge line


def test_a_huge_txt_line_is_cut_as_if_read_whole(tmp_path: Path) -> None:
    rng = random.Random(3)
    huge = " ".join(rng.choice(["é", "語", "word", "ab", "🙂x"]) for _ in range(200_000))
    write(tmp_path / "a.txt", f"first\n{huge}\nlast\n")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write(f"first\n{huge}\nlast\n")
    for name in ("a.txt", "a.txt.gz"):
        got = docs(tmp_path / name)
        bounded = list(iter_documents(SourceConfig(path=str(tmp_path / name)), max_chars=1000))
        assert len(bounded[1].text) < len(huge)  # only a prefix was kept
        assert [cut_text(d.text, 1000) for d in bounded] == [cut_text(d.text, 1000) for d in got]
        assert [d.text for d in bounded][::2] == ["first", "last"]


def test_a_line_cut_inside_a_character_drops_only_that_character(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "x" + "語" * 300_000 + "\nnext\n")  # 3 bytes a character
    bounded = list(iter_documents(SourceConfig(path=str(tmp_path / "a.txt")), max_chars=10))
    read = 4 * 11 + 2**16  # bytes: 1 for "x", then 21,859 characters and 2 bytes of the next
    assert bounded[0].text == "x" + "語" * ((read - 1) // 3)
    assert bounded[1].text == "next"


def test_a_long_wikiextractor_article_is_cut_as_if_read_whole(tmp_path: Path) -> None:
    body = "\n".join(f"Sentence number {i} of the article." for i in range(5000))
    articles = f'<doc id="1" title="T">\nT\n{body}\n</doc>\n<doc id="2">\nU\nu\n</doc>\n'
    write(tmp_path / "wiki_00", articles)
    source = SourceConfig(path=str(tmp_path / "wiki_00"))
    whole = list(iter_documents(source))
    bounded = list(iter_documents(source, max_chars=500))
    assert len(bounded[0].text) < len(whole[0].text)
    assert [cut_text(d.text, 500) for d in bounded] == [cut_text(d.text, 500) for d in whole]
    assert bounded[1].text == "u"


# --------------------------------------------------------------- packing in bounded calls


def test_text_chunks_are_bounded_in_documents_and_characters() -> None:
    texts = ["a" * 3, "b" * 4, "c" * 10, "d", "e", "f", "g"]
    chunks = list(text_chunks((Document(t, "en") for t in texts), max_docs=3, max_chars=6))
    assert chunks == [["aaa", "bbbb"], ["c" * 10], ["d", "e", "f"], ["g"]]


def test_packing_calls_are_bounded_and_blocks_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1)
    documents = [
        Document(" ".join("w" * rng.randint(1, 9) for _ in range(rng.randint(1, 400))), "en")
        for _ in range(600)
    ]
    reference = list(pack(documents, WordTokenizer(), seq_len=16, isolate=True))
    calls: list[int] = []

    class Recording(WordTokenizer):
        def __call__(self, texts, add_special_tokens=False, verbose=True):
            calls.append(sum(map(len, texts)))
            return super().__call__(texts, add_special_tokens, verbose)

    monkeypatch.setattr(corpus_module, "TOKENIZE_CHARS", 5000)
    assert list(pack(documents, Recording(), seq_len=16, isolate=True)) == reference
    longest = max(len(d.text) for d in documents)
    assert len(calls) > 600 // 256 + 1 and max(calls) < 5000 + longest


# --------------------------------------------------------- the key: config and stage hashes


def test_the_limit_is_a_positive_integer(tiny_recipe_file) -> None:
    assert load_recipe(tiny_recipe_file()).data.max_document_chars == 200_000
    with pytest.raises(ConfigError, match=r"data\.max_document_chars: Input should be greater"):
        load_recipe(tiny_recipe_file(), ["data.max_document_chars=0"])


def test_the_limit_reruns_stages_that_read_corpora_and_the_default_changes_no_hash() -> None:
    raw = {**TINY_RECIPE, "data": {**TINY_RECIPE["data"]}}
    raw["stages"] = {
        **TINY_RECIPE["stages"],
        "finetune": {
            "kind": "finetune",
            "models": ["encoder_folder"],  # not a stage: no upstream
            "train": "nlu_train",
            "dev": "nlu_dev",
            "training": {"max_steps": 2},
        },
    }
    raw["data"]["labeled"] = {
        "nlu_train": {"format": "synthetic", "num_examples": 20, "seed": 1},
        "nlu_dev": {"format": "synthetic", "num_examples": 20, "seed": 2},
    }

    def hashes(**data: int) -> dict[str, str]:
        recipe = Recipe.model_validate({**raw, "data": {**raw["data"], **data}})
        return {name: recipe.stage_hash(name) for name in recipe.stages}

    base = hashes()
    assert hashes(max_document_chars=200_000) == base
    changed = hashes(max_document_chars=5_000)
    for name in ("tokenizer", "teacher_stage1", "teacher_stage2"):
        assert changed[name] != base[name]
    assert changed["finetune"] == base["finetune"]  # it reads no corpus


# ----------------------------------------------------------- tokenizer training's own limit


def test_tokenizer_training_cuts_a_text_over_sentencepieces_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from distilnlu.tokenization import MAX_SENTENCE_BYTES, MAX_SENTENCE_CHARS, train_tokenizer

    rng = random.Random(0)
    huge = " ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(250_000))
    assert len(huge.encode()) > MAX_SENTENCE_BYTES  # SentencePiece alone would drop it and fail
    with caplog.at_level(logging.WARNING):
        tokenizer = train_tokenizer([huge], 40)
    assert len(tokenizer) > 5 + 10  # specials, letters and some pieces
    assert "<unk>" not in tokenizer.tokenize("alpha beta")
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: tokenizer training: 1 text(s) over {MAX_SENTENCE_BYTES:,} bytes of UTF-8 cut"
        f" to {MAX_SENTENCE_CHARS:,} characters (SentencePiece's max_sentence_length)"
    ]
