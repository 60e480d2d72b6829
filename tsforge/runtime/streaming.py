"""Per-sensor streaming inference on an ONNX artifact, in engineering units.

Each sensor has its own model state, transform-chain state and conformal
interval state.  ``push`` serves one reading; ``push_many`` serves one reading for
many sensors with a single batched onnxruntime call; ``push_series`` serves a
block of readings of many sensors (one batched call per time step, the serving
loop of a Kafka worker); ``push_with_intervals`` returns the forecast with its
prediction intervals.  ``add_sensor`` gives a sensor its own transform
statistics (one model shared by sensors configured alike), and a sensor's whole
state round-trips through ``sensor_state_dict``/``load_sensor_state_dict``
(checkpoints, handing a sensor to another worker).  Imports numpy and
onnxruntime only (the intervals are :mod:`tsforge.intervals`, the library's own
code, so the edge box serves exactly the library's intervals).
"""

from __future__ import annotations

import copy
import json
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
        self._own_chains: dict[str, list[dict[str, Any]]] = {}
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

    def add_sensor(self, sensor: str, transforms: list[dict[str, Any]]) -> None:
        """Serve ``sensor`` with its own fitted transform chain (a chain spec).

        The model is shared; ``transforms`` carries the sensor's own statistics
        (scale, seasonal profile) fitted on its history.  The sensor starts from the
        initial model state, anchored at its first live reading.
        """
        self._own_chains[sensor] = [dict(t) for t in transforms]
        self.sensors.pop(sensor, None)

    def _sensor(self, sensor: str) -> SensorState:
        state = self.sensors.get(sensor)
        if state is None:
            own = self._own_chains.get(sensor)
            continuing = own is None and sensor == self.artifact.meta.get("sensor")
            state = SensorState(
                model_state=(self.artifact.exported_state() if continuing
                             else self.artifact.initial_state()),
                chain=(TransformChain.from_spec(own) if own is not None
                       else copy.deepcopy(self._chain_template)),
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


    def push_series(self, sensors: list[str], values: list[np.ndarray]
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Feed a block of readings: ``values[j]`` (``(T_j, C)``) in order for ``sensors[j]``.

        Time step ``t`` of every sensor that has one is served by one batched
        onnxruntime call, so a block of ``n`` readings over ``S`` sensors costs
        ``max_j T_j`` calls instead of ``n``; the transform chains run over each
        sensor's block with array arithmetic.  Returns per sensor the forecasts
        ``(T_j, H)`` issued after each reading and the conformal half-widths
        ``(T_j, L, H)`` served with them (NaN while the intervals warm up; ``L`` is
        0 when intervals are off).  Equal to calling :meth:`push` reading by
        reading (a test checks it); a block holding a non-finite reading is served
        that way, since imputation needs the forecast of the step before.
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
        if all(np.isfinite(v).all() for v in vals):
            return self._push_block(sensors, vals)
        out = [self._push_readings(s, v) for s, v in zip(sensors, vals)]
        return [o[0] for o in out], [o[1] for o in out]

    def _push_readings(self, sensor: str, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference path: one :meth:`push` per reading."""
        H, L = self.horizon, len(self.interval_levels)
        means, halves = np.empty((len(vals), H)), np.full((len(vals), L, H), np.nan)
        for t, v in enumerate(vals):
            means[t] = self.push(sensor, v[0], v[1:] if v.size > 1 else None)
            st = self.sensors[sensor]
            if st.conformal is not None:
                halves[t] = st.conformal.q
        return means, halves

    def _push_block(self, sensors: list[str], vals: list[np.ndarray]
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        order = sorted(range(len(sensors)), key=lambda j: -len(vals[j]))
        states = [self._sensor(sensors[j]) for j in order]
        blocks = [vals[j] for j in order]
        lens = [b.shape[0] for b in blocks]
        H, L, C = self.horizon, len(self.interval_levels), self.artifact.n_channels
        T, S = (lens[0] if lens else 0), len(states)
        Z = np.zeros((T, S, C), dtype=np.float32)  # (T, S, C) model inputs
        contexts = []
        for i, (st, b) in enumerate(zip(states, blocks)):
            z, ctx = st.chain.transform_block(b[:, 0], anchor=st.fresh)
            st.fresh = False
            Z[:lens[i], i, 0] = z
            for c, scale in enumerate(st.covariate_scales, start=1):
                Z[:lens[i], i, c] = scale.transform(b[:, c])
            if C > 1 and lens[i]:
                st.last_x = b[-1, 1:].copy()
            contexts.append(ctx)
        z_hat = np.zeros((T, S, H), dtype=np.float32)  # (T, S, H) transformed forecasts
        state_mat = np.stack([st.model_state for st in states]).astype(np.float32)
        run = self.artifact.session.run
        k = S
        for t in range(T):
            while k and lens[k - 1] <= t:
                k -= 1
            z_hat[t, :k], state_mat[:k] = run(None, {"x": Z[t, :k], "state": state_mat[:k]})
        means, halves = [], []
        for i, (st, b) in enumerate(zip(states, blocks)):
            n = lens[i]
            st.model_state = state_mat[i].copy()
            mean = st.chain.inverse_block(z_hat[:n, i].astype(np.float64), contexts[i])
            half = np.full((n, L, H), np.nan)
            if st.conformal is not None:
                for t in range(n):
                    st.conformal.observe(b[t, 0])
                    st.conformal.record(mean[t])
                    half[t] = st.conformal.q
            if n:
                st.last_forecast = mean[-1].copy()
                st.readings += n
            means.append(mean)
            halves.append(half)
        back = {j: i for i, j in enumerate(order)}
        return ([means[back[j]] for j in range(len(sensors))],
                [halves[back[j]] for j in range(len(sensors))])

    def sensor_state_dict(self, sensor: str) -> dict[str, np.ndarray]:
        """Everything the runtime remembers about ``sensor``, as plain arrays."""
        st = self._sensor(sensor)
        out = {
            "model_state": np.array(st.model_state),
            "chain": np.array(json.dumps(st.chain.to_spec())),
            "counters": np.array([st.readings, st.imputed, int(st.fresh)], dtype=np.int64),
            "last_forecast": (np.zeros(0) if st.last_forecast is None
                              else np.array(st.last_forecast)),
            "last_x": np.zeros(0) if st.last_x is None else np.array(st.last_x),
        }
        if st.conformal is not None:
            out.update({f"conformal/{k}": v for k, v in st.conformal.state_dict().items()})
        return out

    def load_sensor_state_dict(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`sensor_state_dict` returned (e.g. from a checkpoint)."""
        st = self._sensor(sensor)
        model_state = np.asarray(state["model_state"], dtype=np.float32)
        if model_state.shape != self.artifact.state_shape:
            raise DataError(
                f"saved state of sensor '{sensor}' has shape {model_state.shape}, the model "
                f"expects {self.artifact.state_shape}; it belongs to another model version"
            )
        st.model_state = model_state
        st.chain = TransformChain.from_spec(json.loads(str(state["chain"])))
        st.readings, st.imputed, fresh = (int(v) for v in state["counters"])
        st.fresh = bool(fresh)
        st.last_forecast = (np.array(state["last_forecast"])
                            if state["last_forecast"].size else None)
        st.last_x = np.array(state["last_x"]) if state["last_x"].size else None
        if st.conformal is not None and "conformal/alpha" in state:
            st.conformal.load_state_dict({k.split("/", 1)[1]: v for k, v in state.items()
                                          if k.startswith("conformal/")})

    def drop_sensor(self, sensor: str) -> None:
        """Forget ``sensor``'s live state (it is served by another worker now)."""
        self.sensors.pop(sensor, None)

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
