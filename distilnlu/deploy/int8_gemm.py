"""The core's own int8 GEMM rate at a model's shapes, in the runtime the int8 model runs in.

Latency at int8 follows the CPU (AVX-512 VNNI, AMX or neither), so a p50 alone does not compare
across machines. This times a graph of nothing but ONNX Runtime ``MatMulInteger`` (uint8 x int8
-> int32) at every weight matrix of the model, for one utterance of ``tokens`` rows, on the same
thread count. ``gemm_ms`` is what those products alone take; a model's *achieved fraction* is
``gemm_ms / p50``: 1.0 would mean nothing but the matrix products, at the rate the core gives
them at these shapes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from distilnlu.deploy.quantize import constants, weight_matmuls


def weight_shapes(fp32: Path) -> list[tuple[int, int]]:
    """``(K, N)`` of every weight MatMul of an exported fp32 graph (what int8 quantises)."""
    graph = onnx.load(str(fp32)).graph
    inits = constants(graph)
    return [tuple(int(d) for d in inits[s.weight].dims) for s in weight_matmuls(graph)]  # type: ignore[misc]


def _graph(shapes: list[tuple[int, int]]) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes, inits, inputs, outputs = [], [], [], []
    for k, (rows, cols) in enumerate(shapes):
        inputs.append(helper.make_tensor_value_info(f"a{k}", TensorProto.UINT8, [None, rows]))
        weight = rng.integers(-127, 128, (rows, cols)).astype(np.int8)
        inits += [
            numpy_helper.from_array(weight, f"w{k}"),
            numpy_helper.from_array(np.array(128, np.uint8), f"z{k}"),
        ]
        nodes.append(helper.make_node("MatMulInteger", [f"a{k}", f"w{k}", f"z{k}"], [f"y{k}"]))
        outputs.append(helper.make_tensor_value_info(f"y{k}", TensorProto.INT32, [None, cols]))
    graph = helper.make_graph(nodes, "int8_gemms", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def gemm_rate(
    shapes: list[tuple[int, int]], tokens: int, threads: int, repeats: int = 400
) -> dict[str, float]:
    """Median time of all ``shapes`` at ``tokens`` rows, and the rate it gives (GOPS)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        _graph(shapes).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(1)
    feed = {
        f"a{k}": rng.integers(0, 256, (tokens, rows)).astype(np.uint8)
        for k, (rows, _) in enumerate(shapes)
    }
    for _ in range(30):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    ops = 2 * tokens * sum(rows * cols for rows, cols in shapes)
    return {"tokens": tokens, "gemm_ms": seconds * 1e3, "gops": ops / seconds / 1e9}


def vnni() -> bool:
    """Whether this CPU reports AVX-512 VNNI (Linux /proc/cpuinfo)."""
    try:
        return "avx512_vnni" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
