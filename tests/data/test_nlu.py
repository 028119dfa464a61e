"""Tests for distilnlu.data.nlu: labeled NLU readers, BIO helpers, set config, label vocab."""

from __future__ import annotations

import collections
import json
import logging
import re
from contextlib import AbstractContextManager
from pathlib import Path

import pydantic
import pytest

from distilnlu.data.labeled import LABELS_FILE, LabeledSetConfig, LabelVocab, load_labeled
from distilnlu.data.nlu import (
    PAIR_LABELS,
    NLUExample,
    PairExample,
    bio_spans,
    check_bio,
    from_span_records,
    parse_annotated,
    read_bio,
    read_massive,
    read_spans_jsonl,
    read_xnli_jsonl,
    read_xnli_tsv,
    spans_to_example,
)
from distilnlu.data.sources import SourceStats
from distilnlu.data.synthetic import labeled_examples
from distilnlu.errors import DataError
from tests.data.test_sources import write

# The shared data sets live next to the repository, never inside it.
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

TEXT = "wake me up at five am this week"
WORDS = ("wake", "me", "up", "at", "five", "am", "this", "week")
TAGS = ("O", "O", "O", "O", "B-time", "I-time", "B-date", "I-date")
ALARM = NLUExample(WORDS, TAGS, "alarm_set")
SLOTS = [{"start": 14, "end": 21, "type": "time"}, {"start": 22, "end": 31, "type": "date"}]


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path.resolve()} is absent (real-data test; ../shared/data is optional)")
    return path


def jsonl(*records: object) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def massive_record(annot: str, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "0",
        "locale": "en-US",
        "partition": "train",
        "intent": "alarm_set",
        "annot_utt": annot,
    }
    record.update(fields)
    return record


def bio_folder(folder: Path, seq_in: str, seq_out: str, label: str) -> Path:
    write(folder / "seq.in", seq_in)
    write(folder / "seq.out", seq_out)
    write(folder / "label", label)
    return folder


def raises_at(
    where: str | Path, line: int, problem: str
) -> AbstractContextManager[pytest.ExceptionInfo[DataError]]:
    """Expect a DataError whose message starts with '<where>:<line>: ' and names ``problem``."""
    return pytest.raises(DataError, match=re.escape(f"{where}:{line}: ") + ".*" + problem)


# --------------------------------------------------------------------------- example + formats


def test_the_three_formats_give_the_same_example(tmp_path: Path) -> None:
    annot = "wake me up at [time : five am] [date : this week]"
    massive = write(tmp_path / "massive.jsonl", jsonl(massive_record(annot, id="7", utt=TEXT)))
    folder = bio_folder(tmp_path / "bio", TEXT + "\n", " ".join(TAGS) + "\n", "alarm_set\n")
    spans = write(
        tmp_path / "spans.jsonl", jsonl({"text": TEXT, "intent": "alarm_set", "slots": SLOTS})
    )

    from_massive = read_massive(massive)
    from_bio = read_bio(folder)
    from_spans = read_spans_jsonl(spans)
    from_records = from_span_records([{"text": TEXT, "intent": "alarm_set", "slots": SLOTS}], "t")

    assert from_massive == from_bio == from_spans == from_records == [ALARM]
    assert from_massive[0].id == "7"  # metadata survives but does not affect equality
    assert from_bio[0].id is None


def test_example_text_tuples_and_length_check() -> None:
    example = NLUExample(list(WORDS), list(TAGS), "alarm_set", id="x")  # type: ignore[arg-type]
    assert example == ALARM and hash(example) == hash(ALARM)
    assert example.text == TEXT
    with pytest.raises(ValueError, match="2 tags for 1 words"):
        NLUExample(("a",), ("O", "O"), "i")
    pair = PairExample("p", "h", "neutral", "en", id="1")
    assert pair == PairExample("p", "h", "neutral", "en", id="2")


# ------------------------------------------------------------------------------ parse_annotated


@pytest.mark.parametrize(
    ("annot", "words", "tags"),
    [
        (
            "wake me up at [time : five am] [date : this week]",
            list(WORDS),
            list(TAGS),
        ),
        (
            "[date : 今週] は [time : 午前五時] に起こして",
            ["今週", "は", "午前五時", "に起こして"],
            ["B-date", "O", "B-time", "O"],
        ),
        # A bracket ends a word even without a space: slots always cover whole words.
        ("[date : 今週]は", ["今週", "は"], ["B-date", "O"]),
        (
            "at [time : 5:30 pm]  please ",
            ["at", "5:30", "pm", "please"],
            ["O", "B-time", "I-time", "O"],
        ),
        ("no slots here", ["no", "slots", "here"], ["O", "O", "O"]),
    ],
)
def test_parse_annotated(annot: str, words: list[str], tags: list[str]) -> None:
    assert parse_annotated(annot, "f:1") == (words, tags)


@pytest.mark.parametrize(
    ("annot", "problem"),
    [
        ("wake me at [time : five am", "'\\[' at character 12 is never closed"),
        ("wake me at time : five am]", "'\\]' at character 26 without an opening '\\['"),
        ("[time : [date : x] y]", "nested '\\[' at character 9"),
        ("wake [time five am]", "no ' : ' between its type and its value"),
        ("wake [ : five am]", "empty type"),
        ("wake [time : ]", "empty value"),
        ("wake [time of day : five]", "type must not contain whitespace"),
        ("   ", "no words"),
    ],
)
def test_parse_annotated_malformed(annot: str, problem: str) -> None:
    with pytest.raises(DataError, match="^data.jsonl:3: .*" + problem):
        parse_annotated(annot, "data.jsonl:3")


# ---------------------------------------------------------------------------------- MASSIVE


def test_read_massive_filters_and_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.jsonl",
        jsonl(
            massive_record("[time : five am]", id=1, partition="train"),
            massive_record("[time : six am]", id=2, partition="dev"),
            massive_record("[time : 五時]", id=3, partition="train", locale="ja-JP"),
        )
        + "\n",  # blank lines are ignored
    )
    assert [e.id for e in read_massive(path)] == ["1", "2", "3"]
    assert [e.id for e in read_massive(path, partition="train")] == ["1", "3"]
    train_ja = read_massive(path, partition="train", locales=["ja-JP"])
    assert train_ja == [NLUExample(("五時",), ("B-time",), "alarm_set", "ja-JP")]
    assert read_massive(path, partition="test") == []


def test_read_massive_accepts_utt_without_spaces(tmp_path: Path) -> None:
    # ja-JP / zh-CN: utt has no spaces between words, annot_utt has.
    record = massive_record("[date : 今週] は", utt="今週は", locale="ja-JP")
    assert read_massive(write(tmp_path / "m.jsonl", jsonl(record)))[0].words == ("今週", "は")


def test_read_massive_bad_records_name_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = massive_record("wake me up at [time : five am]")
    path = write(
        tmp_path / "m.jsonl",
        jsonl(good, good, massive_record("wake me up at [time : five am"))
        + "{not json\n"
        + jsonl(massive_record("[time : five am]", intent=""))
        + jsonl(massive_record("[time : five am]", utt="six am")),
    )
    with raises_at(path, 3, "is never closed"):
        read_massive(path)

    stats = SourceStats()
    with caplog.at_level(logging.WARNING):
        examples = read_massive(path, on_error="skip", stats=stats)
    assert len(examples) == 2
    assert stats.skipped == 4
    assert stats.reasons == {
        "bad slot annotation": 1,
        "invalid JSON": 1,
        "missing or bad field": 1,
        "annot_utt does not match utt": 1,
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 4 bad record(s)" in warnings[0] and f"{path}:3:" in warnings[0]


# ------------------------------------------------------------------------------------- BIO


def test_check_bio_and_bio_spans() -> None:
    check_bio(list(TAGS), "w")
    check_bio([], "w")
    with pytest.raises(DataError, match=r"^f:2: I-time without B-time at word 2$"):
        check_bio(["O", "I-time"], "f:2")
    with pytest.raises(DataError, match="I-date without B-date at word 2"):
        check_bio(["B-time", "I-date"], "f:2")
    with pytest.raises(DataError, match="invalid tag 'X-time' at word 1"):
        check_bio(["X-time"], "f:2")
    with pytest.raises(DataError, match="invalid tag 'B-' at word 1"):
        check_bio(["B-"], "f:2")

    assert bio_spans(TAGS) == [("time", 4, 6), ("date", 6, 8)]
    assert bio_spans(["B-a", "B-a", "I-a"]) == [("a", 0, 1), ("a", 1, 3)]
    # Strict reading: a stray I- (or a malformed tag) starts nothing.
    assert bio_spans(["O", "I-a", "I-a", "B-b", "I-a", "junk"]) == [("b", 3, 4)]
    assert bio_spans([]) == []


def test_read_bio_tolerates_trailing_spaces(tmp_path: Path) -> None:
    folder = bio_folder(
        tmp_path / "train",
        "wake me up \nplay jazz",  # no final newline
        "O O O \nO B-genre \n\n",  # blank lines at the very end are not examples
        "alarm_set\nplay_music \n",
    )
    examples = read_bio(folder, locale="de-DE")
    assert examples == [
        NLUExample(("wake", "me", "up"), ("O", "O", "O"), "alarm_set", "de-DE"),
        NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music", "de-DE"),
    ]


def test_read_bio_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    seq_in = "a b\na b\nwake me up at five am\nc\n\nd e\n"
    seq_out = "O O\nO O\nO O O O B-time I-time O\nI-x\nO\nO O\n"
    label = "i\ni\ni\ni\ni\ni\n"
    folder = bio_folder(tmp_path / "snips", seq_in, seq_out, label)
    with raises_at(folder / "seq.out", 3, "7 tags for 6 words"):
        read_bio(folder)

    stats = SourceStats()
    examples = read_bio(folder, on_error="skip", stats=stats)
    assert [e.words for e in examples] == [("a", "b"), ("a", "b"), ("d", "e")]
    assert stats.skipped == 3
    assert stats.reasons == {"word/tag count mismatch": 1, "bad BIO tags": 1, "empty line": 1}

    empty = bio_folder(tmp_path / "empty", "a\n\nb\n", "O\nO\nO\n", "i\ni\ni\n")
    with raises_at(empty / "seq.in", 2, "empty line"):
        read_bio(empty)


def test_read_bio_invalid_tags(tmp_path: Path) -> None:
    folder = bio_folder(tmp_path / "d", "a\na b\nfive am\n", "O\nO O\nO I-time\n", "i\ni\ni\n")
    with raises_at(folder / "seq.out", 3, "I-time without B-time at word 2"):
        read_bio(folder)


def test_read_bio_line_counts_must_match(tmp_path: Path) -> None:
    folder = bio_folder(tmp_path / "d", "a\nb\nc\n", "O\nO\n", "i\ni\ni\n")
    pattern = re.escape(f"{folder / 'seq.out'}:3: file ends after 2 lines") + ".*seq.in has 3"
    for on_error in ("raise", "skip"):  # files that cannot be aligned are never skippable
        with pytest.raises(DataError, match=pattern + ".*label has 3"):
            read_bio(folder, on_error=on_error)  # type: ignore[arg-type]


def test_read_bio_missing_files(tmp_path: Path) -> None:
    write(tmp_path / "d" / "seq.in", "a\n")
    with pytest.raises(DataError, match=r"missing seq\.out, label"):
        read_bio(tmp_path / "d")
    with pytest.raises(DataError, match="not a folder"):
        read_bio(tmp_path / "nowhere")


# ----------------------------------------------------------------------------------- spans


@pytest.mark.parametrize(
    ("slots", "problem"),
    [
        ([{"start": 15, "end": 21, "type": "time"}], r"\[15, 21\) = 'ive am' does not start"),
        ([{"start": 14, "end": 22, "type": "time"}], "does not start and end on word bound"),
        (
            [{"start": 14, "end": 21, "type": "time"}, {"start": 19, "end": 26, "type": "x"}],
            r"slot 'x' \[19, 26\) overlaps slot 'time' ending at 21",
        ),
        (
            [{"start": 22, "end": 31, "type": "d"}, {"start": 14, "end": 26, "type": "t"}],
            "overlaps",
        ),
        ([{"start": 22, "end": 40, "type": "date"}], "outside the text"),
        ([{"start": 5, "end": 5, "type": "date"}], "is empty"),
        ([{"start": "14", "end": 21, "type": "time"}], "'start' must be an integer"),
        ([{"start": 14, "end": 21}], "'type' must be a non-empty string"),
        (["time"], "slot 1 is a string, not an object"),
    ],
)
def test_bad_spans(slots: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(DataError, match="^x:4: .*" + problem):
        spans_to_example(TEXT, slots, "alarm_set", "en-US", "x:4")


def test_spans_to_example_unordered_slots_and_extra_whitespace() -> None:
    text = "  wake me up at five am this week "
    slots = [{"start": 24, "end": 33, "type": "date"}, {"start": 16, "end": 23, "type": "time"}]
    example = spans_to_example(text, slots, "alarm_set", "en-US", "w", id="3")
    assert example == ALARM and example.id == "3"


def test_read_spans_jsonl(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.jsonl",
        jsonl(
            {"utterance": TEXT, "intent": "alarm_set", "slots": SLOTS, "id": 5},
            {"utterance": "hi", "intent": "greet", "locale": "de-DE"},  # no slots
            {"utterance": TEXT, "intent": "alarm_set", "slots": [SLOTS[0], SLOTS[0]]},
        ),
    )
    with raises_at(path, 3, "overlaps"):
        read_spans_jsonl(path, text_field="utterance")
    examples = read_spans_jsonl(path, text_field="utterance", on_error="skip")
    assert examples == [ALARM, NLUExample(("hi",), ("O",), "greet", "de-DE")]
    assert examples[0].id == "5"
    with raises_at(path, 1, "field 'text' must be a non-empty string, got missing"):
        read_spans_jsonl(path)


def test_from_span_records_synthetic() -> None:
    examples = from_span_records(labeled_examples(200, seed=1), "synthetic:labeled")
    assert len(examples) == 200
    assert all(len(e.words) == len(e.tags) and e.locale == "en-US" for e in examples)
    assert any(t != "O" for e in examples for t in e.tags)
    with pytest.raises(DataError, match=r"^demo: record 2: .*outside the text") as info:
        from_span_records(
            [{"text": "a", "intent": "i"}, {"text": "ab", "intent": "i", "slots": SLOTS[:1]}],
            "demo",
        )
    assert "on_error" not in str(info.value)  # in-memory records cannot be skipped


# ------------------------------------------------------------------------------------ XNLI


def test_read_xnli_tsv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dev-de.tsv",
        "premise\thypothesis\tlabel\n"
        "Er kam.\tEr ging.\tcontradictory\n"
        "\n"
        "Er kam.\tEr ist da.\tentailment\n"
        "Er kam.\tEr ist müde.\t1\n",
    )
    assert read_xnli_tsv(path) == [
        PairExample("Er kam.", "Er ging.", "contradiction", "de"),
        PairExample("Er kam.", "Er ist da.", "entailment", "de"),
        PairExample("Er kam.", "Er ist müde.", "neutral", "de"),
    ]
    assert {e.language for e in read_xnli_tsv(path, language="fr")} == {"fr"}


def test_read_xnli_tsv_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "dev-en.tsv", "a\tb\tneutral\na\tb\nc\td\tmaybe\n")
    with raises_at(path, 2, "expected 3 tab-separated columns"):
        read_xnli_tsv(path)
    stats = SourceStats()
    assert len(read_xnli_tsv(path, on_error="skip", stats=stats)) == 1
    assert stats.reasons == {"wrong number of columns": 1, "bad label": 1}
    unnamed = write(tmp_path / "pairs.tsv", "a\tb\tneutral\n")
    with pytest.raises(DataError, match="cannot tell the language from the file name 'pairs'"):
        read_xnli_tsv(unnamed)


def test_read_xnli_jsonl(tmp_path: Path) -> None:
    records = [
        {"premise": "P", "hypothesis": "H", "label": 0},
        {"premise": "P", "hypothesis": "H", "label": 2},
        {"premise": "P", "hypothesis": "H", "label": "neutral", "language": "zh-CN"},
    ]
    path = write(tmp_path / "hkunlp" / "de" / "test.jsonl", jsonl(*records))
    examples = read_xnli_jsonl(path)
    assert [(e.label, e.language) for e in examples] == [
        ("entailment", "de"),
        ("contradiction", "de"),
        ("neutral", "zh-CN"),
    ]
    assert {e.language for e in read_xnli_jsonl(path, language="fr")} == {"fr"}

    elsewhere = write(tmp_path / "dev" / "test.jsonl", jsonl(*records))
    with pytest.raises(DataError, match="cannot tell the language from the folder name 'dev'"):
        read_xnli_jsonl(elsewhere)
    with_field = write(tmp_path / "x" / "t.jsonl", jsonl(records[2]))
    assert read_xnli_jsonl(with_field)[0].language == "zh-CN"

    bad = write(tmp_path / "en" / "t.jsonl", jsonl(records[0], {**records[0], "label": -1}))
    with raises_at(bad, 2, "label -1 is not one of entailment"):
        read_xnli_jsonl(bad)


# ------------------------------------------------------------------------------- label vocab


def test_label_vocab_round_trip(tmp_path: Path) -> None:
    examples = [
        ALARM,
        NLUExample(("play", "jazz"), ("O", "B-genre"), "play_music"),
        NLUExample(("hi",), ("O",), "greet"),
    ]
    vocab = LabelVocab.build(examples)
    assert vocab.intents == ["alarm_set", "greet", "play_music"]
    assert vocab.slot_tags == ["O", "B-date", "I-date", "B-genre", "I-genre", "B-time", "I-time"]
    assert vocab.intent_id("greet") == 1 and vocab.tag_id("I-time") == 6
    assert vocab.intent_id("weather_query") == -1 and vocab.tag_id("B-weather") == -1

    vocab.save(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / LABELS_FILE).read_text())
    assert saved == vocab.to_json()
    loaded = LabelVocab.load(tmp_path / "model")
    assert loaded == vocab and loaded.tag_id("B-genre") == 3
    assert LabelVocab.from_json(vocab.to_json()) == vocab


def test_label_vocab_pairs_and_errors(tmp_path: Path) -> None:
    pairs = [PairExample("p", "h", label, "en") for label in ("neutral", "contradiction")]
    vocab = LabelVocab.build_pairs(pairs)
    # All three XNLI labels in HF order, even when a set lacks one: ids stay 0, 1, 2.
    assert vocab.intents == list(PAIR_LABELS) and vocab.slot_tags == []
    other = LabelVocab.build_pairs([PairExample("p", "h", x, "en") for x in ("yes", "no")])
    assert other.intents == ["no", "yes"]

    with pytest.raises(DataError, match="no label vocabulary"):
        LabelVocab.load(tmp_path)
    write(tmp_path / LABELS_FILE, '{"intents": ["a"], "slot_tags": "O"}')
    with pytest.raises(DataError, match="'slot_tags' must be a list of strings"):
        LabelVocab.load(tmp_path)
    write(tmp_path / LABELS_FILE, "{")
    with pytest.raises(DataError, match="cannot read the label vocabulary"):
        LabelVocab.load(tmp_path)
    with pytest.raises(DataError, match="duplicates: a"):
        LabelVocab.from_json({"intents": ["a", "a"], "slot_tags": []})
    with pytest.raises(DataError, match="no examples"):
        LabelVocab.build([])


# ------------------------------------------------------------------------------- set config


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"format": "synthetic"}, "needs num_examples"),
        ({"format": "synthetic", "num_examples": 5, "path": "x"}, "takes no path"),
        ({"format": "massive"}, "'massive' needs a path"),
        ({"format": "massive", "path": "m.jsonl", "partiton": "train"}, "partiton"),
        ({"format": "bio", "path": "d", "partition": "train"}, "partition applies to"),
        ({"format": "massive", "path": "m", "locales": []}, "empty list"),
        ({"format": "massive", "path": "m", "num_examples": 0}, "greater than 0"),
        ({"format": "massive", "path": "m", "skip": -1}, "greater than or equal to 0"),
        ({"format": "csv", "path": "m"}, "format"),
    ],
)
def test_labeled_set_config_errors(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        LabeledSetConfig.model_validate(raw)


def test_labeled_set_config_task() -> None:
    assert LabeledSetConfig(format="massive", path="m").task == "intent_slot"
    assert LabeledSetConfig(format="synthetic", num_examples=3).task == "intent_slot"
    assert LabeledSetConfig(format="xnli_tsv", path="x").task == "pair"


# --------------------------------------------------------------------------------- load_labeled


def test_load_labeled_massive_glob_skip_and_limit(tmp_path: Path) -> None:
    for name, ids in (("a.jsonl", range(0, 4)), ("b.jsonl", range(4, 6))):
        records = [massive_record(f"[time : t{i}]", id=i) for i in ids]
        write(tmp_path / "data" / name, jsonl(*records))
    cfg = LabeledSetConfig(format="massive", path="data/*.jsonl", skip=1, num_examples=4)
    examples = load_labeled(cfg, root=tmp_path)
    assert [e.id for e in examples] == ["1", "2", "3", "4"]  # sorted files, then skip, then N
    rest = load_labeled(LabeledSetConfig(format="massive", path="data", skip=5), tmp_path)
    assert [e.id for e in rest] == ["5"]
    german = load_labeled(
        LabeledSetConfig(format="massive", path="data/b.jsonl", language="de-DE"), tmp_path
    )
    assert {e.locale for e in german} == {"de-DE"}


def test_load_labeled_empty_set_names_path_and_filters(tmp_path: Path) -> None:
    write(tmp_path / "m.jsonl", jsonl(massive_record("[time : five am]")))
    cfg = LabeledSetConfig(format="massive", path="m.jsonl", partition="dev", locales=["de-DE"])
    with pytest.raises(DataError, match=r"'m\.jsonl'.*no examples.*partition='dev', locales="):
        load_labeled(cfg, root=tmp_path)
    with pytest.raises(DataError, match="skip=3 dropped all 1 examples"):
        load_labeled(LabeledSetConfig(format="massive", path="m.jsonl", skip=3), tmp_path)
    with pytest.raises(DataError, match="no such file or directory"):
        load_labeled(LabeledSetConfig(format="massive", path="missing.jsonl"), tmp_path)


def test_load_labeled_skip_mode_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = massive_record("[time : five am")
    for name in ("a.jsonl", "b.jsonl"):
        write(tmp_path / name, jsonl(massive_record("[time : five am]"), bad))
    cfg = LabeledSetConfig(format="massive", path="*.jsonl")
    with caplog.at_level(logging.WARNING):
        examples = load_labeled(cfg, root=tmp_path, on_error="skip")
    assert len(examples) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2 bad record(s)" in warnings[0]


def test_load_labeled_synthetic() -> None:
    cfg = LabeledSetConfig(format="synthetic", num_examples=30, seed=3)
    examples = load_labeled(cfg)
    assert len(examples) == 30
    assert examples == from_span_records(labeled_examples(30, 3), "s")
    dev = load_labeled(LabeledSetConfig(format="synthetic", num_examples=10, seed=3, skip=30))
    assert dev == from_span_records(labeled_examples(40, 3), "s")[30:]


def test_load_labeled_bio_and_xnli(tmp_path: Path) -> None:
    bio_folder(tmp_path / "snips" / "dev", "a b\n", "O B-x\n", "i\n")
    bio = load_labeled(LabeledSetConfig(format="bio", path="snips/dev", language="fr-FR"), tmp_path)
    assert bio == [NLUExample(("a", "b"), ("O", "B-x"), "i", "fr-FR")]
    with pytest.raises(DataError, match="no such folder: 'snips/train'"):
        load_labeled(LabeledSetConfig(format="bio", path="snips/train"), tmp_path)

    write(tmp_path / "xnli" / "dev-de.tsv", "a\tb\tneutral\n")
    write(tmp_path / "xnli" / "dev-en.tsv", "c\td\tentailment\n")
    pairs = load_labeled(LabeledSetConfig(format="xnli_tsv", path="xnli/dev-*.tsv"), tmp_path)
    assert [(p.language, p.label) for p in pairs] == [("de", "neutral"), ("en", "entailment")]
    write(
        tmp_path / "test" / "sw" / "test.jsonl",
        jsonl({"premise": "a", "hypothesis": "b", "label": 1}),
    )
    cfg = LabeledSetConfig(format="xnli_jsonl", path="test/*/test.jsonl")
    assert load_labeled(cfg, tmp_path) == [PairExample("a", "b", "neutral", "sw")]


# ------------------------------------------------------------------------------------ real data


def test_real_snips() -> None:
    root = shared("snips")
    counts = {}
    for split in ("train", "dev", "test"):
        examples = read_bio(root / split)
        assert all(len(e.words) == len(e.tags) > 0 for e in examples)
        counts[split] = len(examples)
    assert counts == {"train": 13084, "dev": 700, "test": 700}
    assert len(LabelVocab.build(read_bio(root / "dev")).intents) == 7


def test_real_massive_en_us() -> None:
    path = shared("massive", "data", "en-US.jsonl")
    examples = read_massive(path)
    assert len(examples) == 16521
    counts = {p: len(read_massive(path, partition=p)) for p in ("train", "test")}
    assert counts == {"train": 11514, "test": 2974}
    cfg = LabeledSetConfig(format="massive", path="massive/data/en-US.jsonl", partition="dev")
    assert len(load_labeled(cfg, root=SHARED_DATA)) == 2033
    vocab = LabelVocab.build(examples)
    assert len(vocab.intents) == 60 and len(vocab.slot_tags) == 1 + 2 * 55


@pytest.mark.slow
def test_real_massive_all_locales_parse() -> None:
    files = sorted(shared("massive", "reconstructed").glob("*.jsonl"))
    assert files
    for path in [shared("massive", "data", "en-US.jsonl"), *files]:
        examples = read_massive(path)  # on_error="raise": every record must parse
        by_partition = collections.Counter(
            json.loads(line)["partition"] for line in path.read_text("utf-8").splitlines()
        )
        assert by_partition == {"train": 11514, "dev": 2033, "test": 2974}
        assert len(examples) == 16521, path


def test_real_xnli() -> None:
    dev = read_xnli_tsv(shared("xnli", "xtreme_dev", "dev-de.tsv"))
    assert len(dev) == 2490 and {e.language for e in dev} == {"de"}
    assert collections.Counter(e.label for e in dev) == dict.fromkeys(PAIR_LABELS, 830)
    test = read_xnli_jsonl(shared("xnli", "hkunlp_test", "sw", "test.jsonl"))
    assert len(test) == 5010 and {e.language for e in test} == {"sw"}
    assert collections.Counter(e.label for e in test) == dict.fromkeys(PAIR_LABELS, 1670)
