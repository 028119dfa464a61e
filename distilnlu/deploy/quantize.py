"""Static int8 quantisation of an exported graph, with scales calibrated on real utterances.

Every MatMul whose second input is a weight becomes ``QuantizeLinear`` (activation to uint8 with
a *fixed* scale and zero point) followed by ONNX Runtime's ``MatMulIntegerToFloat`` (int8 weights,
one scale per output column, the bias added in the same kernel, fp32 out). The attention
products, LayerNorms, softmax and the intent head's Gemm stay fp32, as with dynamic quantisation,
and so do the embedding lookups: quantising them too cost intent agreement on the demo dev set
(99.0% vs 99.3%, docs/deployment.md) for a smaller file but no speed.

Why fixed scales: dynamic quantisation picks each activation's scale from the whole tensor at
run time, so a text's answer moved with whatever else was in its batch (padding included). Here
each element is quantised on its own, the integer products are exact, and a text's answer is the
same alone and in any batch (tests/deploy/test_batch_invariance.py). The kernel is the one the
dynamic path fuses to, minus the per-call range scan, so it is no slower (docs/deployment.md).

Scales come from the min / max of each quantised activation over calibration utterances (the
model folder's dev set, unpadded, one at a time), widened to include 0 (uint8, asymmetric).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from distilnlu.rundir import atomic_path

Feed = dict[str, np.ndarray]
MS_DOMAIN = "com.microsoft"
# Metadata key and value marking a file as static int8: batch-invariant, safe to run batched.
STATIC_KEY, STATIC_VALUE = "distilnlu_int8", "static"
UINT8_MAX = 255
INT8_MAX = 127


@dataclass(frozen=True)
class WeightMatMul:
    """A MatMul ``activation [.., K] @ weight [K, N]``, and the bias Add folded into it."""

    node: onnx.NodeProto
    activation: str
    weight: str
    bias: str | None
    add: onnx.NodeProto | None

    @property
    def output(self) -> str:
        return (self.add or self.node).output[0]


def weight_matmuls(graph: onnx.GraphProto) -> list[WeightMatMul]:
    """The MatMuls with a 2-D constant weight, each with its bias ``Add`` when it has one."""
    inits = constants(graph)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for node in graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT:
            continue
        bias, add = _bias_of(node, consumers, inits, int(weight.dims[1]))
        found.append(WeightMatMul(node, node.input[0], weight.name, bias, add))
    return found


def constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Initializers by name, and by the names of ``Identity`` nodes over them (the exporter
    shares equal initializers, such as zero biases, that way)."""
    found = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in found:
            found[node.output[0]] = found[node.input[0]]
    return found


def _bias_of(
    node: onnx.NodeProto,
    consumers: dict[str, list[onnx.NodeProto]],
    inits: dict[str, onnx.TensorProto],
    width: int,
) -> tuple[str | None, onnx.NodeProto | None]:
    """The ``Add`` of a [N] constant that alone consumes the MatMul's output (nn.Linear's bias)."""
    users = consumers.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type != "Add":
        return None, None
    add = users[0]
    other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
    const = inits.get(other)
    if const is None or list(const.dims) != [width] or const.data_type != TensorProto.FLOAT:
        return None, None
    return other, add


def calibrate(
    model: onnx.ModelProto, tensors: Sequence[str], feeds: Iterable[Feed]
) -> dict[str, tuple[float, float]]:
    """(min, max) of each of ``tensors`` over the fp32 model run on ``feeds``."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # Unoptimised, so every probed tensor still exists (fusions would swallow some).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    low = dict.fromkeys(tensors, np.inf)
    high = dict.fromkeys(tensors, -np.inf)
    seen = 0
    for feed in feeds:
        for name, value in zip(tensors, session.run(list(tensors), feed), strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
        seen += 1
    if not seen:
        raise ValueError("calibration needs at least one utterance")
    return {name: (low[name], high[name]) for name in tensors}


def activation_params(low: float, high: float) -> tuple[float, int]:
    """uint8 scale and zero point of the range [low, high] widened to include 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / UINT8_MAX or 1.0
    zero = int(np.clip(round(-low / scale), 0, UINT8_MAX))
    return float(scale), zero


def weight_params(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column: ``(int8 weight [K, N], scale [N])``."""
    peak = np.abs(weight).max(axis=0)
    scale = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)
    quantised = np.clip(np.rint(weight / scale), -INT8_MAX, INT8_MAX).astype(np.int8)
    return quantised, scale


def _quantize_activation(
    site: WeightMatMul, low: float, high: float
) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    """The ``QuantizeLinear`` of ``site``'s activation to ``<activation>_u8``, and its
    scale and zero point."""
    act = site.activation
    scale, zero = activation_params(low, high)
    consts = [
        numpy_helper.from_array(np.array(scale, np.float32), f"{act}_u8_scale"),
        numpy_helper.from_array(np.array(zero, np.uint8), f"{act}_u8_zero"),
    ]
    node = helper.make_node(
        "QuantizeLinear",
        [act, f"{act}_u8_scale", f"{act}_u8_zero"],
        [f"{act}_u8"],
        name=f"{site.node.name}_quantize",
    )
    return node, consts


def _int8_matmul(site: WeightMatMul) -> onnx.NodeProto:
    """``MatMulIntegerToFloat`` of the quantised activation and weight, bias folded in."""
    act, weight = site.activation, site.weight
    inputs = [f"{act}_u8", f"{weight}_s8", f"{act}_u8_scale", f"{weight}_s8_scale"]
    inputs += [f"{act}_u8_zero", "", site.bias or ""]
    name = f"{site.node.name}_int8"
    return helper.make_node(
        "MatMulIntegerToFloat", inputs, [site.output], name=name, domain=MS_DOMAIN
    )


def quantize_static(model: onnx.ModelProto, feeds: Iterable[Feed]) -> onnx.ModelProto:
    """A copy of ``model`` with every weight MatMul static int8 (see the module docstring)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for k, node in enumerate(graph.node):
        node.name = f"{node.name or node.op_type}#{k}"  # unique: nodes are replaced by name
    sites = weight_matmuls(graph)
    ranges = calibrate(out, sorted({s.activation for s in sites}), feeds)
    inits = constants(graph)
    new_inits: list[onnx.TensorProto] = []
    replaced: dict[str, list[onnx.NodeProto]] = {}  # MatMul's name -> the nodes in its place
    dropped = {s.add.name for s in sites if s.add is not None}  # biases folded into the MatMul
    done: set[str] = set()  # activations and weights already quantised (each is, once)
    for site in sites:
        nodes = []
        if site.activation not in done:
            node, consts = _quantize_activation(site, *ranges[site.activation])
            nodes.append(node)
            new_inits += consts
        if site.weight not in done:
            w8, w_scale = weight_params(numpy_helper.to_array(inits[site.weight]))
            new_inits += [
                numpy_helper.from_array(w8, f"{site.weight}_s8"),
                numpy_helper.from_array(w_scale, f"{site.weight}_s8_scale"),
            ]
        done |= {site.activation, site.weight}
        replaced[site.node.name] = [*nodes, _int8_matmul(site)]
    rebuilt = [n for node in graph.node if node.name not in dropped
               for n in replaced.get(node.name, [node])]  # fmt: skip
    del graph.node[:]
    graph.node.extend(rebuilt)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]  # fp32 weights now unused
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    if not any(op.domain == MS_DOMAIN for op in out.opset_import):
        out.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    helper.set_model_props(out, {STATIC_KEY: STATIC_VALUE})
    return out


def quantize_file(source: Path, path: Path, feeds: Iterable[Feed]) -> None:
    """:func:`quantize_static` of the ONNX file ``source`` into ``path``, written atomically."""
    model = quantize_static(onnx.load(str(source)), feeds)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
