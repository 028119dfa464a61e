import pytest
import torch

from distilnlu.errors import ConfigError
from distilnlu.modeling.presets import (
    PRESETS,
    ModelShape,
    build_model,
    count_parameters,
    estimate_parameters,
    resolve_shape,
)

XLMR_VOCAB = 250_002
SMALL_VOCAB = 32_000

# Exact non-embedding counts (the output bias, one per vocabulary entry, makes them vary).
NON_EMBEDDING = {
    ("alexatm-2.3b", SMALL_VOCAB): 2_299_670_528,
    ("alexatm-2.3b", XLMR_VOCAB): 2_299_888_530,
    ("alexatm-9.3b", SMALL_VOCAB): 9_196_397_312,
    ("alexatm-9.3b", XLMR_VOCAB): 9_196_615_314,
    ("student-170m", SMALL_VOCAB): 170_736_128,
    ("student-170m", XLMR_VOCAB): 170_954_130,
    ("student-17m", SMALL_VOCAB): 17_105_664,
    ("student-17m", XLMR_VOCAB): 17_323_666,
}


@pytest.mark.parametrize("name", ["tiny", "tiny-64", "demo-teacher", "demo-student"])
@pytest.mark.parametrize("vocab_size", [50, 1000])
def test_estimate_equals_count_on_built_presets(name, vocab_size):
    model = build_model(PRESETS[name], vocab_size)
    assert count_parameters(model) == estimate_parameters(PRESETS[name], vocab_size)


def test_estimate_equals_count_on_free_shape():
    shape = ModelShape(num_layers=3, hidden_size=48, num_heads=3, max_position_embeddings=130)
    assert shape.ffn_size == 4 * 48
    model = build_model(shape, 77)
    counts = count_parameters(model)
    assert counts == estimate_parameters(shape, 77)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["embedding"] == (77 + 130 + 1) * 48


def test_tied_decoder_counted_once():
    model = build_model(PRESETS["tiny"], 100)
    embeddings = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is embeddings
    counts = count_parameters(model)
    assert counts["embedding"] == (100 + 514 + 1) * 32


@pytest.mark.parametrize(("name", "target"), [("alexatm-2.3b", 2.3e9), ("alexatm-9.3b", 9.3e9)])
@pytest.mark.parametrize("vocab_size", [SMALL_VOCAB, XLMR_VOCAB])
def test_teacher_presets_match_paper_non_embedding_counts(name, target, vocab_size):
    non_embedding = estimate_parameters(name, vocab_size)["non_embedding"]
    assert abs(non_embedding - target) / target < 0.05
    assert non_embedding == NON_EMBEDDING[name, vocab_size]


@pytest.mark.parametrize(("name", "target"), [("student-170m", 170e6), ("student-17m", 17e6)])
@pytest.mark.parametrize("vocab_size", [SMALL_VOCAB, XLMR_VOCAB])
def test_student_presets_match_paper_non_embedding_counts(name, target, vocab_size):
    # The paper's student sizes are non-embedding counts (see the presets module docstring).
    non_embedding = estimate_parameters(name, vocab_size)["non_embedding"]
    assert abs(non_embedding - target) / target < 0.05
    assert non_embedding == NON_EMBEDDING[name, vocab_size]


def test_preset_shapes_are_sane():
    assert PRESETS["student-17m"].num_layers == 4
    assert PRESETS["tiny"] == ModelShape(
        num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64
    )
    assert PRESETS["base"].ffn_size == 3072 and PRESETS["large"].num_layers == 24
    for name, shape in PRESETS.items():
        assert shape.hidden_size % shape.num_heads == 0, name
        if name.startswith(("alexatm", "student", "base", "large")):
            assert shape.head_dim in (64, 128), name
    # RoBERTa-base's well-known non-embedding count (~85M) is a sanity check of the formula.
    assert 85e6 < estimate_parameters("base", 50_265)["non_embedding"] < 86e6
    # Exactly: HF's RobertaForMaskedLM (124,697,433 parameters) plus the final LayerNorm of the
    # pre-LayerNorm variant (2 x 768).
    assert estimate_parameters("base", 50_265) == {
        "embedding": 38_999_040,
        "non_embedding": 85_699_929,
        "total": 124_698_969,
    }


def test_unknown_preset_lists_known_names():
    with pytest.raises(ConfigError) as info:
        resolve_shape("student-42m")
    message = str(info.value)
    assert "student-42m" in message
    for name in PRESETS:
        assert name in message


def test_resolve_shape_forms():
    assert resolve_shape("tiny") is PRESETS["tiny"]
    assert resolve_shape("Demo_Student") == PRESETS["demo-student"]
    shape = ModelShape(num_layers=1, hidden_size=16, num_heads=2)
    assert resolve_shape(shape) is shape
    assert resolve_shape({"num_layers": 1, "hidden_size": 16, "num_heads": 2}) == shape
    overridden = resolve_shape({"preset": "tiny", "dropout": 0.0})
    assert overridden.dropout == 0.0 and overridden.hidden_size == 32


@pytest.mark.parametrize(
    "spec",
    [
        {"num_layers": 2, "hidden_size": 30, "num_heads": 4},  # heads do not divide hidden
        {"num_layers": 0, "hidden_size": 32, "num_heads": 2},
        {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "widht": 3},  # extra key
        {"preset": "nope"},
        {"num_layers": 2},
        42,
    ],
)
def test_invalid_shapes_raise_config_error(spec):
    with pytest.raises(ConfigError):
        resolve_shape(spec)


def test_build_model_config_and_forward():
    model = build_model(PRESETS["tiny"], 60, attn_implementation="sdpa")
    config = model.config
    assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM"
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2)
    assert config.num_hidden_layers == 2 and config.intermediate_size == 64
    assert config.type_vocab_size == 1
    assert config._attn_implementation == "sdpa"
    model.eval()
    ids = torch.tensor([[0, 7, 8, 9, 2, 1, 1]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=(ids != 1).long())
    assert out.logits.shape == (1, 7, 60)
    assert PRESETS["tiny"].max_length == 512


def test_build_model_rejects_tiny_vocab():
    with pytest.raises(ConfigError):
        build_model(PRESETS["tiny"], 2)


def test_a_masked_lm_base_model_counts_as_its_fine_tuned_encoder(tmp_path):
    """What LM stages record as ``encoder_parameters`` equals what a fine-tuned model of the
    same folder reports: the encoder loaded without its LM head."""
    from distilnlu.modeling.classifier import load_encoder

    model = build_model("tiny", 300)
    model.save_pretrained(tmp_path)
    whole, encoder = count_parameters(model), count_parameters(model.base_model)
    assert encoder == count_parameters(load_encoder(tmp_path))
    hidden = 32  # the tiny preset: LM head = dense (H² + H) + LayerNorm (2H) + output bias (V)
    assert whole["non_embedding"] - encoder["non_embedding"] == hidden**2 + 3 * hidden + 300
