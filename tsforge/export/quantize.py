"""Optional int8 dynamic quantisation of an exported step, with its accuracy cost measured.

Dynamic quantisation stores MatMul/Gemm weights as int8 and quantises
activations on the fly (onnxruntime's ``quantize_dynamic``); it shrinks the file
and can speed up large matrix products, at some accuracy.  The cost is measured,
never assumed: the float32 and int8 steps are streamed side by side over the
same inputs, each carrying its own state, and the gap is reported in the
transformed units the model works in and relative to the float32 forecasts' spread.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.io_utils import atomic_write_bytes, sha256_file
from tsforge.optional import require


def quantize_step(onnx_path: str | Path, out_path: str | Path, inputs: np.ndarray,
                  state: np.ndarray) -> dict[str, Any]:
    """Write the int8 version of ``onnx_path`` to ``out_path`` with a manifest beside it.

    Parameters
    ----------
    inputs
        Transformed input rows ``(T, C)`` streamed through both versions.
    state
        Exported state both streams start from.

    Returns the quantisation report: ``max_abs_error``, ``rmse``, ``relative_rmse``
    (RMSE over the float32 forecasts' standard deviation), sizes and steps.
    """
    require("onnx", "int8 quantisation")
    ort = require("onnxruntime", "int8 quantisation")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    tmp = out_path.with_suffix(".tmp.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process applies to image models, not here
    try:
        quantize_dynamic(onnx_path, tmp, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    atomic_write_bytes(out_path, tmp.read_bytes())
    tmp.unlink(missing_ok=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                for p in (onnx_path, out_path)]
    states = [np.asarray(state, dtype=np.float32)[None] for _ in sessions]
    outs: list[list[np.ndarray]] = [[], []]
    for row in np.asarray(inputs, dtype=np.float32):
        for k, sess in enumerate(sessions):
            y, states[k] = sess.run(None, {"x": row[None], "state": states[k]})
            outs[k].append(y[0])
    f32, i8 = np.asarray(outs[0]), np.asarray(outs[1])
    gap = np.abs(f32 - i8)
    rmse = float(np.sqrt(np.mean(gap**2)))
    report = {
        "weight_type": "int8", "method": "onnxruntime.quantize_dynamic",
        "steps": len(f32), "max_abs_error": float(gap.max()), "rmse": rmse,
        "relative_rmse": rmse / max(float(np.std(f32)), 1e-12),
        "size_bytes": out_path.stat().st_size, "float32_size_bytes": onnx_path.stat().st_size,
    }
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    meta.update(onnx_file=out_path.name, sha256=sha256_file(out_path), quantization=report,
                parity={**meta.get("parity", {}), "int8_vs_float32": report})
    atomic_write_bytes(out_path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    return report
