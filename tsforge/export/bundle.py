"""``export_bundle``: write a fitted model as the next version of a deployment bundle.

The bundle (layout in :mod:`tsforge.runtime.bundle`) carries everything an edge
box needs and nothing it cannot verify: the ONNX step checked against PyTorch,
its manifest, optionally the int8 step with its measured accuracy cost, and for
online learners the learner state plus the map from learner weights to ONNX
initializers, so the box can keep learning and write new versions itself.
Exporting into an existing bundle keeps its current version as ``previous``
(the rollback target).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import ArtifactError, ConfigError
from tsforge.export.onnx import export_onnx
from tsforge.export.quantize import quantize_step
from tsforge.models.base import Forecaster
from tsforge.models.transformed import TransformedForecaster
from tsforge.runtime import bundle as layout
from tsforge.runtime.adapt import adaptable, core_params, param_map


@dataclass
class BundleReport:
    """What was written: the folder, the version, parity and the optional extras."""

    root: str
    version: int
    current: str
    previous: str | None
    parity_max_abs_error: float
    parity_steps: int
    size_bytes: int
    int8: dict[str, Any] | None
    adaptive: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_bundle(
    model: TransformedForecaster | Forecaster,
    out: str | Path,
    *,
    sensor: str = "target",
    int8: bool = False,
    keep_previous: bool = True,
    parity_steps: int = 2000,
    parity_inputs: np.ndarray | None = None,
    tolerance: float = 1e-4,
    adapt: bool = True,
    dropped: list[str] | None = None,
) -> BundleReport:
    """Export ``model`` as a new version of the bundle folder ``out``.

    Parameters
    ----------
    model
        A fitted forecaster, preferably wrapped with its transform chain.
    out
        Bundle folder; created if absent.  An existing bundle is verified first
        and its current version kept as ``previous`` (unless ``keep_previous`` is
        False).
    int8
        Also write the dynamically quantised step and its accuracy report.
    parity_inputs
        Transformed input rows ``(T, C)`` for the parity and quantisation checks
        (real data is best); random normal rows by default.
    adapt
        For online learners that can learn without torch (``esn``; ``rtrl``/``uoro``
        with the tanh cell), include the learner state so the box keeps learning.
    dropped
        ``auto`` only: candidate families left out because they cannot be served
        (recorded in the aggregate manifest).  A fitted ``auto`` is written as an
        aggregate (:mod:`tsforge.export.aggregate`): its experts' ONNX steps, parity
        checked each on ``min(parity_steps, 300)`` random steps, and the BOA state.
    """
    out = Path(out)
    if layout.is_bundle(out):
        try:
            layout.verify_bundle(out)
        except ArtifactError as exc:
            raise ArtifactError(f"the existing bundle at {out} cannot become the previous "
                                f"version: {exc}. Remove the folder or export elsewhere") from exc
    elif out.exists() and any(out.iterdir()):
        raise ArtifactError(f"{out} exists and is not a tsforge bundle; choose an empty or new "
                            "folder for --bundle")
    folder = layout.next_folder(out)
    vdir = out / folder
    if vdir.exists():  # left over from an interrupted export: never listed in bundle.json
        shutil.rmtree(vdir)
    core = model.model if isinstance(model, TransformedForecaster) else model
    if core.name == "auto":
        return _aggregate_version(model, out, folder, sensor=sensor, int8=int8,
                                  keep_previous=keep_previous, parity_steps=parity_steps,
                                  dropped=dropped)
    rep = export_onnx(model, vdir / "model.onnx", sensor=sensor, parity_steps=parity_steps,
                      parity_inputs=parity_inputs, tolerance=tolerance,
                      extra_metadata={"bundle_version": int(folder[1:])})
    entry: dict[str, Any] = {"model": core.name, "sensor": sensor, "source": "export",
                             "parity": {"steps": rep.parity_steps,
                                        "max_abs_error": rep.parity_max_abs_error}}
    quant = None
    if int8:
        rows = parity_inputs if parity_inputs is not None else np.random.default_rng(1) \
            .standard_normal((500, 1 + (core.n_covariates_ or 0)))
        quant = quantize_step(vdir / "model.onnx", vdir / "model.int8.onnx", rows[-1000:],
                              np.asarray(core.stream_state(), dtype=np.float32))
        entry["int8"] = quant
    is_adaptive = adapt and core.online and adaptable(core)
    if is_adaptive:
        mapping = param_map((vdir / "model.onnx").read_bytes(), core_params(core))
        core.save(vdir / "learner.npz")
        entry["adaptation"] = {"learner": "learner.npz", "map": mapping, "readings": 0}
    index = layout.commit_version(out, folder, entry, keep_previous=keep_previous)
    return BundleReport(
        root=str(out), version=index["version"], current=folder, previous=index["previous"],
        parity_max_abs_error=rep.parity_max_abs_error, parity_steps=rep.parity_steps,
        size_bytes=sum(p.stat().st_size for p in vdir.iterdir()), int8=quant,
        adaptive=is_adaptive,
    )


def _aggregate_version(model: Any, out: Path, folder: str, *, sensor: str, int8: bool,
                       keep_previous: bool, parity_steps: int,
                       dropped: list[str] | None) -> BundleReport:
    """Write a fitted ``auto`` as the aggregate of the bundle's new version ``folder``."""
    from tsforge.export.aggregate import export_aggregate

    if int8:
        raise ConfigError("--int8 quantises one ONNX step; an aggregate (model auto) is "
                          "exported in float32 only")
    steps = min(parity_steps, 300)
    rep = export_aggregate(model, out / folder, sensor=sensor, parity_steps=steps,
                           dropped=dropped, extra_metadata={"bundle_version": int(folder[1:])})
    entry = {"model": "auto", "sensor": sensor, "source": "export", "experts": rep.experts,
             "dropped": rep.dropped,
             "parity": {"steps": steps, "max_abs_error": rep.parity_max_abs_error}}
    index = layout.commit_version(out, folder, entry, keep_previous=keep_previous)
    return BundleReport(root=str(out), version=index["version"], current=folder,
                        previous=index["previous"],
                        parity_max_abs_error=rep.parity_max_abs_error, parity_steps=steps,
                        size_bytes=rep.size_bytes, int8=None, adaptive=False)
