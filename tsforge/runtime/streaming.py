"""Per-sensor streaming inference on an ONNX artifact, in engineering units.

:class:`StreamingRuntime` is the sensor-name API of one exported model over the
columnar serving engine (:class:`tsforge.engine.GroupEngine`), which keeps every
sensor's model state, transform-chain parameters and conformal interval state in
arrays.  ``push`` serves one reading (the engine's single-reading path);
``push_many`` serves one reading for many sensors in one batched call;
``push_series`` serves a block of readings of many sensors (one batched call per
time step); ``push_with_intervals`` returns the forecast with its prediction
intervals.  ``add_sensor`` gives a sensor its own transform statistics (one model
shared by sensors configured alike), and a sensor's whole state round-trips
through ``sensor_state_dict``/``load_sensor_state_dict`` (checkpoints, handing a
sensor to another worker), in the format earlier versions wrote.  Imports numpy
and onnxruntime only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.engine.aggregate import AggregateEngine, engine_for
from tsforge.engine.group import GroupEngine
from tsforge.engine.online import BatchLearnerStage, LearnerStage
from tsforge.errors import ConfigError, DataError
from tsforge.intervals import ConformalIntervals
from tsforge.models.base import Forecast
from tsforge.preprocess.transforms import TransformChain
from tsforge.runtime.artifact import AggregateArtifact, Artifact, load_model

_NOT_FINITE = "first reading of a sensor is not finite; cannot impute without history"


@dataclass
class SensorState:
    """A read-only snapshot of what the engine remembers about one sensor."""

    model_state: np.ndarray
    chain: TransformChain
    conformal: ConformalIntervals | None
    last_forecast: np.ndarray | None
    last_x: np.ndarray | None
    readings: int
    imputed: int
    fresh: bool


class _SensorViews(Mapping):
    """``runtime.sensors[name]``: snapshots of the sensors served so far."""

    def __init__(self, engine: GroupEngine | AggregateEngine) -> None:
        self._engine = engine

    def __getitem__(self, sensor: str) -> SensorState:
        e = self._engine
        i = e.index[sensor]
        if isinstance(e, AggregateEngine):  # the experts' states; each expert has its chain
            readings, imputed = (int(v) for v in e.counts[i, :2])
            return SensorState(e.model_state(i), TransformChain([]), e.conformal_of(i),
                               e.last_forecast(i), None, readings, imputed, False)
        return SensorState(
            model_state=e.onnx.state[i].copy(), chain=TransformChain.from_spec(e.chain.spec(i)),
            conformal=e.conformal_of(i), last_forecast=e.last_forecast(i),
            last_x=e.last_x[i].copy() if e.has_x[i] else None, readings=int(e.readings[i]),
            imputed=int(e.imputed[i]), fresh=bool(e.fresh[i]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._engine.names)

    def __len__(self) -> int:
        return self._engine.n_sensors


class StreamingRuntime:
    """Serve an exported model to many sensors.

    Parameters
    ----------
    artifact
        An :class:`Artifact` or a path to ``model.onnx``; or an exported ``auto``
        (:class:`~tsforge.runtime.artifact.AggregateArtifact` or its folder), served by
        :class:`~tsforge.engine.aggregate.AggregateEngine`.
    threads
        onnxruntime intra-op threads (1 is best for per-step latency).
    intervals
        Keep conformal interval state per sensor (as configured in the artifact's
        manifest).  The exported sensor continues the residual state it had at
        export time; a new sensor starts empty and gets intervals after the
        configured warm-up.  False saves the interval bookkeeping.
    learner
        An online learner restored from the bundle (``learner.npz``), in the state
        it had at export; it serves and learns for ``learner_sensor`` (default: the
        artifact's exported sensor).  Imputed readings advance it without learning.
    """

    def __init__(self, artifact: Artifact | str | Path, *, threads: int = 1,
                 intervals: bool = True, learner: Any = None,
                 learner_sensor: str | None = None) -> None:
        self.artifact = artifact if isinstance(artifact, (Artifact, AggregateArtifact)) else \
            load_model(artifact, threads=threads)
        self.engine = engine_for(self.artifact, intervals=intervals)
        if learner is not None and isinstance(self.engine, AggregateEngine):
            raise ConfigError("an aggregate (auto) keeps learning its weights by itself; it "
                              "serves no separate online learner (--adapt)")
        self.sensors = _SensorViews(self.engine)
        self.learner = learner
        self.learner_sensor = learner_sensor or self.artifact.meta.get("sensor")
        if learner is not None:
            i = self.engine.sensor_index(self.learner_sensor)
            # vectorised stage over the learner's own batch of one (it keeps learning as
            # an object: write-back reads it); learners without a batch: per reading
            self.engine.online = (BatchLearnerStage.from_learners({i: learner})
                                  if hasattr(learner, "batch_") else LearnerStage({i: learner}))

    @property
    def horizon(self) -> int:
        return self.artifact.horizon

    @property
    def latency(self) -> Any:
        """onnxruntime call durations (:class:`~tsforge.engine.latency.LatencyHistogram`)."""
        return self.engine.latency

    @property
    def learned(self) -> int:
        """Readings the online learner learned from since the last save."""
        return 0 if self.engine.online is None else self.engine.online.learned

    @learned.setter
    def learned(self, value: int) -> None:
        if self.engine.online is not None:
            self.engine.online.learned = value

    @property
    def interval_levels(self) -> tuple[float, ...]:
        """Nominal levels of the intervals served (empty when they are off)."""
        return self.engine.levels

    def add_sensor(self, sensor: str, transforms: list[dict[str, Any]]) -> None:
        """Serve ``sensor`` with its own fitted transform chain (a chain spec).

        The model is shared; ``transforms`` carries the sensor's own statistics
        (scale, seasonal profile) fitted on its history.  The sensor starts from the
        initial model state, anchored at its first live reading.  For an aggregate
        (``auto``), ``transforms`` is one chain spec per expert
        (:func:`tsforge.export.aggregate.fit_chains`).
        """
        self.engine.add_sensor(sensor, transforms)

    def push(self, sensor: str, y: float, x: Any = None) -> np.ndarray:
        """Feed one reading of ``sensor``; return its forecast of the next H readings."""
        self._check_covariates(x)
        out = self.engine.step_one(self.engine.sensor_index(sensor), float(y), x)
        if out is None:
            raise DataError(_NOT_FINITE)
        return out

    def push_with_intervals(self, sensor: str, y: float, x: Any = None) -> Forecast:
        """Like :meth:`push`, returning the forecast with its conformal intervals."""
        self.push(sensor, y, x)
        return self.forecast(sensor)

    def forecast(self, sensor: str) -> Forecast:
        """The latest forecast of ``sensor`` with ``{level: (lower, upper)}`` intervals.

        Intervals are empty while the sensor's residual windows warm up, and always
        when the artifact carries no interval configuration.
        """
        i = self.engine.index.get(sensor)
        mean = None if i is None else self.engine.last_forecast(i)
        if mean is None:
            raise DataError(f"sensor '{sensor}' has no forecast yet; push a reading first")
        return as_forecast(mean, self.engine.half_widths(i), self.engine.levels)

    def _check_covariates(self, x: Any) -> None:
        n_cov = self.artifact.n_channels - 1
        got = 0 if x is None else np.asarray(x).size
        if got != n_cov:
            raise DataError(f"model expects {n_cov} covariate value(s), got {got}")

    def push_many(self, sensors: list[str], ys: Any, xs: Any = None) -> np.ndarray:
        """Feed one reading for each of ``sensors`` (distinct) in one batched call.

        Returns forecasts of shape ``(len(sensors), H)`` in engineering units.
        """
        if len(set(sensors)) != len(sensors):
            raise DataError("push_many takes each sensor at most once per call")
        n, C = len(sensors), self.artifact.n_channels
        values = np.empty((n, C))
        values[:, 0] = np.asarray(ys, dtype=np.float64).reshape(n)
        if C > 1 or xs is not None:
            x = np.asarray(xs if xs is not None else np.zeros((n, 0)), dtype=np.float64)
            if x.reshape(n, -1).shape[1] != C - 1:
                raise DataError(f"model expects {C - 1} covariate value(s), got "
                                f"{x.reshape(n, -1).shape[1]}")
            values[:, 1:] = x.reshape(n, -1)
        idx = self.engine.indices(list(sensors))
        everyone = n == self.engine.n_sensors and bool((idx == np.arange(n)).all())
        res = self.engine.step(None if everyone else idx, values)
        if res.rejected.any():
            raise DataError(_NOT_FINITE)
        return res.mean

    def push_series(self, sensors: list[str], values: list[np.ndarray]
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Feed a block of readings: ``values[j]`` (``(T_j, C)``) in order for ``sensors[j]``.

        Time step ``t`` of every sensor that has one is served by one batched
        onnxruntime call.  Returns per sensor the forecasts ``(T_j, H)`` issued
        after each reading and the conformal half-widths ``(T_j, L, H)`` served
        with them (NaN while the intervals warm up; ``L`` is 0 when intervals are
        off).  Equal to calling :meth:`push` reading by reading.
        """
        if len(set(sensors)) != len(sensors):
            raise DataError("push_series takes each sensor at most once per call")
        C = self.artifact.n_channels
        vals = []
        for j, v in enumerate(values):
            arr = np.asarray(v, dtype=np.float64).reshape(len(v), -1)
            if arr.shape[1] != C:
                raise DataError(f"sensor '{sensors[j]}': readings have {arr.shape[1]} "
                                f"value(s), the model expects {C}")
            vals.append(arr)
        lens = [len(v) for v in vals]
        idx = np.repeat(self.engine.indices(list(sensors)), lens)
        res = self.engine.serve(idx, np.concatenate(vals) if vals else np.zeros((0, C)))
        if res.rejected.any():
            raise DataError(_NOT_FINITE)
        cuts = np.cumsum(lens)[:-1]
        return np.split(res.mean, cuts), np.split(res.half, cuts)

    def sensor_state_dict(self, sensor: str) -> dict[str, np.ndarray]:
        """Everything the runtime remembers about ``sensor``, as plain arrays."""
        return self.engine.state_dict(self.engine.sensor_index(sensor))

    def load_sensor_state_dict(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`sensor_state_dict` returned (e.g. from a checkpoint)."""
        self.engine.load_state_dict(self.engine.sensor_index(sensor), state)

    def drop_sensor(self, sensor: str) -> None:
        """Forget ``sensor``'s live state (it is served by another worker now)."""
        i = self.engine.index.get(sensor)
        if i is not None:
            self.engine.reset(i)


def as_forecast(mean: np.ndarray, half: np.ndarray, levels: tuple[float, ...]) -> Forecast:
    """A forecast ``(H,)`` with ``{level: (lower, upper)}`` from half-widths ``(L, H)``;
    no intervals while any of them is still warming up (NaN)."""
    bands = {} if not half.size or np.isnan(half).any() else {
        lvl: (mean - half[j], mean + half[j]) for j, lvl in enumerate(levels)}
    return Forecast(mean=mean, intervals=bands)
