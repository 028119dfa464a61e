"""Shared fixtures: a tiny recipe that runs whole stages on CPU in seconds."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY_TRAINING = {
    "max_steps": 8,
    "batch_size": 4,
    "seq_len": 32,
    "lr": 2e-3,
    "eval_every": 4,
    "checkpoint_every": 4,
    "shuffle_buffer": 8,
}

TINY_RECIPE: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {
        "corpora": {
            "public": {
                "spoken_share": 0.5,
                "sources": [{"path": "synthetic:public", "num_docs": 300, "seed": 0}],
            },
            "domain": {"sources": [{"path": "synthetic:domain", "num_docs": 300, "seed": 0}]},
            "domain_dev": {"sources": [{"path": "synthetic:domain", "num_docs": 20, "seed": 9}]},
        }
    },
    "stages": {
        "tokenizer": {"kind": "tokenizer", "corpora": ["public", "domain"], "vocab_size": 400},
        "teacher_stage1": {
            "kind": "pretrain",
            "model": "tiny",
            "data": {"public": 1.0},
            "training": TINY_TRAINING,
            "eval": {"corpora": ["domain_dev"], "max_texts": 20},
        },
        "teacher_stage2": {
            "kind": "pretrain",
            "init": "teacher_stage1",
            "data": {"domain": 1.0},
            "training": {**TINY_TRAINING, "max_steps": 4},
            "eval": {"corpora": ["domain_dev"], "max_texts": 20},
        },
    },
}


def shared_data_or_skip() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (real-data test)")
    return SHARED_DATA


@pytest.fixture
def tiny_recipe_file(tmp_path: Path):
    """Factory: write a tiny recipe (optionally modified) to tmp_path and return its path."""

    def make(mutate=None, name: str = "recipe.yaml") -> Path:
        raw = copy.deepcopy(TINY_RECIPE)
        raw["output_dir"] = str(tmp_path / "runs")
        if mutate:
            mutate(raw)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return make


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small Unigram tokenizer trained on the built-in assistant utterances."""
    from distilnlu.data.synthetic import domain_utterances, labeled_examples
    from distilnlu.tokenization import train_tokenizer

    texts = domain_utterances(400, seed=0) + [ex["text"] for ex in labeled_examples(200, seed=1)]
    return train_tokenizer(texts, 300, show_progress=False)


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A saved, randomly initialised tiny masked LM with its tokenizer (an encoder to fine-tune)."""
    import torch

    from distilnlu.modeling.presets import build_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_mlm")
    build_model("tiny", len(tiny_tokenizer)).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_nlu_examples():
    """200 labeled synthetic assistant utterances (intents + BIO slots)."""
    from distilnlu.data.labeled import load_labeled
    from distilnlu.data.labeled_config import LabeledSetConfig

    return load_labeled(LabeledSetConfig(format="synthetic", num_examples=200, seed=1))


@pytest.fixture(scope="session")
def tiny_nlu_dir(tmp_path_factory, tiny_mlm_dir, tiny_nlu_examples) -> Path:
    """A saved intent + slot model on the tiny encoder (random heads; a deployment fixture).

    The heads are scaled up so that logits are far apart: answers then do not depend on the
    ~1e-6 numeric noise of batching and padding, and tests can compare them exactly.
    """
    import torch

    from distilnlu.data.labeled import LabelVocab
    from distilnlu.modeling.classifier import EncoderClassifier, load_encoder
    from distilnlu.tokenization import load_tokenizer

    torch.manual_seed(0)
    model = EncoderClassifier(load_encoder(tiny_mlm_dir), LabelVocab.build(tiny_nlu_examples))
    with torch.no_grad():
        for head in (model.intent_head, model.slot_head):
            head.weight.mul_(30.0)
    folder = tmp_path_factory.mktemp("tiny_nlu")
    model.save_pretrained(folder, extra={"max_length": 32})
    load_tokenizer(tiny_mlm_dir).save_pretrained(folder)
    return folder
