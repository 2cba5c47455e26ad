"""The int8 recipe's LSTM input split: exact in float, a finer input grid once quantised.

Skipped without the `onnx` extra (pip install "emofusion[onnx]").
"""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "emofusion[onnx]"')
onnx = pytest.importorskip("onnx", reason='needs the onnx extra: pip install "emofusion[onnx]"')

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from emofusion.export.quantize import quantize_int8, split_lstm_inputs  # noqa: E402

HIDDEN, FEATURES = 16, 6


def one_lstm_graph(seed: int = 0) -> bytes:
    """X (T, B, 6) -> LSTM 16 -> Y (T, 1, B, 16), seeded weights of an LSTM's usual size."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((1, 4 * HIDDEN, FEATURES)) * 0.4).astype(np.float32)
    r = (rng.standard_normal((1, 4 * HIDDEN, HIDDEN)) * 0.3).astype(np.float32)
    b = (rng.standard_normal((1, 8 * HIDDEN)) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "w", "r", "b"], ["y"], name="lstm", hidden_size=HIDDEN)],
        "one_lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (r, "r"), (b, "b"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def run(graph: bytes, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def heavy_tailed_frames(seed: int = 1) -> np.ndarray:
    """Standardised-looking frames (T=50, B=3) with one outlier of 25 standard deviations, as the
    acoustic features have: the outlier sets onnxruntime's uint8 step for the whole tensor."""
    x = np.random.default_rng(seed).standard_normal((50, 3, FEATURES)).astype(np.float32)
    x[7, 1, 2] = 25.0
    return x


def test_the_split_graph_computes_the_same_function_in_float():
    graph, x = one_lstm_graph(), heavy_tailed_frames()
    split = split_lstm_inputs(graph, copies=4)
    lstm = next(n for n in onnx.load_from_string(split).graph.node if n.op_type == "LSTM")
    weights = {w.name: numpy_helper.to_array(w) for w in onnx.load_from_string(split).graph.initializer}
    assert weights[lstm.input[1]].shape == (1, 4 * HIDDEN, 4 * FEATURES)  # four copies of the input
    assert np.abs(run(split, x) - run(graph, x)).max() <= 1e-5


def test_the_split_makes_the_quantised_lstm_follow_the_float_one_closer():
    graph, x = one_lstm_graph(), heavy_tailed_frames()
    want = run(graph, x)
    plain = np.abs(run(quantize_int8(graph), x) - want).max()
    split = np.abs(run(quantize_int8(split_lstm_inputs(graph, copies=4)), x) - want).max()
    # The outlier makes the input step 32/255 = 0.13 standard deviations; four staggered copies
    # make it four times finer, and the drift of the outputs falls with it.
    assert plain > 0.02
    assert split < plain / 2, (plain, split)


def test_offsets_cancel_so_an_input_of_zeros_stays_exactly_zero_input():
    # All-zero input: the step is 0, every copy is 0, so the split graph's answer is the bias-only one.
    graph = one_lstm_graph()
    x = np.zeros((5, 2, FEATURES), dtype=np.float32)
    assert np.array_equal(run(split_lstm_inputs(graph), x), run(graph, x))
