import json

import pytest

from distilnlu.data.format_guess import guess_format
from distilnlu.errors import DataError


def jsonl(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_each_format_is_told_from_what_the_path_holds(tmp_path):
    bio = tmp_path / "atis"
    bio.mkdir()
    for name in ("seq.in", "seq.out", "label"):
        (bio / name).write_text("x\n")
    assert guess_format(bio) == "bio"
    record = {"id": "1", "utt": "hi", "annot_utt": "hi", "intent": "x"}
    massive = jsonl(tmp_path / "m.jsonl", record)
    assert guess_format(massive) == "massive"
    spans = jsonl(tmp_path / "s.jsonl", {"text": "hi", "intent": "greet", "slots": []})
    assert guess_format(spans) == "spans"
    pairs = jsonl(tmp_path / "x.jsonl", {"premise": "a", "hypothesis": "b", "label": "neutral"})
    assert guess_format(pairs) == "xnli_jsonl"
    (tmp_path / "dev.tsv").write_text("a\tb\tneutral\n")
    assert guess_format(tmp_path / "dev.tsv") == "xnli_tsv"
    folder = tmp_path / "massive_data"
    folder.mkdir()
    jsonl(folder / "en-US.jsonl", {"utt": "hi", "annot_utt": "hi", "intent": "x"})
    assert guess_format(folder) == "massive"


def test_blank_lines_before_the_first_record_are_passed_over(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('\n\n{"utt": "hi", "annot_utt": "hi"}\n')
    assert guess_format(path) == "massive"


@pytest.mark.parametrize("content", ['{"question": "?"}\n', "not json\n", ""])
def test_an_unknown_file_names_its_keys_and_the_flag(tmp_path, content):
    path = tmp_path / "odd.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=r"cannot tell its format .* give --format"):
        guess_format(path)


def test_a_folder_with_nothing_known_and_a_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"no seq.in, seq.out, label \(bio\)"):
        guess_format(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        guess_format(tmp_path / "nope")
