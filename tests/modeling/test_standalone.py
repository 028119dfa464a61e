"""A fine-tuned folder without distilnlu: the copied files, ``AutoModel`` with
``trust_remote_code`` building the joint model, and answers equal to ``distilnlu predict``'s.

The docs snippet itself (docs/deployment.md) runs in a Python that cannot import distilnlu; the
ONNX snippet is tested in tests/deploy/test_standalone_onnx.py.
"""

from __future__ import annotations

import ast
import itertools
import json
import shutil
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer

from distilnlu.data.labeled import LabelVocab
from distilnlu.deploy.parser import Parser, slots_from_tags, split_words
from distilnlu.evaluation.decoding import BIODecoder, TagPrior
from distilnlu.evaluation.metrics import chunks
from distilnlu.modeling import nlu_parse
from distilnlu.modeling.classifier import EncoderClassifier, load_encoder, load_nlu_model
from distilnlu.modeling.standalone import MODULE_DIR, write_standalone
from distilnlu.tasks import PAIR
from distilnlu.tokenization import load_tokenizer
from tests.modeling.standalone_env import (
    DOCS,
    SECTION,
    STANDALONE,
    dev_texts,
    docs_snippet,
    fill_snippet,
    hf_modules,  # noqa: F401 - a fixture
    make_old_folder,
    make_prior_folder,
    predict_stdout,
    run_without_distilnlu,
    skewed_prior,
)


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory, tiny_nlu_dir):
    return make_prior_folder(tiny_nlu_dir, tmp_path_factory.mktemp("prior") / "model")


@pytest.fixture(scope="module")
def texts(tiny_nlu_examples):
    return dev_texts(tiny_nlu_examples)


def _padded_batch(folder, texts):
    parser = Parser.load(folder, backend="torch")
    ids, mask, _ = parser.encode([split_words(t) for t in texts])
    return torch.from_numpy(ids), torch.from_numpy(mask)


def test_folder_holds_verbatim_copies_and_an_auto_map(prior_dir):
    for name in STANDALONE:
        assert (prior_dir / name).read_bytes() == (MODULE_DIR / name).read_bytes()
    config = json.loads((prior_dir / "config.json").read_text())
    labels = json.loads((prior_dir / "labels.json").read_text())
    assert config["auto_map"] == {"AutoModel": "modeling_nlu.DistilNLUModel"}
    assert config["distilnlu"] == {
        "task": "intent_slot",
        "pooling": "mean",
        "num_intents": len(labels["intents"]),
        "num_slot_tags": len(labels["slot_tags"]),
    }
    assert config["model_type"] == "roberta-prelayernorm"
    # The heads file holds what the docs say it holds, with those shapes.
    heads = load_file(prior_dir / "heads.safetensors")
    hidden = config["hidden_size"]
    assert {k: list(v.shape) for k, v in heads.items()} == {
        "intent_head.weight": [len(labels["intents"]), hidden],
        "intent_head.bias": [len(labels["intents"])],
        "slot_head.weight": [len(labels["slot_tags"]), hidden],
        "slot_head.bias": [len(labels["slot_tags"])],
    }


def test_standalone_files_import_nothing_but_what_they_may():
    allowed = {
        "modeling_nlu.py": {"torch", "transformers", "safetensors", "numpy"},
        "nlu_parse.py": {"numpy", "tokenizers"},  # tokenizers only in from_folder
    }
    for name, packages in allowed.items():
        tree = ast.parse((MODULE_DIR / name).read_text(encoding="utf-8"))
        found, relative = set(), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    relative.add(node.module)
                else:
                    found.add((node.module or "").split(".")[0])
        assert found - packages - set(sys.stdlib_module_names) == set(), name
        assert relative <= {"nlu_parse"}, name  # the sibling file, copied with it


def _valid_bio(tags: list[str]) -> bool:
    """``I-x`` only right after ``B-x`` or ``I-x`` (so never first); any other tag anywhere."""
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and len(tag) > 2 and previous not in (f"B-{tag[2:]}", tag):
            return False
        previous = tag
    return True


def _enumerated_best(tags, scores, start_counts, bigram_counts, weight):
    """Every valid tag sequence for ``scores`` ``[n_words, n_tags]`` with its total (float64
    log-softmax per word, plus ``weight`` times the add-one-smoothed start and bigram
    log-probabilities), and the best total."""
    x = scores.astype(np.float64)
    log_probs = x - x.max(-1, keepdims=True)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(-1, keepdims=True))
    start = np.log((start_counts + 1.0) / (start_counts + 1.0).sum())
    step = np.log((bigram_counts + 1.0) / (bigram_counts + 1.0).sum(1, keepdims=True))
    totals = {}
    for ids in itertools.product(range(len(tags)), repeat=len(scores)):
        if _valid_bio([tags[i] for i in ids]):
            prior = start[ids[0]] + sum(step[a, b] for a, b in itertools.pairwise(ids))
            totals[ids] = sum(log_probs[w, i] for w, i in enumerate(ids)) + weight * prior
    return totals, max(totals.values())


def test_parsing_pieces_match_references_on_random_inputs():
    """The folder's decoding (prior read from its JSON form), chunking and alignment, against
    references written out here: every valid BIO sequence enumerated, seqeval, worked offsets."""
    from seqeval.metrics.sequence_labeling import get_entities

    rng = np.random.default_rng(0)
    tags = ["O", "B-a", "I-a", "B-b", "I-b", "B-c-d", "I-c-d"]
    moved = 0
    for trial in range(60):
        counts = TagPrior.count(
            [rng.integers(0, len(tags), rng.integers(1, 6)).tolist() for _ in range(20)], len(tags)
        )
        weight = [0.0, 0.3, 1.0, 2.5][trial % 4]
        prior = nlu_parse.SlotPrior.from_json(counts.with_weight(weight).to_json(), len(tags))
        decoder = nlu_parse.BIODecoder(tags, prior)
        n_tokens = int(rng.integers(1, 7))
        scores = (rng.normal(size=(n_tokens, len(tags))) * 4).astype(np.float32)
        starts = sorted(
            rng.choice(n_tokens, size=rng.integers(1, min(n_tokens, 4) + 1), replace=False)
        )
        starts = [int(s) for s in starts] + [-1] * int(rng.integers(0, 3))
        got = decoder.decode_words(scores, starts)
        kept = [s for s in starts if s >= 0]
        assert got[len(kept) :] == [-1] * (len(starts) - len(kept))  # truncated words
        totals, best = _enumerated_best(
            tags, scores[kept], counts.start_counts, counts.bigram_counts, weight
        )
        ids = tuple(got[: len(kept)])
        assert ids in totals and totals[ids] == pytest.approx(best, abs=1e-9)
        winners = [seq for seq, total in totals.items() if total > best - 1e-9]
        if len(winners) == 1:
            assert ids == winners[0]
        moved += list(ids) != scores[kept].argmax(-1).tolist()
    assert moved > 10  # the constraint and the prior do change decisions
    odd = ["O", "B-x", "I-x", "I-y", "E-x", "S-y", "PER", "B", "I", "B-x-y", "."]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval (and distilnlu's metric) warn on the odd tags
        for seq in itertools.islice(itertools.product(odd, repeat=3), 0, None, 7):
            expected = [(type_, a, b + 1) for type_, a, b in get_entities(list(seq))]
            assert nlu_parse.chunks(list(seq)) == expected == chunks(list(seq)), seq
    text = "  a\tbb  ccc d  "
    words, offsets = nlu_parse.split_words(text)
    assert words == text.split() == ["a", "bb", "ccc", "d"]
    assert offsets == [(2, 3), (4, 6), (8, 11), (12, 13)]
    assert (split_words(text).words, split_words(text).offsets) == (words, offsets)
    tags_of_words = ["B-a", "I-a", "O", "I-b"]
    expected_slots = [
        {"type": "a", "value": "a\tbb", "start": 2, "end": 6},
        {"type": "b", "value": "d", "start": 12, "end": 13},
    ]
    assert nlu_parse.slots_from_tags(text, offsets, tags_of_words) == expected_slots
    assert slots_from_tags(text, offsets, tags_of_words) == expected_slots


@pytest.mark.usefixtures("hf_modules")
def test_joint_model_equals_distilnlu_bit_for_bit(prior_dir, texts):
    model = AutoModel.from_pretrained(prior_dir, trust_remote_code=True)
    assert type(model).__name__ == "DistilNLUModel" and not model.training
    reference = load_nlu_model(prior_dir)
    ids, mask = _padded_batch(prior_dir, texts)  # a padded batch of mixed lengths
    with torch.no_grad():
        out = model(ids, mask)
        intent, slots = reference(ids, mask)
    assert torch.equal(out.intent_logits, intent) and torch.equal(out.slot_logits, slots)
    assert model.intents == reference.labels.intents
    tokenizer = AutoTokenizer.from_pretrained(prior_dir)
    assert model.parse(texts, tokenizer) == Parser.load(prior_dir, backend="torch").parse(texts)
    # Without trust_remote_code, AutoModel is the plain encoder, which is how distilnlu loads it.
    assert type(AutoModel.from_pretrained(prior_dir)).__name__ == "RobertaPreLayerNormModel"


def test_the_prior_matters_so_the_comparisons_can_fail(prior_dir, texts):
    """Decoding without the saved prior gives other answers on this dev set: a standalone copy
    that dropped the prior (or its weight) would not equal predict."""
    parser = Parser.load(prior_dir, backend="torch")
    with_prior = parser.parse(texts)
    parser.decoder = BIODecoder(parser.labels.slot_tags, None)
    assert parser.parse(texts) != with_prior
    assert any(r["truncated"] for r in with_prior)  # the long text is cut at max_length


def test_transformers_snippet_without_distilnlu_prints_what_predict_prints(
    prior_dir, texts, tmp_path
):
    code = fill_snippet(docs_snippet("trust_remote_code=True"), prior_dir, texts)
    out = run_without_distilnlu(code, tmp_path / "run")
    expected = predict_stdout(prior_dir, texts, "torch")
    assert len(expected.splitlines()) == len(texts)
    assert out == expected


def test_parse_refuses_what_predict_refuses(prior_dir):
    parser = nlu_parse.NLUParser.from_folder(prior_dir)
    for bad in ["", "   \t", "a \ud800 b", "x" * 1001]:
        with pytest.raises(ValueError):
            parser.parse(["fine", bad], lambda ids, mask: pytest.fail("the model was called"))


def test_a_folder_saved_before_the_standalone_files_still_loads(prior_dir, texts, tmp_path):
    old = make_old_folder(prior_dir, tmp_path / "old")
    assert Parser.load(old, backend="torch").parse(texts) == Parser.load(
        prior_dir, backend="torch"
    ).parse(texts)
    assert "auto_map" not in json.loads((old / "config.json").read_text())
    write_standalone(old)  # what `distilnlu export` does to such a folder
    for name in ("config.json", *STANDALONE):
        assert (old / name).read_text() == (prior_dir / name).read_text(), name


@pytest.mark.usefixtures("hf_modules")
def test_joint_model_without_its_heads_file_is_an_error(prior_dir, tmp_path):
    folder = tmp_path / "no_heads"
    shutil.copytree(prior_dir, folder)
    (folder / "heads.safetensors").unlink()
    with pytest.raises(OSError, match=r"heads\.safetensors"):
        AutoModel.from_pretrained(folder, trust_remote_code=True)


@pytest.mark.usefixtures("hf_modules")
def test_joint_save_pretrained_writes_a_folder_distilnlu_loads(prior_dir, texts, tmp_path):
    model = AutoModel.from_pretrained(prior_dir, trust_remote_code=True)
    out = tmp_path / "resaved"
    model.save_pretrained(out)
    load_tokenizer(prior_dir).save_pretrained(out)
    for name in ("labels.json", "nlu_config.json", *STANDALONE):
        assert (out / name).read_text() == (prior_dir / name).read_text(), name
    assert Parser.load(out, backend="torch").parse(texts) == Parser.load(
        prior_dir, backend="torch"
    ).parse(texts)
    again = AutoModel.from_pretrained(out, trust_remote_code=True)
    ids, mask = _padded_batch(prior_dir, texts)
    with torch.no_grad():
        assert torch.equal(again(ids, mask).slot_logits, model(ids, mask).slot_logits)


@pytest.mark.usefixtures("hf_modules")
def test_pair_model_with_cls_pooling_loads_and_refuses_to_parse(tiny_mlm_dir, tmp_path):
    labels = LabelVocab(["entailment", "neutral", "contradiction"], [])
    torch.manual_seed(0)
    pair = EncoderClassifier(load_encoder(tiny_mlm_dir), labels, task=PAIR, pooling="cls").eval()
    folder = tmp_path / "pair"
    pair.save_pretrained(folder)
    load_tokenizer(tiny_mlm_dir).save_pretrained(folder)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    ids = torch.tensor([[0, 10, 11, 2, 12, 13, 2], [0, 14, 2, 15, 2, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        out = model(ids, mask)
        assert torch.equal(out.intent_logits, pair(ids, mask)[0]) and out.slot_logits is None
    with pytest.raises(ValueError, match="pair"):
        model.parse(["a b"], AutoTokenizer.from_pretrained(folder))


def test_token_classification_misuse_is_documented_and_as_documented(prior_dir):
    """The docs warn that AutoModelForTokenClassification gets a random head; check it does."""
    section = DOCS.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    assert "AutoModelForTokenClassification" in section and "randomly initialised" in section
    wrong = AutoModelForTokenClassification.from_pretrained(prior_dir)
    slot_head = load_file(prior_dir / "heads.safetensors")["slot_head.weight"]
    assert wrong.classifier.weight.shape != slot_head.shape or not torch.equal(
        wrong.classifier.weight, slot_head
    )


def test_skewed_prior_fixture_is_a_valid_saved_prior(prior_dir):
    settings = json.loads((prior_dir / "nlu_config.json").read_text())
    n = len(json.loads((prior_dir / "labels.json").read_text())["slot_tags"])
    assert settings["slot_prior"] == skewed_prior(n, 0.7).to_json()
