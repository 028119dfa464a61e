"""The text-in parser: word splitting, slots with character offsets, backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from distilnlu.data.slots import check_bio
from distilnlu.deploy.parser import Parser, slots_from_tags, split_words
from distilnlu.errors import DataError, ModelError
from distilnlu.tokenization import load_tokenizer


def test_split_words_keeps_character_offsets():
    text = "  wake me\tup  at 7am "
    words = split_words(text)
    assert words.words == ["wake", "me", "up", "at", "7am"]
    assert [text[a:b] for a, b in words.offsets] == words.words


def test_slots_from_tags_reads_bio_into_character_spans():
    text = "remind me at five pm   on friday"
    offsets = split_words(text).offsets
    tags = ["O", "O", "O", "B-time", "I-time", "O", "B-date"]
    assert slots_from_tags(text, offsets, tags) == [
        {"type": "time", "value": "five pm", "start": 13, "end": 20},
        {"type": "date", "value": "friday", "start": 26, "end": 32},
    ]


def test_slots_from_tags_reads_stray_inside_tag_as_a_slot_like_the_metric():
    text = "play jazz now"
    got = slots_from_tags(text, split_words(text).offsets, ["O", "I-genre", "B-time"])
    assert got == [
        {"type": "genre", "value": "jazz", "start": 5, "end": 9},
        {"type": "time", "value": "now", "start": 10, "end": 13},
    ]


def test_parse_gives_intents_and_slots_that_point_into_the_text(tiny_nlu_dir):
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    texts = ["set an alarm for seven am", "what's   the weather in paris", "hi"]
    results = parser.parse(texts)
    assert [r["text"] for r in results] == texts
    for r in results:
        assert r["intent"] in parser.labels.intents
        assert 0.0 < r["confidence"] <= 1.0
        assert r["truncated"] is False
        for slot in r["slots"]:
            assert r["text"][slot["start"] : slot["end"]] == slot["value"]
            assert f"B-{slot['type']}" in parser.labels.slot_tags
    # The fixture's model is seeded (random heads, scaled): its exact answers.
    assert [r["intent"] for r in results] == ["lists_remove"] * 3
    assert [r["confidence"] for r in results] == pytest.approx([0.9962, 0.993, 0.9993], abs=2e-4)
    assert [[s["type"] for s in r["slots"]] for r in results] == [
        [
            "weather_descriptor",
            "color_type",
            "music_genre",
            "radio_name",
            "timeofday",
            "change_amount",
        ],
        ["weather_descriptor", "weather_descriptor", "timeofday", "change_amount", "radio_name"],
        ["weather_descriptor"],
    ]
    # A per-word argmax gives orphan I- tags on these texts; the decoder never does.
    for tags in parser.tag_words([split_words(t) for t in texts]).tags:
        check_bio(tags, "parser")


def test_parse_answers_do_not_depend_on_the_batch(tiny_nlu_dir):
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    texts = ["turn the lights off in the kitchen please", "play jazz", "remind me at noon"]
    together = parser.parse(texts)
    alone = [parser.parse([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert (a["intent"], a["slots"]) == (b["intent"], b["slots"])
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-3)


def test_long_text_is_flagged_truncated_and_its_tail_untagged(tiny_nlu_dir):
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    text = " ".join(["alarm"] * 60)  # max_length is 32 sub-tokens
    (result,) = parser.parse([text])
    assert result["truncated"] is True
    assert all(slot["end"] <= len(" ".join(["alarm"] * 30)) for slot in result["slots"])


def test_empty_text_is_refused(tiny_nlu_dir):
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    with pytest.raises(DataError, match="text 1 is empty"):
        parser.parse(["play jazz", "   "])


def model_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_a_folder_whose_tokenizer_json_is_gone_is_refused(tiny_nlu_dir, tmp_path):
    """transformers makes a 5-token RobertaTokenizer of what is left: every word <unk>."""
    folder = model_copy(tiny_nlu_dir, tmp_path / "model")
    (folder / "tokenizer.json").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**config, "tokenizer_class": "RobertaTokenizer"})
    )
    with pytest.raises(ModelError) as err:
        Parser.load(folder, backend="torch")
    message = str(err.value)
    assert message == (
        f"{folder}: the tokenizer has no vocabulary, only 5 special tokens (tokenizer.json is"
        " missing); every word would be <unk>"
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(config))  # the usual config
    with pytest.raises(ModelError, match=r"could not load the tokenizer: tokenizer\.json is"):
        Parser.load(folder, backend="torch")


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(tiny_nlu_dir, tmp_path):
    folder = model_copy(tiny_nlu_dir, tmp_path / "model")
    size = len(load_tokenizer(folder))
    config = json.loads((folder / "config.json").read_text())
    for vocab, says in [(size - 1, "more than"), (4 * size, "far fewer than")]:
        (folder / "config.json").write_text(json.dumps({**config, "vocab_size": vocab}))
        with pytest.raises(ModelError) as err:
            load_tokenizer(folder)
        assert str(err.value).startswith(
            f"{folder}: the tokenizer has {size} tokens, {says} the {vocab} embedding rows"
        )
        assert "\n" not in str(err.value)
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": size + 64}))
    assert len(load_tokenizer(folder)) == size  # a padded embedding is fine


def test_onnx_backend_without_export_says_how_to_make_it(tiny_nlu_dir, tmp_path):
    with pytest.raises(ModelError, match=r"distilnlu export .* --int8"):
        Parser.load(tiny_nlu_dir, backend="onnx-int8")
    with pytest.raises(ModelError, match="unknown backend"):
        Parser.load(tiny_nlu_dir, backend="tensorrt")


def test_pair_models_are_refused_with_a_reason(tiny_mlm_dir, tmp_path):
    from distilnlu.data.labeled import LabelVocab
    from distilnlu.modeling.classifier import EncoderClassifier, load_encoder
    from distilnlu.tasks import PAIR

    model = EncoderClassifier(
        load_encoder(tiny_mlm_dir), LabelVocab(["entailment", "neutral"], []), task=PAIR
    )
    model.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="'pair' model"):
        Parser.load(tmp_path)


def test_direct_tokenisation_equals_the_transformers_call(tiny_nlu_dir, tiny_nlu_examples):
    """The parser calls the Rust tokenizer directly; it must give what training gave."""
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    words = [list(ex.words) for ex in tiny_nlu_examples[:50]]
    words += [["alarm"] * 60, ["x"], ["élan", "naïve", "café", "7:30am"]]  # truncation, rare text
    reference = parser.tokenizer(
        words, is_split_into_words=True, truncation=True, max_length=parser.max_length
    )
    got = parser._tokenize(words)
    assert [ids for ids, _ in got] == reference["input_ids"]
    assert [list(w) for _, w in got] == [reference.word_ids(i) for i in range(len(words))]
    slow = Parser(parser.run, parser.tokenizer, parser.labels, max_length=parser.max_length)
    slow._fast = None
    assert slow.encode([split_words(" ".join(w)) for w in words])[0].tolist() == (
        parser.encode([split_words(" ".join(w)) for w in words])[0].tolist()
    )
