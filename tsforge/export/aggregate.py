"""Export a fitted ``auto`` (an online aggregation of experts) for the serving engine.

``auto`` is not one ONNX step: each expert is a registry family behind its own
transform chain, and the combination is BOA (:mod:`tsforge.aggregation`, numpy
only).  The export writes every kept expert with :func:`~tsforge.export.export_onnx`
(its own parity check against PyTorch) and one manifest for the aggregate::

    OUT/
      aggregate.json            format, horizon, channels, exported sensor, the
                                experts (folder, family, SHA-256 of both files),
                                the BOA state (Aggregator.state_dict), the drift
                                restart settings, the aggregate's conformal state,
                                the experts' pending forecasts of the exported sensor
      experts/0-naive/model.onnx, model.json
      experts/1-linear/model.onnx, model.json
      ...

The serving engine (:class:`~tsforge.engine.aggregate.AggregateEngine`) runs the
experts' ONNX steps for all sensors of a group and the batched BOA on their
forecasts.  Served experts keep the weights they were exported with (online
learners among them do not learn on); the aggregation weights do learn.

Only families with an ONNX step can be served experts: :func:`servable_experts`
drops the others (``ets``, ``arima``, ``holt_winters``) from the candidate list
*before* fitting, so the weights ``auto`` learns are those of the experts served.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tsforge._version import __version__
from tsforge.errors import ConfigError
from tsforge.io_utils import atomic_write_bytes, sha256_file

AGGREGATE_FORMAT = "tsforge-aggregate"
AGGREGATE_FORMAT_VERSION = 1
MANIFEST = "aggregate.json"


@dataclass
class AggregateReport:
    """What was written: the folder, the experts and the worst expert parity gap."""

    out: str
    manifest_path: str
    sha256: str
    experts: list[str]
    dropped: list[str]
    parity_max_abs_error: float
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def servable_experts(experts: str) -> tuple[str, list[str]]:
    """``experts`` (a comma list of families) without the families that have no ONNX
    step; returns the kept list (comma-joined) and the dropped names."""
    from tsforge.models.registry import MODELS, model_class

    names = [n.strip() for n in experts.split(",") if n.strip()]
    keep = [n for n in names if n not in MODELS or model_class(n).exportable]
    dropped = [n for n in names if n not in keep]
    if not keep:
        raise ConfigError(f"none of the experts {names} can be served (no ONNX step); "
                          "servable families: naive, seasonal_naive, linear, mlp, esn, uoro, "
                          "rtrl, dsf_gru")
    return ",".join(keep), dropped


def servable_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``auto``'s parameters with only servable candidates in ``experts``."""
    from tsforge.selection.auto import CANDIDATES

    experts, dropped = servable_experts(str(params.get("experts", CANDIDATES)))
    return {**params, "experts": experts}, dropped


def export_aggregate(model: Any, out: str | Path, *, sensor: str = "target",
                     parity_steps: int = 300, dropped: list[str] | None = None,
                     extra_metadata: dict[str, Any] | None = None) -> AggregateReport:
    """Write the fitted ``auto`` ``model`` (bare or in its interval wrapper) to ``out``.

    ``sensor`` names the series it was fitted on: the engine continues that sensor
    from the exported state (experts, weights, intervals).  ``dropped`` records the
    families left out of the candidates because they cannot be served.
    """
    from tsforge.export.onnx import export_onnx
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.selection.auto import AutoForecaster

    wrapped = model if isinstance(model, TransformedForecaster) else None
    auto = wrapped.model if wrapped is not None else model
    if not isinstance(auto, AutoForecaster) or auto.agg_ is None:
        raise ConfigError("export_aggregate needs a fitted 'auto' model")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bad = [e.model.name for e in auto.experts_ if not e.model.exportable]
    if bad:
        raise ConfigError(f"auto's experts {bad} have no ONNX step, so the aggregate cannot be "
                          "served; fit auto with servable candidates only "
                          "(tsforge.export.aggregate.servable_params)")
    experts, worst = [], 0.0
    for k, e in enumerate(auto.experts_):
        folder = f"experts/{k}-{e.model.name}"
        rep = export_onnx(e, out / folder / "model.onnx", sensor=sensor,
                          parity_steps=parity_steps)
        worst = max(worst, rep.parity_max_abs_error)
        experts.append({"family": e.model.name, "dir": folder, "sha256": rep.sha256,
                        "manifest_sha256": sha256_file(rep.manifest_path)})
    cfg = auto.config
    state = auto.agg_.state_dict()
    conformal = wrapped.conformal_ if wrapped is not None else None
    x = auto.expert_forecasts
    first = auto.experts_[0]
    meta = {
        "format": AGGREGATE_FORMAT, "format_version": AGGREGATE_FORMAT_VERSION,
        "tsforge_version": __version__, "model": "auto", "sensor": sensor,
        "horizon": cfg.horizon, "n_channels": 1 + (first.model.n_covariates_ or 0),
        "experts": experts,
        "aggregator": {k: v.tolist() for k, v in state.items()},
        "drift": {"detectors": [d.strip() for d in cfg.detectors.split(",") if d.strip()],
                  "restart_gap": cfg.restart_gap, "share": cfg.share,
                  # |residual|s the exported sensor's detectors hold since their last
                  # restart (replayed when served), and their restart period
                  "residuals": auto.monitor_.state()["segment_values"].get("residual", []),
                  "segment": auto.monitor_.segment},
        "exported": {"expert_forecasts": x.tolist(), "n_seen": auto.n_seen_,
                     "last_restart": auto.last_restart_,
                     "last_y": float(getattr(auto, "last_y_", auto._last_y()))},
        "weights": auto.weights[0].tolist(),
        "explanation": auto.explain(),
        "dropped": list(dropped or []),
        **({"intervals": conformal.to_json()} if conformal is not None else {}),
        **(extra_metadata or {}),
    }
    manifest = out / MANIFEST
    atomic_write_bytes(manifest, json.dumps(meta, indent=1).encode())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return AggregateReport(str(out), str(manifest), sha256_file(manifest),
                           [e["family"] for e in experts], list(dropped or []),
                           worst, size)



def fit_chains(aggregate: Any, y: Any) -> list[list[dict[str, Any]]]:
    """Per expert of a loaded aggregate, its chain's kinds fitted on history ``y``: what
    :meth:`~tsforge.engine.aggregate.AggregateEngine.add_sensor` takes for a new sensor."""
    from tsforge.preprocess.transforms import TransformChain

    out = []
    for art in aggregate.experts:
        kinds = art.meta.get("transforms", [])
        out.append(TransformChain.from_spec(kinds).fit(y).to_spec() if kinds else [])
    return out
