"""Export a forecaster's streaming step to ONNX, verified against PyTorch.

The file holds one step ``(x, state) -> (forecast, new_state)`` with a dynamic
batch axis (one call serves many sensors).  Everything needed to rebuild the
deployment rides along:

- inside the ONNX file, metadata property ``tsforge``: model name and config,
  input/state signature, transform chain, covariate scaling, tsforge version;
- beside it, ``<name>.json``: the same metadata plus the SHA-256 of the ONNX
  file and the parity measurement.  The runtime refuses a file whose checksum
  does not match.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge._version import __version__
from tsforge.errors import ArtifactError, ConfigError
from tsforge.io_utils import atomic_write_bytes, sha256_file
from tsforge.models.base import Forecaster
from tsforge.models.transformed import TransformedForecaster
from tsforge.optional import require

FORMAT_VERSION = 1
INPUT_NAMES = ("x", "state")
OUTPUT_NAMES = ("forecast", "new_state")


@dataclass
class ExportReport:
    """Where the artifact went and how closely ONNX Runtime matched PyTorch."""

    onnx_path: str
    manifest_path: str
    sha256: str
    parity_steps: int
    parity_max_abs_error: float
    tolerance: float
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest_path_for(onnx_path: str | Path) -> Path:
    """The sidecar manifest of an ONNX artifact: ``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


def export_onnx(
    model: TransformedForecaster | Forecaster,
    path: str | Path,
    *,
    sensor: str = "target",
    parity_steps: int = 2000,
    parity_inputs: np.ndarray | None = None,
    tolerance: float = 1e-4,
    opset: int = 17,
    extra_metadata: dict[str, Any] | None = None,
) -> ExportReport:
    """Write ``model``'s streaming step to ``path`` and check it in onnxruntime.

    Parameters
    ----------
    model
        A fitted forecaster, bare or wrapped with its transform chain.
    path
        Target ``.onnx`` file; the manifest is written next to it.
    sensor
        Name of the series the model was fitted on; the runtime continues that
        sensor from the exported state.
    parity_steps, parity_inputs
        Length of the stream used for the parity check, or the transformed input
        rows ``(T, C)`` to use; random normal inputs by default.
    tolerance
        Maximum absolute difference allowed between ONNX Runtime and PyTorch
        forecasts (float32 arithmetic), else :class:`ArtifactError`.
    """
    torch = require("torch", "ONNX export")
    onnx = require("onnx", "ONNX export")
    wrapped = model if isinstance(model, TransformedForecaster) else None
    core_model = wrapped.model if wrapped else model
    if not core_model.exportable:
        raise ConfigError(f"model '{core_model.name}' cannot be exported to ONNX")
    from tsforge.export.cells import step_module

    core = core_model.streaming_core()
    core.eval()
    step = step_module(core)  # same math, leaner graph; checked against ``core`` below
    n_channels = 1 + (core_model.n_covariates_ or 0)
    state = np.asarray(core_model.stream_state(), dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    x0 = torch.zeros(1, n_channels)
    s0 = torch.as_tensor(state)[None]
    dynamic = {name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES}
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            step, (x0, s0), str(tmp), input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, opset_version=opset,
            dynamo=False,
        )
    meta = {
        "format_version": FORMAT_VERSION,
        "tsforge_version": __version__,
        "model": core_model.name,
        "config": core_model.get_params(),
        "horizon": core_model.horizon,
        "n_channels": n_channels,
        "n_covariates": n_channels - 1,
        "state_shape": list(state.shape),
        "inputs": {"x": ["batch", n_channels], "state": ["batch", *state.shape]},
        "outputs": {"forecast": ["batch", core_model.horizon],
                    "new_state": ["batch", *state.shape]},
        "online": core_model.online,
        "sensor": sensor,
        **(wrapped.artifact_metadata() if wrapped else
           {"transforms": [], "covariate_scales": [], "nonfinite": "impute"}),
        **(extra_metadata or {}),
    }
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "tsforge", json.dumps(meta)
    atomic_write_bytes(path, proto.SerializeToString())
    tmp.unlink(missing_ok=True)

    max_err, steps = check_parity(core, path, state, n_channels, parity_steps, parity_inputs)
    if not max_err <= tolerance:
        raise ArtifactError(
            f"ONNX export of '{core_model.name}' differs from PyTorch by {max_err:.3g} "
            f"(tolerance {tolerance:g}) over {steps} steps; the file was kept at {path} "
            "for inspection. Report this with the model config."
        )
    manifest = {
        **meta,
        "onnx_file": path.name,
        "sha256": sha256_file(path),
        "stream_state": state.tolist(),
        "parity": {"steps": steps, "max_abs_error": max_err, "tolerance": tolerance},
    }
    manifest_path = manifest_path_for(path)
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1).encode())
    return ExportReport(
        onnx_path=str(path), manifest_path=str(manifest_path), sha256=manifest["sha256"],
        parity_steps=steps, parity_max_abs_error=max_err, tolerance=tolerance,
        size_bytes=path.stat().st_size,
    )


def check_parity(
    core: Any,
    path: Path,
    state: np.ndarray,
    n_channels: int,
    steps: int,
    inputs: np.ndarray | None = None,
) -> tuple[float, int]:
    """Run the torch core and the ONNX file side by side; return the max abs forecast gap.

    Streams a batch of 3 sequences (so the dynamic batch axis is exercised), all
    starting from ``state``; each side carries its own state through the stream.
    """
    torch = require("torch", "ONNX export")
    ort = require("onnxruntime", "ONNX parity check")
    if inputs is None:
        rng = np.random.default_rng(0)
        inputs = rng.standard_normal((steps, 3, n_channels)).astype(np.float32)
    else:
        inputs = np.repeat(np.asarray(inputs, dtype=np.float32)[:, None, :], 3, axis=1)
        steps = inputs.shape[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    s_torch = torch.as_tensor(np.repeat(state[None], 3, axis=0))
    s_ort = np.repeat(state[None], 3, axis=0).astype(np.float32)
    max_err = 0.0
    with torch.no_grad():
        for t in range(steps):
            y_t, s_torch = core(torch.as_tensor(inputs[t]), s_torch)
            y_o, s_ort = session.run(None, {"x": inputs[t], "state": s_ort})
            max_err = max(max_err, float(np.max(np.abs(y_t.numpy() - y_o))))
    return max_err, steps
