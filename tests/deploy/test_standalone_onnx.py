"""The docs' onnxruntime + tokenizers snippet (docs/deployment.md, "Using a model without
distilnlu"), run in a Python that cannot import distilnlu (nor loads torch), answers exactly as
``distilnlu predict`` on the same export does."""

from __future__ import annotations

import json

import pytest

from distilnlu.deploy.export import export_model
from distilnlu.modeling.standalone import AUTO_MAP
from tests.modeling.standalone_env import (
    STANDALONE,
    dev_texts,
    docs_snippet,
    fill_snippet,
    make_old_folder,
    make_prior_folder,
    predict_stdout,
    run_without_distilnlu,
)

# Appended to the snippet: it ran on onnxruntime, tokenizers and numpy alone.
NO_TORCH = '\nassert not {"torch", "transformers"} & set(sys.modules), "torch was loaded"\n'


@pytest.fixture(scope="module")
def old_exported(tmp_path_factory, tiny_nlu_dir):
    """A folder as fine-tuning wrote it before the standalone files, then exported (fp32, int8)."""
    root = tmp_path_factory.mktemp("standalone_onnx")
    folder = make_old_folder(make_prior_folder(tiny_nlu_dir, root / "new"), root / "model")
    export_model(folder, int8=True)
    return folder


def test_export_adds_the_standalone_files_to_an_old_folder(old_exported):
    assert all((old_exported / name).is_file() for name in STANDALONE)
    assert json.loads((old_exported / "config.json").read_text())["auto_map"] == AUTO_MAP


@pytest.mark.parametrize(
    "backend, replace",
    [
        ("onnx", {}),
        (
            "onnx-int8",  # static int8: batched like fp32, the same answers as predict's
            {'/model.onnx"': '/model.int8.onnx"'},
        ),
    ],
)
def test_onnx_snippet_without_distilnlu_prints_what_predict_prints(
    old_exported, tiny_nlu_examples, tmp_path, backend, replace
):
    texts = dev_texts(tiny_nlu_examples)
    snippet = docs_snippet("onnxruntime.InferenceSession")
    code = fill_snippet(snippet, old_exported, texts, **replace) + NO_TORCH
    out = run_without_distilnlu(code, tmp_path / "run")
    expected = predict_stdout(old_exported, texts, backend)
    assert len(expected.splitlines()) == len(texts)
    assert out == expected
