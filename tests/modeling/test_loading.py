import json

import pytest
import torch

from distilnlu.errors import ModelError
from distilnlu.modeling.loading import is_masked_lm_folder, load_masked_lm, looks_like_hub_id
from distilnlu.modeling.presets import PRESETS, build_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-mlm")
    torch.manual_seed(0)
    build_model(PRESETS["tiny"], 50).save_pretrained(path)
    return path


def test_load_saved_tiny_model(tiny_folder):
    torch.manual_seed(0)
    original = build_model(PRESETS["tiny"], 50)  # same seed as the fixture: same weights
    model = load_masked_lm(tiny_folder)
    assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM"
    assert model.config._attn_implementation == "sdpa"
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    for (name, a), (_, b) in zip(
        original.state_dict().items(), model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert is_masked_lm_folder(tiny_folder)
    assert is_masked_lm_folder(str(tiny_folder))


def test_load_with_string_path_and_eager(tiny_folder):
    model = load_masked_lm(str(tiny_folder), attn_implementation=None)
    assert model.config.vocab_size == 50


def test_missing_path(tmp_path):
    for missing in (tmp_path / "nope", str(tmp_path / "nope"), "./runs/does-not-exist/final"):
        with pytest.raises(ModelError, match="does not exist"):
            load_masked_lm(missing)
        assert not is_masked_lm_folder(missing)


def test_folder_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_masked_lm(tmp_path)
    assert not is_masked_lm_folder(tmp_path)


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        load_masked_lm(path)


def test_gpt2_folder_has_no_masked_lm_head(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=r"gpt2.*no masked-LM head"):
        load_masked_lm(tmp_path)
    assert not is_masked_lm_folder(tmp_path)


def test_gpt2_config_only_folder(tmp_path):
    from transformers import GPT2Config

    GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="no masked-LM head"):
        load_masked_lm(tmp_path)


def test_sequence_classification_checkpoint_is_rejected(tmp_path):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    config = RobertaConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    RobertaForSequenceClassification(config).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="RobertaForSequenceClassification"):
        load_masked_lm(tmp_path)
    assert not is_masked_lm_folder(tmp_path)


def test_folder_without_weights(tmp_path, tiny_folder):
    (tmp_path / "config.json").write_text((tiny_folder / "config.json").read_text())
    with pytest.raises(ModelError, match="no weights"):
        load_masked_lm(tmp_path)
    assert not is_masked_lm_folder(tmp_path)


def test_weights_without_lm_head(tmp_path):
    # An encoder saved without its head, with a config that claims a masked LM.
    from transformers import RobertaConfig, RobertaModel

    config = RobertaConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    RobertaModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["architectures"] = ["RobertaForMaskedLM"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="missing weight"):
        load_masked_lm(tmp_path)


def test_corrupt_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable config"):
        load_masked_lm(tmp_path)


def test_sdpa_unsupported_falls_back_to_eager(tmp_path):
    from transformers import DebertaV2Config, DebertaV2ForMaskedLM

    config = DebertaV2Config(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    DebertaV2ForMaskedLM(config).save_pretrained(tmp_path)
    model = load_masked_lm(tmp_path, attn_implementation="sdpa")
    assert type(model).__name__ == "DebertaV2ForMaskedLM"
    assert model.config._attn_implementation == "eager"


def test_hub_id_detection(tmp_path, tiny_folder):
    assert looks_like_hub_id("FacebookAI/xlm-roberta-base")
    assert looks_like_hub_id("roberta-base")
    assert not looks_like_hub_id("./runs/demo/final")
    assert not looks_like_hub_id("/abs/path")
    assert not looks_like_hub_id("~/models/x")
    assert not looks_like_hub_id("a/b/c")
    assert not looks_like_hub_id(str(tiny_folder))
    assert not looks_like_hub_id(tmp_path / "owner")  # a Path object is always a path


def test_hub_failure_becomes_model_error(monkeypatch):
    # No network in tests: make the hub lookup fail as it would offline.
    import transformers

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", offline)
    with pytest.raises(ModelError, match=r"not a local folder.*hub"):
        load_masked_lm("someone/some-model")


def test_hub_config_of_wrong_type_is_rejected(monkeypatch):
    import transformers

    monkeypatch.setattr(
        transformers.AutoConfig,
        "from_pretrained",
        lambda *a, **k: transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2),
    )
    with pytest.raises(ModelError, match="no masked-LM head"):
        load_masked_lm("openai-community/gpt2")
