"""Online learning in the service: each sensor's learner updates on every reading.

With ``[model] online_learning = true`` the worker serves online families
(``esn``, ``uoro``, ``rtrl``, ``snarimax``) in the library instead of through
ONNX: per sensor, ``learn_one`` then ``forecast`` for every reading, in order.
Each sensor has its own model, fitted on its own warm-up history at start-up and
kept in the model store as plain arrays (no pickles)::

    <store>/<family>-online-<hash>/<sensor>.npz

The learned parameters are part of the sensor's checkpoint, so a partition that
moves carries what its sensors learned.  Replaying readings from a checkpoint
learns the same updates, so re-issued forecasts repeat the same numbers and ids.
The model version in the ids is that of the start-up fit.  This path needs torch
for the torch-based learners and runs one Python step per reading: see
``docs/kafka.md`` for its throughput.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.connectors.base import ReadingBatch
from tsforge.errors import ConfigError
from tsforge.io_utils import atomic_write_bytes, npz_bytes
from tsforge.pipeline.spec import PipelineSpec
from tsforge.serve.engine import ForecastBlock
from tsforge.serve.models import _read_history, log, model_store


@dataclass(frozen=True)
class OnlineGroup:
    """The metrics' view of an online model family (one file per sensor)."""

    name: str
    family: str
    version: str


def wrapped_state(model: Any) -> dict[str, np.ndarray]:
    """Everything a :class:`TransformedForecaster` learned or streamed, as arrays."""
    out = {f"model/{k}": np.array(v) for k, v in model.model.state_dict().items()}  # copies
    out["chain"] = np.array(json.dumps(model.chain_.to_spec()))
    out["covariate_scales"] = np.array(json.dumps([s.to_spec()
                                                   for s in model.covariate_scales_]))
    out["last_x"] = np.zeros(0) if model.last_x_ is None else np.array(model.last_x_)
    out["n_imputed"] = np.array(model.n_imputed_)
    if model.conformal_ is not None:
        out.update({f"conformal/{k}": v for k, v in model.conformal_.state_dict().items()})
    return out


def load_wrapped_state(model: Any, state: dict[str, np.ndarray]) -> None:
    """Restore :func:`wrapped_state` into ``model`` (same family and configuration)."""
    from tsforge.preprocess.transforms import Scale, TransformChain

    model.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model/")})
    model.chain_ = TransformChain.from_spec(json.loads(str(state["chain"])))
    model.covariate_scales_ = [Scale(**{k: v for k, v in s.items() if k != "kind"})
                               for s in json.loads(str(state["covariate_scales"]))]
    model.last_x_ = np.array(state["last_x"]) if state["last_x"].size else None
    model.n_imputed_ = int(state["n_imputed"])
    if model.conformal_ is not None and "conformal/alpha" in state:
        model.conformal_.load_state_dict({k[10:]: v for k, v in state.items()
                                          if k.startswith("conformal/")})


def _build(family: str, params: dict[str, Any], horizon: int, chain: list, levels: list,
           method: str, n_covariates: int) -> Any:
    from tsforge.intervals import IntervalConfig
    from tsforge.models.registry import create
    from tsforge.models.transformed import TransformedForecaster

    intervals = IntervalConfig(levels=tuple(levels), method=method) if levels else None
    model = TransformedForecaster(create(family, horizon=horizon, **params), chain,
                                  intervals=intervals)
    model.model.n_covariates_ = n_covariates
    return model


class OnlineEngine:
    """Per-sensor online learners with the :class:`~tsforge.serve.engine.OnnxEngine` interface."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.horizon = spec.model.horizon
        self.levels = tuple(spec.intervals.levels)
        self.channels = 1
        self.models: dict[str, Any] = {}
        self.initial: dict[str, dict[str, np.ndarray]] = {}
        self.versions: dict[str, str] = {}
        groups: dict[str, OnlineGroup] = {}
        for sensor, (path, family) in _prepare(spec).items():
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["__meta__"]))
                state = {k: npz[k] for k in npz.files if k != "__meta__"}
            model = _build(family, meta["params"], self.horizon, meta["chain"],
                           list(self.levels), spec.intervals.method, 0)
            load_wrapped_state(model, state)
            self.models[sensor] = model
            self.initial[sensor] = state
            self.versions[sensor] = meta["version"]
            groups.setdefault(path.parent.name, OnlineGroup(path.parent.name, family,
                                                            meta["version"]))
        self.groups = list(groups.values())
        self._known = np.asarray(sorted(self.models))

    def knows(self, sensors: np.ndarray) -> np.ndarray:
        return np.isin(sensors, self._known)

    def version(self, sensor: str) -> str:
        return self.versions[sensor]

    def step(self, batch: ReadingBatch) -> ForecastBlock:
        """Learn from each reading in order, forecasting after each."""
        n, H, L = len(batch), self.horizon, len(self.levels)
        mean, half = np.empty((n, H)), np.full((n, L, H), np.nan)
        version = np.empty(n, dtype=object)
        ys = batch.values[:, 0].tolist()
        for i, (sensor, y) in enumerate(zip(batch.sensor.tolist(), ys)):
            model = self.models[sensor]
            model.learn_one(y)
            f = model.forecast()
            mean[i] = f.mean
            for j, level in enumerate(self.levels):
                if level in f.intervals:
                    lo, hi = f.intervals[level]
                    half[i, j] = (hi - lo) / 2.0
            version[i] = self.versions[sensor]
        return ForecastBlock(mean, half, version)

    def sensor_state(self, sensor: str) -> dict[str, np.ndarray]:
        return wrapped_state(self.models[sensor])

    def load_sensor_state(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        load_wrapped_state(self.models[sensor], state)

    def drop_sensor(self, sensor: str) -> None:
        load_wrapped_state(self.models[sensor], self.initial[sensor])


def _prepare(spec: PipelineSpec) -> dict[str, tuple[Path, str]]:
    """Fit missing per-sensor learners from the history; return sensor -> (file, family)."""
    from tsforge.models.registry import model_class

    store = model_store(spec)
    frame = _read_history(spec.model.history) if spec.model.history else None
    sensors = frame.sensors if frame is not None else []
    found: dict[str, tuple[Path, str]] = {}
    if frame is None:
        for path in sorted(store.glob("*-online-*/*.npz")):
            with np.load(path, allow_pickle=False) as npz:
                found[path.stem] = (path, json.loads(str(npz["__meta__"]))["family"])
        if not found:
            raise ConfigError(f"no online models in {store} and no warm-up history: set "
                              "[model] history to fit them at start-up")
        return found
    for sensor in sensors:
        family, params, transforms = spec.sensor(sensor)
        if family == "auto" or not model_class(family).online:
            raise ConfigError(f"[model] online_learning = true needs an online family for "
                              f"sensor '{sensor}', got {family!r}; valid values: esn, uoro, "
                              "rtrl, snarimax")
        key = json.dumps([family, params, transforms, spec.model.horizon,
                          spec.intervals.levels, spec.intervals.method], sort_keys=True)
        directory = store / f"{family}-online-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        path = directory / f"{sensor}.npz"
        if not path.exists():
            _fit_one(spec, path, sensor, family, params, transforms, frame.column(sensor))
        found[sensor] = (path, family)
    return found


def _fit_one(spec: PipelineSpec, path: Path, sensor: str, family: str,
             params: dict[str, Any], transforms: str, y: np.ndarray) -> None:
    from tsforge.preprocess import analyze

    chain = analyze(y, name=sensor).transforms if transforms == "auto" else []
    log.info("fitting online model", extra={"fields": {"sensor": sensor, "family": family}})
    model = _build(family, params, spec.model.horizon, chain, list(spec.intervals.levels),
                   spec.intervals.method, 0).fit(y)
    state = wrapped_state(model)
    body = npz_bytes(state)
    meta = {"family": family, "params": params, "chain": model.transforms,
            "version": hashlib.sha256(body).hexdigest()[:12]}
    atomic_write_bytes(path, npz_bytes({"__meta__": np.array(json.dumps(meta)), **state}))
