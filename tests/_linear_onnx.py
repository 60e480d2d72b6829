"""Torch-free ONNX streaming steps for registry and monitor tests.

A linear autoregression ``z_hat = W' [z_{t-p+1} .. z_t] + b`` fitted by least squares on
scaled data, written in the exact artifact format of :func:`tsforge.export.export_onnx`
(ONNX file + manifest with checksum) so that the registry and the runtime treat it like
any exported model, without the seconds that importing torch costs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def fit_ar(y: np.ndarray, order: int) -> tuple[np.ndarray, float, float, float]:
    """Least-squares AR(order) on the standardised series: (coef, intercept, mean, std)."""
    mean, std = float(np.mean(y)), float(np.std(y))
    z = (np.asarray(y, dtype=np.float64) - mean) / std
    rows = np.lib.stride_tricks.sliding_window_view(z[:-1], order)
    A = np.hstack([rows, np.ones((rows.shape[0], 1))])
    sol, *_ = np.linalg.lstsq(A, z[order:], rcond=None)
    return sol[:-1], float(sol[-1]), mean, std


def write_linear_ar(path: Path, coef: np.ndarray, intercept: float, mean: float, std: float,
                    *, sensor: str = "temp", name: str = "linear_ar") -> Path:
    """Write ``path`` (.onnx) and its manifest; return the ONNX path."""
    from onnx import TensorProto, helper, numpy_helper

    p = int(coef.shape[0])
    W = numpy_helper.from_array(np.asarray(coef, np.float32).reshape(p, 1), "W")
    b = numpy_helper.from_array(np.asarray([intercept], np.float32), "b")
    starts = numpy_helper.from_array(np.array([1], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([p], np.int64), "ends")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("Slice", ["state", "starts", "ends", "axes"], ["tail"]),
        helper.make_node("Concat", ["tail", "x"], ["new_state"], axis=1),
        helper.make_node("MatMul", ["new_state", "W"], ["lin"]),
        helper.make_node("Add", ["lin", "b"], ["forecast"]),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, ["batch", p])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("new_state", TensorProto.FLOAT, ["batch", p])],
        initializer=[W, b, starts, ends, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "format_version": 1, "tsforge_version": "test", "model": name,
        "config": {"order": p, "horizon": 1}, "horizon": 1, "n_channels": 1,
        "n_covariates": 0, "state_shape": [p], "online": False, "sensor": sensor,
        "transforms": [{"kind": "scale", "mean": mean, "std": std}],
        "covariate_scales": [], "nonfinite": "impute",
    }
    data = model.SerializeToString()
    path = Path(path)
    path.write_bytes(data)
    manifest = {**meta, "onnx_file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                "stream_state": [0.0] * p}
    path.with_suffix(".json").write_text(json.dumps(manifest))
    return path
