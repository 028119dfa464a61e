"""Tests for distilnlu.data.mixing: temperature weights, source sizes, language mixing."""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from distilnlu.data.mixing import (
    mix_by_text_share,
    mix_languages,
    source_size,
    temperature_weights,
)
from distilnlu.data.source_config import Document, SourceConfig
from distilnlu.data.sources import iter_documents
from distilnlu.errors import DataError

# ---------------------------------------------------------------------------- temperature weights


def test_alpha_one_is_proportional() -> None:
    weights = temperature_weights({"en": 600, "de": 300, "sw": 100}, alpha=1.0)
    assert weights == pytest.approx({"en": 0.6, "de": 0.3, "sw": 0.1})


def test_alpha_zero_is_uniform() -> None:
    weights = temperature_weights({"en": 1e9, "de": 10, "sw": 1}, alpha=0.0)
    assert weights == pytest.approx({"en": 1 / 3, "de": 1 / 3, "sw": 1 / 3})


def test_alpha_point_three_hand_computed() -> None:
    # shares 0.9 / 0.1; 0.9**0.3 = exp(0.3 * ln 0.9) = 0.968886, 0.1**0.3 = 10**-0.3 = 0.501187;
    # normalised: 0.968886 / 1.470073 = 0.659073 and 0.501187 / 1.470073 = 0.340927.
    weights = temperature_weights({"en": 900, "de": 100})
    assert weights == pytest.approx({"en": 0.659073, "de": 0.340927}, abs=1e-6)
    # Three languages, shares 0.6 / 0.3 / 0.1: 0.857917, 0.696845, 0.501187 (sum 2.055950).
    weights = temperature_weights({"en": 6, "de": 3, "sw": 1}, alpha=0.3)
    assert weights == pytest.approx({"en": 0.417285, "de": 0.338941, "sw": 0.243774}, abs=1e-6)


def test_weights_sum_to_one_and_scale_free() -> None:
    a = temperature_weights({"en": 5e12, "xx": 1.0}, alpha=0.3)
    b = temperature_weights({"en": 5e3, "xx": 1e-3}, alpha=0.3)  # a larger share of xx
    assert sum(a.values()) == pytest.approx(1.0)
    assert a["xx"] == pytest.approx(1.5496788e-4, rel=1e-7)
    assert temperature_weights({"en": 10, "de": 20}) == pytest.approx(
        temperature_weights({"en": 1, "de": 2})
    )
    assert b["xx"] == pytest.approx(9.6846186e-3, rel=1e-7)
    assert b["xx"] > a["xx"]


@pytest.mark.parametrize(
    "sizes", [{}, {"en": 0}, {"en": 10, "de": -1}, {"en": float("nan")}, {"en": float("inf")}]
)
def test_weights_reject_empty_or_non_positive(sizes: dict) -> None:
    with pytest.raises((ValueError, DataError)):
        temperature_weights(sizes)


def test_weights_reject_negative_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        temperature_weights({"en": 1}, alpha=-0.1)


# ---------------------------------------------------------------------------------- source size


def test_source_size(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"x" * 100)
    (tmp_path / "d" / "b.txt").write_bytes(b"y" * 23)
    assert source_size(SourceConfig(path="d"), tmp_path) == 123.0
    assert source_size(SourceConfig(path="d/a.*"), tmp_path) == 100.0
    assert source_size(SourceConfig(path="synthetic:public", num_docs=50), None) == 3000.0
    with caplog.at_level(logging.WARNING):
        assert source_size(SourceConfig(path="hf:some/dataset"), None) == 1.0
    assert "hf:some/dataset" in caplog.text
    with pytest.raises(DataError, match="missing"):
        source_size(SourceConfig(path="missing/*.txt"), tmp_path)


# --------------------------------------------------------------------------------- mix_languages


def make_stream(lang: str, n: int, calls: collections.Counter | None = None):
    def factory() -> Iterator[Document]:
        if calls is not None:
            calls[lang] += 1
        return (Document(f"{lang}-{i}", lang) for i in range(n))

    return factory


def test_draw_rates_match_weights() -> None:
    weights = temperature_weights({"en": 900, "de": 90, "sw": 10}, alpha=0.3)
    streams = {lang: make_stream(lang, 50) for lang in weights}
    draws = 20_000
    counts = collections.Counter(
        d.language for d in itertools.islice(mix_languages(streams, weights, seed=3), draws)
    )
    # Weights 0.568 / 0.285 / 0.147; drawn 0.569 / 0.283 / 0.148.
    assert weights == pytest.approx({"en": 0.5680391, "de": 0.2846939, "sw": 0.1472670}, abs=1e-7)
    assert counts == {"en": 11_387, "de": 5_660, "sw": 2_953}


def test_unnormalised_and_zero_weights() -> None:
    calls: collections.Counter = collections.Counter()
    streams = {
        "en": make_stream("en", 5, calls),
        "de": make_stream("de", 5, calls),
        "xx": make_stream("xx", 5, calls),
    }
    draws = 20_000
    mixed = mix_languages(streams, {"en": 3.0, "de": 1.0, "xx": 0.0}, seed=0)
    counts = collections.Counter(d.language for d in itertools.islice(mixed, draws))
    assert counts == {"en": 15_023, "de": 4_977}  # en 75.1 %
    assert counts["xx"] == 0
    assert calls["xx"] == 0  # never drawn, never started


def test_exhausted_streams_restart_in_order() -> None:
    calls: collections.Counter = collections.Counter()
    streams = {"en": make_stream("en", 3, calls), "de": make_stream("de", 2, calls)}
    docs = list(itertools.islice(mix_languages(streams, {"en": 0.5, "de": 0.5}, seed=1), 200))
    for lang, n in (("en", 3), ("de", 2)):
        mine = [d.text for d in docs if d.language == lang]
        assert mine == [f"{lang}-{i % n}" for i in range(len(mine))]  # epoch after epoch
        assert calls[lang] == -(-len(mine) // n)  # one factory call per (started) epoch


def test_deterministic_given_seed() -> None:
    def run(seed: int) -> list[str]:
        streams = {lang: make_stream(lang, 7) for lang in ("en", "de", "fr")}
        weights = {"en": 0.5, "de": 0.3, "fr": 0.2}
        return [d.text for d in itertools.islice(mix_languages(streams, weights, seed), 500)]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_deterministic_regardless_of_dict_order() -> None:
    streams_a = {"en": make_stream("en", 4), "de": make_stream("de", 4)}
    streams_b = {"de": make_stream("de", 4), "en": make_stream("en", 4)}
    a = list(itertools.islice(mix_languages(streams_a, {"en": 0.7, "de": 0.3}, 5), 300))
    b = list(itertools.islice(mix_languages(streams_b, {"de": 0.3, "en": 0.7}, 5), 300))
    assert a == b


def test_empty_factory_raises() -> None:
    streams = {"en": make_stream("en", 3), "de": make_stream("de", 0)}
    with pytest.raises(DataError, match="'de'"):
        list(itertools.islice(mix_languages(streams, {"en": 0.5, "de": 0.5}, seed=0), 1000))


def test_factory_that_becomes_empty_raises() -> None:
    epochs = iter([[Document("only once", "en")], []])

    def factory() -> Iterator[Document]:
        return iter(next(epochs))

    mixed = mix_languages({"en": factory}, {"en": 1.0}, seed=0)
    assert next(mixed).text == "only once"
    with pytest.raises(DataError, match="'en'"):
        next(mixed)


@pytest.mark.parametrize(
    ("streams", "weights"),
    [
        ({"en": 1}, {"de": 1.0}),
        ({"en": 1}, {"en": 1.0, "de": 1.0}),
        ({"en": 1}, {"en": -1.0}),
        ({"en": 1}, {"en": 0.0}),
        ({"en": 1}, {"en": float("nan")}),
    ],
)
def test_bad_weights_are_rejected(streams: dict, weights: dict) -> None:
    streams = {lang: make_stream(lang, 1) for lang in streams}
    with pytest.raises(ValueError):
        mix_languages(streams, weights, seed=0)


def test_no_streams() -> None:
    with pytest.raises(DataError):
        mix_languages({}, {}, seed=0)


def test_mixing_real_sources_with_epochs(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "de.jsonl").write_text('{"text": "eins"}\n{"text": "zwei"}\n', encoding="utf-8")
    sources = {
        "en": SourceConfig(path="en.txt"),
        "de": SourceConfig(path="de.jsonl", language="de"),
    }
    sizes = {lang: source_size(s, tmp_path) for lang, s in sources.items()}
    weights = temperature_weights(sizes, alpha=0.3)
    streams = {lang: (lambda s=s: iter_documents(s, root=tmp_path)) for lang, s in sources.items()}
    docs = list(itertools.islice(mix_languages(streams, weights, seed=0), 100))
    assert {d.language for d in docs} == {"en", "de"}
    assert {d.text for d in docs} == {"one", "two", "three", "eins", "zwei"}


# ----------------------------------------------------------------------------- mix_by_text_share


def sized_stream(name: str, length: int, n: int = 7):
    """``n`` documents of ``length`` characters each (the name, padded)."""

    def factory() -> Iterator[Document]:
        return (Document(f"{name}{i}".ljust(length, "."), name) for i in range(n))

    return factory


def test_weights_are_shares_of_the_text_not_of_the_documents() -> None:
    # Short utterances (10 chars) and long articles (1,000 chars), 80/20 by text.
    streams = {"domain": sized_stream("domain", 10), "public": sized_stream("public", 1000)}
    mixed = mix_by_text_share(streams, {"domain": 0.8, "public": 0.2})
    chars: collections.Counter = collections.Counter()
    for document in itertools.islice(mixed, 5000):
        chars[document.language] += len(document.text)
        total = chars["domain"] + chars["public"]
        # Always within one (long) document of the target share.
        assert abs(chars["domain"] - 0.8 * total) <= 1000
    assert chars == {"domain": 49_870, "public": 13_000}  # domain 79.3 % of the text


def test_text_share_mixing_restarts_streams_and_skips_zero_weights() -> None:
    calls: collections.Counter = collections.Counter()
    streams = {"a": make_stream("a", 2, calls), "b": make_stream("b", 3, calls)}
    streams["z"] = make_stream("z", 3, calls)
    docs = list(itertools.islice(mix_by_text_share(streams, {"a": 1, "b": 1, "z": 0}), 60))
    assert calls["z"] == 0
    a_texts = [d.text for d in docs if d.language == "a"]
    assert a_texts == [f"a-{i % 2}" for i in range(len(a_texts))]  # epoch after epoch
    assert calls["a"] == -(-len(a_texts) // 2)
    # Same-length documents and equal weights: the two streams alternate.
    assert [d.language for d in docs[:6]] == ["a", "b", "a", "b", "a", "b"]


def test_text_share_mixing_checks_weights() -> None:
    streams = {"a": make_stream("a", 2)}
    with pytest.raises(ValueError, match="at least one"):
        mix_by_text_share(streams, {"a": 0.0})
    with pytest.raises(ValueError, match="no weight"):
        mix_by_text_share({"a": make_stream("a", 2), "b": make_stream("b", 2)}, {"a": 1.0})
    with pytest.raises(DataError, match="yielded nothing"):
        next(mix_by_text_share({"a": make_stream("a", 0)}, {"a": 1.0}))
