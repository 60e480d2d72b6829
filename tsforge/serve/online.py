"""Online learning in the service: each sensor's learner updates on every reading.

With ``[model] online_learning = true`` the worker serves online families
(``esn``, ``uoro``, ``rtrl``, ``ptncn``, ``snarimax``) through the serving engine
with no ONNX step: per sensor, learn from the reading then forecast, in order.
Each sensor has its own model, fitted on its own warm-up history at start-up and
kept in the model store as plain arrays (no pickles)::

    <store>/<family>-online-<hash>/<sensor>.npz

The sensors of one store directory (one family and configuration) form one
:class:`~tsforge.engine.group.GroupEngine`: transform chains, imputation of
non-finite readings and conformal intervals in per-sensor arrays, and one
:class:`~tsforge.engine.online.BatchLearnerStage` that learns for all of them in
one vectorised step per time step of a poll (``snarimax``, a river model, keeps
one learner per sensor behind :class:`~tsforge.engine.online.LearnerStage`).
The numbers are those of each sensor's library ``TransformedForecaster``
(``tests/test_serve_units.py``), except that a conformal level is issued per
forecast step as soon as that step is warm (the ONNX path's rule).

The learned parameters are part of the sensor's checkpoint (the store file's
format, :func:`wrapped_state`), so a partition that moves carries what its sensors
learned.  Replaying readings from a checkpoint learns the same updates, so
re-issued forecasts repeat the same numbers and ids.  The model version in the
ids is that of the start-up fit.  See ``docs/kafka.md`` for its throughput.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.connectors.base import ReadingBatch
from tsforge.engine.group import GroupEngine
from tsforge.engine.online import BatchLearnerStage, LearnerArtifact, LearnerStage, LearnerStep
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
    """Online learners behind the :class:`~tsforge.serve.engine.OnnxEngine` interface.

    One :class:`~tsforge.engine.group.GroupEngine` per model-store directory (one
    family and configuration): the sensors' chains, imputation and conformal
    intervals in arrays, and one :class:`~tsforge.engine.online.BatchLearnerStage`
    learning for all its sensors, one vectorised step per time step of a poll.
    """

    def __init__(self, spec: PipelineSpec) -> None:
        self.horizon = spec.model.horizon
        self.levels = tuple(spec.intervals.levels)
        self.channels = 1
        self.versions: dict[str, str] = {}
        self.initial: dict[str, dict[str, np.ndarray]] = {}
        self.where: dict[str, tuple[Any, int, int]] = {}  # sensor -> (group, engine row, batch row)
        by_dir: dict[str, list[tuple[str, Any, dict[str, np.ndarray], str]]] = {}
        for sensor, (path, family) in _prepare(spec).items():
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["__meta__"]))
                state = {k: npz[k] for k in npz.files if k != "__meta__"}
            model = _build(family, meta["params"], self.horizon, meta["chain"],
                           list(self.levels), spec.intervals.method, 0)
            load_wrapped_state(model, state)
            self.initial[sensor] = state
            self.versions[sensor] = meta["version"]
            by_dir.setdefault(path.parent.name, []).append((sensor, model, state,
                                                            meta["version"]))
        self.groups = [OnlineGroup(name, members[0][1].model.name, members[0][3])
                       for name, members in by_dir.items()]
        self.engines = [self._group(members, spec.intervals.method)
                        for members in by_dir.values()]
        self._known = np.asarray(sorted(self.versions))

    def _group(self, members: list, method: str) -> GroupEngine:
        """One engine for the sensors of one store directory, each from its fitted model."""
        from tsforge.intervals import IntervalConfig

        models = [m.model for _, m, _, _ in members]
        batched = hasattr(models[0], "batch_")  # snarimax (river) steps per reading
        batch = type(models[0].batch_).from_models(models) if batched else None
        shape = batch.stream_states().shape[1:] if batched else (0,)
        imeta = ({"config": IntervalConfig(levels=self.levels, method=method).to_dict(),
                  "horizon": self.horizon} if self.levels else None)
        artifact = LearnerArtifact(self.horizon, shape, imeta)
        engine = GroupEngine(artifact, intervals=imeta is not None, capacity=len(models),
                             step=LearnerStep(1, self.horizon, shape, len(models)))
        rows = [engine.add_sensor(sensor, m.chain_.to_spec()) for sensor, m, _, _ in members]
        engine.online = (BatchLearnerStage(batch, rows) if batched else
                         LearnerStage(dict(zip(rows, models)), stream=False))
        for b, (sensor, _, state, _) in enumerate(members):
            self.where[sensor] = (engine, rows[b], b)
            self.load_sensor_state(sensor, state)
        return engine

    def knows(self, sensors: np.ndarray) -> np.ndarray:
        return np.isin(sensors, self._known)

    def version(self, sensor: str) -> str:
        return self.versions[sensor]

    def step(self, batch: ReadingBatch) -> ForecastBlock:
        """Learn from each reading in order, forecasting after each (one engine step
        per occurrence rank of a sensor in the poll, per group)."""
        n, H, L = len(batch), self.horizon, len(self.levels)
        mean, half = np.full((n, H), np.nan), np.full((n, L, H), np.nan)
        sensors = batch.sensor.tolist()
        where = self.where
        by_engine: dict[int, list[int]] = {}
        for j, s in enumerate(sensors):
            by_engine.setdefault(id(where[s][0]), []).append(j)
        for rows_list in by_engine.values():
            rows = np.asarray(rows_list, dtype=np.intp)
            engine = where[sensors[rows_list[0]]][0]
            idx = np.asarray([where[sensors[j]][1] for j in rows_list], dtype=np.intp)
            res = engine.serve(idx, batch.values[rows, :1].astype(np.float64))
            mean[rows] = res.mean
            if L:
                half[rows] = res.half
        version = np.empty(n, dtype=object)
        version[:] = [self.versions[s] for s in sensors]
        return ForecastBlock(mean, half, version)

    def sensor_state(self, sensor: str) -> dict[str, np.ndarray]:
        """The sensor's checkpoint, in the format of :func:`wrapped_state`."""
        engine, i, b = self.where[sensor]
        stage = engine.online
        learned = (stage.batch.sensor_state(b) if isinstance(stage, BatchLearnerStage)
                   else stage.learners[i].state_dict())
        out = {f"model/{k}": np.array(v) for k, v in learned.items()}
        out["chain"] = np.array(json.dumps(engine.chain.spec(i)))
        out["covariate_scales"] = np.array("[]")
        out["last_x"] = np.zeros(0)
        out["n_imputed"] = np.array(int(engine.imputed[i]))
        if engine.conformal is not None:
            out.update({f"conformal/{k}": v for k, v in engine.conformal.state_dict(i).items()})
        return out

    def load_sensor_state(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`sensor_state` (or a model-store file) into the sensor's rows."""
        engine, i, b = self.where[sensor]
        stage = engine.online
        learned = {k[6:]: v for k, v in state.items() if k.startswith("model/")}
        if isinstance(stage, BatchLearnerStage):
            stage.batch.load_sensor_state(b, learned)
            stream, z_hat = stage.batch.stream_states()[b], stage.batch.forecast_many()[b]
        else:
            stage.learners[i].load_state_dict(learned)
            stream, z_hat = np.zeros(0), stage.learners[i].forecast().mean
        chain = json.loads(str(state["chain"]))
        engine.chain.set_spec(i, chain)
        # the forecast a non-finite first reading is imputed with, as the library would
        last = engine.chain.inverse(np.array([i]), np.asarray(z_hat)[None])[0]
        engine_state = {
            "model_state": stream,
            "chain": np.array(json.dumps(chain)),
            "counters": np.array([0, int(state["n_imputed"]), 0], dtype=np.int64),
            "last_forecast": last, "last_x": np.zeros(0),
        }
        engine_state.update({k: v for k, v in state.items() if k.startswith("conformal/")})
        engine.load_state_dict(i, engine_state)

    def drop_sensor(self, sensor: str) -> None:
        self.load_sensor_state(sensor, self.initial[sensor])


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
