"""Tests for distilnlu.data.intent_formats: MASSIVE, BIO and span readers."""

from __future__ import annotations

import collections
import json
import logging
import re
from pathlib import Path

import pytest

from distilnlu.data.examples import NLUExample
from distilnlu.data.intent_formats import (
    from_span_records,
    read_bio,
    read_massive,
    read_spans_jsonl,
)
from distilnlu.data.labeled import LabelVocab, load_labeled
from distilnlu.data.labeled_config import LabeledSetConfig
from distilnlu.data.records import SourceStats
from distilnlu.data.synthetic import labeled_examples
from distilnlu.errors import DataError
from tests.data.helpers import (
    ALARM,
    LABELED_DATA,
    SLOTS,
    TAGS,
    TEXT,
    bio_folder,
    massive_record,
    raises_at,
    shared,
    write,
)
from tests.data.helpers import jsonl_utf8 as jsonl


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


# --------------------------------------------------------------------------------- MASSIVE


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
    assert sum(t != "O" for e in examples for t in e.tags) == 501
    with pytest.raises(DataError, match=r"^demo: record 2: .*outside the text") as info:
        from_span_records(
            [{"text": "a", "intent": "i"}, {"text": "ab", "intent": "i", "slots": SLOTS[:1]}],
            "demo",
        )
    assert "on_error" not in str(info.value)  # in-memory records cannot be skipped


# ------------------------------------------------------------------------------- real data


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
    assert len(load_labeled(cfg, root=LABELED_DATA)) == 2033
    vocab = LabelVocab.build(examples)
    assert len(vocab.intents) == 60 and len(vocab.slot_tags) == 1 + 2 * 55


@pytest.mark.slow
def test_real_massive_all_locales_parse() -> None:
    files = sorted(shared("massive", "reconstructed").glob("*.jsonl"))
    assert len(files) == 9
    for path in [shared("massive", "data", "en-US.jsonl"), *files]:
        examples = read_massive(path)  # on_error="raise": every record must parse
        by_partition = collections.Counter(
            json.loads(line)["partition"] for line in path.read_text("utf-8").splitlines()
        )
        assert by_partition == {"train": 11514, "dev": 2033, "test": 2974}
        assert len(examples) == 16521, path
