"""Per-sensor streaming inference on an ONNX artifact, in engineering units.

Each sensor has its own model state, transform-chain state and conformal
interval state.  ``push`` serves one reading; ``push_many`` serves one reading for
many sensors with a single batched onnxruntime call; ``push_with_intervals``
returns the forecast with its prediction intervals.  Imports numpy and
onnxruntime only (the intervals are :mod:`tsforge.intervals`, the library's own
code, so the edge box serves exactly the library's intervals).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.intervals import ConformalIntervals
from tsforge.models.base import Forecast
from tsforge.preprocess.transforms import Difference, Scale, TransformChain
from tsforge.runtime.artifact import Artifact, load_artifact


@dataclass
class SensorState:
    """What the runtime remembers about one sensor.

    ``conformal`` holds the sensor's interval state (plain arrays:
    ``conformal.state_dict()``), None when the artifact has no interval
    configuration or the runtime was built with ``intervals=False``.
    """

    model_state: np.ndarray
    chain: TransformChain
    covariate_scales: list[Scale]
    conformal: ConformalIntervals | None = None
    last_forecast: np.ndarray | None = None
    last_x: np.ndarray | None = None
    readings: int = 0
    imputed: int = 0
    fresh: bool = True


@dataclass
class LatencyStats:
    """Wall-clock seconds of each onnxruntime call."""

    seconds: list[float] = field(default_factory=list)

    def percentile_us(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.seconds) * 1e6, q)) if self.seconds else 0.0


class StreamingRuntime:
    """Serve an exported model to many sensors.

    Parameters
    ----------
    artifact
        An :class:`Artifact` or a path to ``model.onnx``.
    threads
        onnxruntime intra-op threads (1 is best for per-step latency).
    intervals
        Keep conformal interval state per sensor (as configured in the artifact's
        manifest).  The exported sensor continues the residual state it had at
        export time; a new sensor starts empty and gets intervals after the
        configured warm-up.  False saves the few tens of microseconds per reading
        that the interval bookkeeping costs.
    learner
        An online learner restored from the bundle (``learner.npz``), in the state
        it had at export; it serves and learns for ``learner_sensor`` (default: the
        artifact's exported sensor).  Imputed readings advance it without learning.
    """

    def __init__(self, artifact: Artifact | str | Path, *, threads: int = 1,
                 intervals: bool = True, learner: Any = None,
                 learner_sensor: str | None = None) -> None:
        self.artifact = artifact if isinstance(artifact, Artifact) else load_artifact(
            artifact, threads=threads)
        meta = self.artifact.meta
        self._chain_template = TransformChain.from_spec(meta.get("transforms", []))
        self._scales_template = [Scale(**{k: v for k, v in s.items() if k != "kind"})
                                 for s in meta.get("covariate_scales", [])]
        self._intervals_meta = meta.get("intervals") if intervals else None
        self.sensors: dict[str, SensorState] = {}
        self.latency = LatencyStats()
        self.learner = learner
        self.learner_sensor = learner_sensor or meta.get("sensor")
        self.learned = 0

    @property
    def horizon(self) -> int:
        return self.artifact.horizon

    @property
    def interval_levels(self) -> tuple[float, ...]:
        """Nominal levels of the intervals served (empty when they are off)."""
        if self._intervals_meta is None:
            return ()
        return tuple(self._intervals_meta["config"]["levels"])

    def _sensor(self, sensor: str) -> SensorState:
        state = self.sensors.get(sensor)
        if state is None:
            continuing = sensor == self.artifact.meta.get("sensor")
            state = SensorState(
                model_state=(self.artifact.exported_state() if continuing
                             else self.artifact.initial_state()),
                chain=copy.deepcopy(self._chain_template),
                covariate_scales=self._scales_template,
                fresh=not continuing,
                conformal=None if self._intervals_meta is None else ConformalIntervals.from_json(
                    self._intervals_meta, with_state=continuing),
            )
            self.sensors[sensor] = state
        return state

    def _prepare_input(self, st: SensorState, y: float, x: Any) -> np.ndarray:
        n_cov = self.artifact.n_channels - 1
        x_arr = np.zeros(0) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
        if x_arr.shape[0] != n_cov:
            raise DataError(f"model expects {n_cov} covariate value(s), got {x_arr.shape[0]}")
        if st.conformal is not None:
            st.conformal.observe(y)  # the reading as received: NaN scores nothing
        if not np.isfinite(y) or not np.all(np.isfinite(x_arr)):
            if st.last_forecast is None:
                raise DataError(
                    "first reading of a sensor is not finite; cannot impute without history"
                )
            if not np.isfinite(y):
                y = float(st.last_forecast[0])
            if st.last_x is not None:
                x_arr = np.where(np.isfinite(x_arr), x_arr, st.last_x)
            st.imputed += 1
        st.last_x = x_arr
        if st.fresh:
            z = _anchor_first(st.chain, float(y))
            st.fresh = False
        else:
            z = st.chain.transform_one(float(y))
        xs = [s.transform_one(v) for s, v in zip(st.covariate_scales, x_arr)]
        return np.asarray([z, *xs], dtype=np.float64)

    def push(self, sensor: str, y: float, x: Any = None) -> np.ndarray:
        """Feed one reading of ``sensor``; return its forecast of the next H readings."""
        return self.push_many([sensor], [y], None if x is None else [x])[0]

    def push_with_intervals(self, sensor: str, y: float, x: Any = None) -> Forecast:
        """Like :meth:`push`, returning the forecast with its conformal intervals."""
        self.push(sensor, y, x)
        return self.forecast(sensor)

    def forecast(self, sensor: str) -> Forecast:
        """The latest forecast of ``sensor`` with ``{level: (lower, upper)}`` intervals.

        Intervals are empty while the sensor's residual windows warm up, and always
        when the artifact carries no interval configuration.
        """
        st = self.sensors.get(sensor)
        if st is None or st.last_forecast is None:
            raise DataError(f"sensor '{sensor}' has no forecast yet; push a reading first")
        mean = st.last_forecast.copy()
        bands = st.conformal.intervals(mean) if st.conformal is not None else {}
        return Forecast(mean=mean, intervals=bands)

    def push_many(self, sensors: list[str], ys: Any, xs: Any = None) -> np.ndarray:
        """Feed one reading for each of ``sensors`` (distinct) in one batched call.

        Returns forecasts of shape ``(len(sensors), H)`` in engineering units.
        """
        if len(set(sensors)) != len(sensors):
            raise DataError("push_many takes each sensor at most once per call")
        states = [self._sensor(s) for s in sensors]
        imputed_before = [st.imputed for st in states]
        rows = np.stack([
            self._prepare_input(st, float(y), None if xs is None else xs[i])
            for i, (st, y) in enumerate(zip(states, ys))
        ])
        batch_state = np.stack([st.model_state for st in states]).astype(np.float32)
        t0 = time.perf_counter()
        z_hat, new_state = self.artifact.session.run(None, {"x": rows.astype(np.float32),
                                                             "state": batch_state})
        self.latency.seconds.append(time.perf_counter() - t0)
        z_hat = z_hat.astype(np.float64)
        if self.learner is not None and self.learner_sensor in sensors:
            i = sensors.index(self.learner_sensor)
            z_hat[i], new_state[i] = self._learn(rows[i], states[i].imputed > imputed_before[i])
        out = np.empty((len(sensors), self.horizon))
        for i, st in enumerate(states):
            st.model_state = new_state[i]
            st.readings += 1
            out[i] = st.chain.inverse_forecast(z_hat[i])
            st.last_forecast = out[i]
            if st.conformal is not None:
                st.conformal.record(out[i])
        return out


    def _learn(self, row: np.ndarray, imputed: bool) -> tuple[np.ndarray, np.ndarray]:
        """Feed the learner's sensor's transformed row; return its forecast and state."""
        z, xs = float(row[0]), row[1:]
        if imputed:
            self.learner.update(z, xs)
        else:
            self.learner.learn_one(z, xs)
            self.learned += 1
        return self.learner.forecast().mean, self.learner.stream_state()


def _anchor_first(chain: TransformChain, y: float) -> float:
    """Transform a new sensor's first reading, anchoring differences at it.

    A sensor the model has never seen has no previous level; its first
    difference is taken as 0 instead of a jump from the exported sensor's level.
    """
    z = y
    for step in chain.steps:
        if isinstance(step, Difference):
            step.last = z
            z = 0.0
        else:
            z = step.transform_one(z)
    return z
