"""Static int8 quantisation: scale rules, graph surgery, and the quantised graph against a NumPy
reference of the same arithmetic."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from distilnlu.deploy.int8_gemm import gemm_rate, weight_shapes
from distilnlu.deploy.quantize import (
    MS_DOMAIN,
    STATIC_KEY,
    STATIC_VALUE,
    activation_params,
    calibrate,
    quantize_static,
    weight_matmuls,
    weight_params,
)

K, N, M = 6, 4, 3


def linear_graph(
    weight: np.ndarray, bias: np.ndarray, shared_bias: bool = False
) -> onnx.ModelProto:
    """``y = relu(x @ W + b) @ W2`` with the bias behind an Identity when ``shared_bias`` (as the
    exporter writes equal initializers), and a second, bias-free MatMul."""
    w2 = np.arange(N * 2, dtype=np.float32).reshape(N, 2) / 10 - 0.3
    inits = [
        numpy_helper.from_array(weight, "W"),
        numpy_helper.from_array(bias, "b"),
        numpy_helper.from_array(w2, "W2"),
    ]
    nodes = []
    bias_name = "b"
    if shared_bias:
        nodes.append(helper.make_node("Identity", ["b"], ["b_alias"], name="alias"))
        bias_name = "b_alias"
    nodes += [
        helper.make_node("MatMul", ["x", "W"], ["xw"], name="mm"),
        helper.make_node("Add", [bias_name, "xw"], ["h"], name="add"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "W2"], ["y"], name="mm2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(K, N)).astype(np.float32)
    bias = rng.normal(size=N).astype(np.float32)
    feeds = [{"x": rng.normal(size=(M, K)).astype(np.float32)} for _ in range(8)]
    return weight, bias, feeds


def test_activation_range_is_widened_to_zero_and_maps_onto_uint8():
    scale, zero = activation_params(0.5, 3.0)  # all positive: 0 joins the range
    assert scale == pytest.approx(3.0 / 255) and zero == 0
    scale, zero = activation_params(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255) and zero == round(1.0 / scale)
    assert activation_params(0.0, 0.0) == (1.0, 0)  # a constant-zero tensor: any scale is right


def test_weights_are_symmetric_int8_per_output_column():
    weight = np.array([[1.0, -0.02, 0.0], [-2.0, 0.01, 0.0]], dtype=np.float32)
    quantised, scale = weight_params(weight)
    np.testing.assert_allclose(scale, [2.0 / 127, 0.02 / 127, 1.0], rtol=1e-6)
    assert quantised.dtype == np.int8 and quantised[1, 0] == -127 and quantised[0, 1] == -127
    assert np.abs(quantised.astype(np.float32) * scale - weight).max() <= scale.max() / 2


@pytest.mark.parametrize("shared_bias", [False, True])
def test_weight_matmuls_fold_the_bias_add_even_behind_an_identity(shared_bias):
    weight, bias, _ = data()
    sites = weight_matmuls(linear_graph(weight, bias, shared_bias).graph)
    assert [(s.node.name, s.bias, s.output) for s in sites] == [
        ("mm", "b_alias" if shared_bias else "b", "h"),
        ("mm2", None, "y"),
    ]


def test_calibration_records_the_range_of_each_probed_tensor():
    weight, bias, feeds = data()
    model = linear_graph(weight, bias)
    ranges = calibrate(model, ["x", "r"], feeds)
    xs = np.concatenate([f["x"] for f in feeds])
    assert ranges["x"] == pytest.approx((xs.min(), xs.max()))
    assert ranges["r"][0] == 0.0  # after the ReLU
    with pytest.raises(ValueError, match="at least one"):
        calibrate(model, ["x"], [])


def reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, feeds) -> np.ndarray:
    """The first layer as static int8 computes it, in NumPy."""
    xs = np.concatenate([f["x"] for f in feeds])
    scale, zero = activation_params(float(xs.min()), float(xs.max()))
    x8 = np.clip(np.rint(x / scale) + zero, 0, 255).astype(np.int64)
    w8, w_scale = weight_params(weight)
    return ((x8 - zero) @ w8.astype(np.int64)).astype(np.float32) * scale * w_scale + bias


def test_quantised_graph_computes_the_int8_reference_and_is_marked_static():
    weight, bias, feeds = data()
    model = quantize_static(linear_graph(weight, bias, shared_bias=True), feeds)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulIntegerToFloat") == 2 and "MatMul" not in ops and "Add" not in ops
    assert any(o.domain == MS_DOMAIN for o in model.opset_import)
    assert {p.key: p.value for p in model.metadata_props}[STATIC_KEY] == STATIC_VALUE
    assert {"W", "W2"}.isdisjoint(i.name for i in model.graph.initializer)  # fp32 weights gone
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    x = feeds[0]["x"]
    out, hidden = session.run(None, {"x": x})
    np.testing.assert_allclose(hidden, reference(x, weight, bias, feeds), rtol=1e-5, atol=1e-5)
    fp32 = onnx_run(linear_graph(weight, bias), x)
    assert 0 < np.abs(out - fp32).max() < 0.05 * np.abs(fp32).max()  # int8: close, not equal


def onnx_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_gemm_rate_times_the_weight_shapes_of_an_exported_model(exported):
    folder, _ = exported
    shapes = weight_shapes(folder / "model.onnx")
    graph = onnx.load(str(folder / "model.onnx")).graph
    layers = sum(n.op_type == "Softmax" for n in graph.node)
    # Q/K/V, output, FFN in and out per layer, and the slot head; not the 2 attention products.
    assert len(shapes) == 4 * layers + 1
    assert sum(n.op_type == "MatMul" for n in graph.node) == len(shapes) + 2 * layers
    rate = gemm_rate(shapes, tokens=8, threads=1, repeats=20)
    assert rate["gemm_ms"] > 0 and rate["gops"] > 0 and rate["tokens"] == 8


def test_a_weight_shared_by_two_matmuls_is_quantised_once():
    """The exporter shares equal initializers; each weight must get one int8 copy, or the
    graph would hold two initializers of one name."""
    weight, _, feeds = data()
    square = np.ascontiguousarray(weight[:, :N])  # [K, N] used by both products
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["a"], name="first"),
            helper.make_node("MatMul", ["x", "W"], ["b"], name="second"),
            helper.make_node("Add", ["a", "b"], ["y"], name="sum"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, N])],
        [numpy_helper.from_array(square, "W")],
    )
    model = quantize_static(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), feeds
    )
    names = [i.name for i in model.graph.initializer]
    assert len(names) == len(set(names)) and names.count("W_s8") == 1
    assert [n.op_type for n in model.graph.node].count("QuantizeLinear") == 1  # x, once
    x = feeds[0]["x"]
    out = onnx_run(model, x)
    np.testing.assert_allclose(out, 2 * (x @ square), rtol=0.05, atol=0.05)
