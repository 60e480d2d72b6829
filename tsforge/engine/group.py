"""The columnar serving engine of one model group (one exported ONNX step).

Every reading tsforge serves, whoever delivers it (the Kafka worker, the edge box,
the library's monitored serving, a replay), goes through :class:`GroupEngine`.
A *time step* takes one reading of each of ``n`` distinct sensors as arrays
(sensor index ``(n,)``, values ``(n, C)``: target then covariates) and runs::

    validate (one finite check per batch; imputation only for the rows that fail)
    -> conformal: score the pending forecasts on the readings
    -> transform chain (per-sensor parameter arrays)
    -> ONNX step of all n sensors in one IOBinding call (state in one float32 array)
    -> online learners' stage (their sensors' rows only)
    -> inverse chain -> conformal: half-widths of the new forecasts

with no Python loop over sensors.  :meth:`GroupEngine.serve` takes rows that may
repeat sensors (a Kafka poll) and runs one time step per occurrence rank, so a
block of ``n`` readings over ``S`` sensors costs about ``n / S`` ONNX calls.
:meth:`GroupEngine.step_one` is the path of a single reading (the edge box):
Python floats around the same bound ONNX call.

Per-sensor state (model state, chain parameters, conformal windows, last forecast,
counters) lives in arrays indexed by the sensor's position; :meth:`state_dict` and
:meth:`load_state_dict` give one sensor's state in the format the per-sensor
runtime wrote, so checkpoints and bundles of earlier versions load unchanged.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsforge.engine.chain import ChainSet, grown
from tsforge.engine.conformal import ConformalArrays
from tsforge.engine.latency import LatencyHistogram
from tsforge.engine.onnx_step import BoundStep
from tsforge.errors import DataError
from tsforge.intervals import ConformalIntervals, IntervalConfig

log = logging.getLogger("tsforge.engine")


@dataclass
class StepResult:
    """What a step served, row for row.

    ``mean`` ``(n, H)`` forecasts in engineering units; ``half`` ``(n, L, H)``
    conformal half-widths (NaN while warming up; ``L`` = 0 with intervals off);
    ``rejected`` ``(n,)`` rows not served (a sensor's first reading not finite:
    nothing to impute from), their ``mean`` NaN; ``imputed`` ``(n,)`` rows served
    with an imputed value.
    """

    mean: np.ndarray
    half: np.ndarray
    rejected: np.ndarray
    imputed: np.ndarray


class ServedSensors(ABC):
    """What every serving engine shares over its sensor arrays: name lookup, serving
    rows that repeat sensors by occurrence rank, and the per-sensor views.

    A subclass has ``names``, ``index``, ``sensor_index``, ``step``, ``H``, ``C``,
    ``levels``, ``last_fc``, ``has_fc`` and ``conformal`` (a
    :class:`~tsforge.engine.conformal.ConformalArrays` or None).
    """

    names: list[str]
    index: dict[str, int]
    H: int
    C: int
    levels: tuple[float, ...]
    last_fc: np.ndarray
    has_fc: np.ndarray
    conformal: ConformalArrays | None

    @property
    def n_sensors(self) -> int:
        return len(self.names)

    def sensor_index(self, sensor: str, *, create: bool = True) -> int:
        """Position of ``sensor`` in the arrays (registered at first sight)."""
        i = self.index.get(sensor)
        if i is None:
            if not create:
                raise DataError(f"sensor '{sensor}' has not been served")
            i = len(self.names)
            self._register(sensor, i)
            self.names.append(sensor)
            self.index[sensor] = i
            self.reset(i)
        return i

    @abstractmethod
    def _register(self, sensor: str, i: int) -> None:
        """Make room for a new sensor at position ``i`` (before it is reset)."""

    @abstractmethod
    def reset(self, i: int) -> None:
        """Sensor ``i`` as never served."""

    @abstractmethod
    def step(self, idx: np.ndarray | None, values: np.ndarray) -> StepResult:
        """One time step: one reading of each sensor ``idx[j]``."""

    def indices(self, sensors: list[str]) -> np.ndarray:
        get = self.index.get
        out = [get(s) for s in sensors]
        if None in out:
            out = [self.sensor_index(s) for s in sensors]
        return np.asarray(out, dtype=np.intp)

    def serve(self, idx: np.ndarray, values: np.ndarray) -> StepResult:
        """Serve rows that may repeat sensors, each sensor's rows in order.

        Occurrence ``k`` of every sensor is served in time step ``k``: one ONNX call
        per step for all sensors present.  Equal to serving row by row.
        """
        n = idx.shape[0]
        if n == 0:
            return self.step(idx, values.reshape(0, self.C))
        order = np.argsort(idx, kind="stable")
        ranked = idx[order]
        first = np.ones(n, dtype=bool)
        first[1:] = ranked[1:] != ranked[:-1]
        pos = np.arange(n)
        rank = np.empty(n, dtype=np.intp)
        rank[order] = pos - np.maximum.accumulate(np.where(first, pos, 0))
        if rank.max() == 0:
            # every sensor once, in order: the step's contiguous path (no gathers)
            every = n == self.n_sensors and bool((ranked == idx).all())
            return self.step(None if every else idx, values)
        L = len(self.levels)
        out = StepResult(np.full((n, self.H), np.nan), np.full((n, L, self.H), np.nan),
                         np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
        for k in range(rank.max() + 1):
            rows = by_rank[bounds[k]:bounds[k + 1]]
            res = self.step(idx[rows], values[rows])
            out.mean[rows], out.half[rows] = res.mean, res.half
            out.rejected[rows], out.imputed[rows] = res.rejected, res.imputed
        return out

    def last_forecast(self, i: int) -> np.ndarray | None:
        return self.last_fc[i].copy() if self.has_fc[i] else None

    def half_widths(self, i: int) -> np.ndarray:
        """Half-widths ``(L, H)`` served with sensor ``i``'s latest forecast."""
        if self.conformal is None:
            return np.zeros((0, self.H))
        return self.conformal.q[i].T.copy()

    def conformal_of(self, i: int) -> ConformalIntervals | None:
        """Sensor ``i``'s interval state as a per-series tracker (a copy)."""
        if self.conformal is None:
            return None
        tracker = ConformalIntervals(self.conformal.config, self.conformal.H)
        tracker.load_state_dict(self.conformal.state_dict(i))
        return tracker


class GroupEngine(ServedSensors):
    """Serve one exported model to many sensors (see the module docstring).

    Parameters
    ----------
    artifact
        A loaded :class:`~tsforge.runtime.artifact.Artifact`.
    intervals
        Keep conformal interval state (as configured in the manifest).
    capacity
        Sensors to allocate for at first (the arrays grow as sensors arrive).
    step
        What stands in for the ONNX step (default: the artifact's session bound
        through :class:`BoundStep`); :class:`~tsforge.engine.online.LearnerStep` for
        a group whose online stage serves every sensor (no exported model).
    """

    def __init__(self, artifact: Any, *, intervals: bool = True, capacity: int = 16,
                 step: Any = None) -> None:
        self.artifact = artifact
        meta = artifact.meta
        self.H, self.C = artifact.horizon, artifact.n_channels
        self.template = [dict(t) for t in meta.get("transforms", [])]
        cov = meta.get("covariate_scales", [])
        self.cov_mean = np.asarray([s["mean"] for s in cov], dtype=np.float64)
        self.cov_std = np.asarray([s["std"] for s in cov], dtype=np.float64)
        imeta = meta.get("intervals") if intervals else None
        self._intervals_meta = imeta
        self.levels: tuple[float, ...] = (tuple(imeta["config"]["levels"]) if imeta else ())
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.own_chains: dict[str, list[dict[str, Any]]] = {}
        self.chain = ChainSet(self.template, capacity)
        self.conformal = (ConformalArrays(IntervalConfig.from_dict(imeta["config"]),
                                          int(imeta["horizon"]), capacity) if imeta else None)
        self.onnx = step if step is not None else BoundStep(
            artifact.session, self.C, self.H, artifact.state_shape, capacity)
        self.capacity = capacity
        z = np.zeros(0)
        self.last_fc = np.zeros((capacity, self.H))
        self.last_x = np.zeros((capacity, self.C - 1))
        self.has_fc, self.has_x = z.astype(bool), z.astype(bool)
        self.fresh, self.readings, self.imputed = z.astype(bool), z.astype(np.int64), \
            z.astype(np.int64)
        self._grow_flags(capacity)
        self.latency = LatencyHistogram()
        self.online: Any = None  # an OnlineStage (tsforge.engine.online)
        self.warn_unseen = True  # log a sensor served cold (an aggregate logs once itself)
        self._no = np.zeros(0, dtype=bool)
        self._ar = np.zeros(0, dtype=np.intp)

    # ------------------------------------------------------------------ sensors
    def _grow_flags(self, capacity: int) -> None:
        self.last_fc = grown(self.last_fc, capacity, 0.0)
        self.last_x = grown(self.last_x, capacity, 0.0)
        self.has_fc, self.has_x = grown(self.has_fc, capacity, False), \
            grown(self.has_x, capacity, False)
        self.fresh = grown(self.fresh, capacity, True)
        self.readings = grown(self.readings, capacity, 0)
        self.imputed = grown(self.imputed, capacity, 0)

    def _grow(self, need: int) -> None:
        if need <= self.capacity:
            return
        cap = max(need, 2 * self.capacity)
        self.chain.grow(cap)
        if self.conformal is not None:
            self.conformal.grow(cap)
        self.onnx.grow(cap)
        self._grow_flags(cap)
        self.capacity = cap

    def add_sensor(self, sensor: str, transforms: list[dict[str, Any]]) -> int:
        """Serve ``sensor`` with its own fitted chain; it starts from the initial state."""
        self.own_chains[sensor] = [dict(t) for t in transforms]
        i = self.sensor_index(sensor, create=True)
        self.reset(i)
        return i

    def _register(self, sensor: str, i: int) -> None:
        self._grow(i + 1)
        self._warn_if_unseen(sensor)

    def _warn_if_unseen(self, sensor: str) -> None:
        """Say once that a sensor the model was not exported for is served cold."""
        exported = self.artifact.meta.get("sensor")
        if sensor in self.own_chains or sensor == exported or not self.warn_unseen:
            return
        log.warning("sensor '%s' is not the exported sensor ('%s'): it is served from the "
                    "initial model state with the exported sensor's transform chain, and "
                    "gets intervals once its residual windows fill", sensor, exported)

    def reset(self, i: int) -> None:
        """Sensor ``i`` as never served: initial state (the exported sensor continues)."""
        sensor = self.names[i]
        own = self.own_chains.get(sensor)
        continuing = own is None and sensor == self.artifact.meta.get("sensor")
        self.chain.set_spec(i, own if own is not None else copy.deepcopy(self.template))
        self.onnx.state[i] = (self.artifact.exported_state() if continuing
                              else self.artifact.initial_state())
        self.fresh[i] = not continuing
        self.has_fc[i] = self.has_x[i] = False
        self.readings[i] = self.imputed[i] = 0
        if self.conformal is not None:
            self.conformal.reset(i)
            if continuing and "state" in self._intervals_meta:
                self.conformal.load_state_dict(i, {k: np.asarray(v) for k, v in
                                                   self._intervals_meta["state"].items()})

    # ------------------------------------------------------------------ serving
    def step(self, idx: np.ndarray | None, values: np.ndarray) -> StepResult:
        """One time step: one reading ``values[j]`` ``(C,)`` of each sensor ``idx[j]``.

        ``idx`` distinct; None means every sensor in order (``values`` has
        :attr:`n_sensors` rows), which binds the state array without copies.
        """
        n = values.shape[0]
        if n == 0:  # nothing to serve (a batch of rejected rows): no ONNX call
            return StepResult(np.zeros((0, self.H)), np.zeros((0, len(self.levels), self.H)),
                              np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
        ix = self._arange(n) if idx is None else idx
        sel = slice(0, n) if idx is None else idx
        y_raw = values[:, 0]
        imputed = rejected = self._false(n)
        if not np.isfinite(values).all():
            ok = np.isfinite(values).all(axis=1)
            rejected = ~ok & ~self.has_fc[ix]
            if rejected.any():  # serve the others; the rejected rows keep their state
                H, L, keep = self.H, len(self.levels), ~rejected
                mean, half = np.full((n, H), np.nan), np.full((n, L, H), np.nan)
                imputed = np.zeros(n, dtype=bool)
                sub = self.step(ix[keep], values[keep])
                mean[keep], half[keep], imputed[keep] = sub.mean, sub.half, sub.imputed
                return StepResult(mean, half, rejected, imputed)
            imputed, values = ~ok, self._impute(ix, values, ~ok)
        y = values[:, 0]
        if self.conformal is not None:
            # the reading as received: NaN scores nothing
            self.conformal.observe(ix, y_raw, contiguous=idx is None)
        if self.C > 1:
            self.last_x[sel] = values[:, 1:]
            self.has_x[sel] = True
        fresh = self.fresh[sel]
        z = self.chain.transform(sel, y, fresh if fresh.any() else None)
        self.fresh[sel] = False
        x = self.onnx.x
        x[:n, 0] = z
        if self.C > 1:
            x[:n, 1:] = (values[:, 1:] - self.cov_mean) / self.cov_std
        t0 = time.perf_counter()
        z_hat = self.onnx.run(idx, n).astype(np.float64)
        self.latency.add(time.perf_counter() - t0)
        if self.online is not None:
            self._online(ix, z, values, imputed, z_hat)
        mean = self.chain.inverse(sel, z_hat)
        self.last_fc[sel] = mean
        self.has_fc[sel] = True
        self.readings[sel] += 1
        if imputed.any():
            np.add.at(self.imputed, ix[imputed], 1)
        half = (self.conformal.record(ix, mean) if self.conformal is not None
                 else np.empty((n, 0, self.H)))
        return StepResult(mean, half, rejected, imputed)

    def _false(self, n: int) -> np.ndarray:
        """A read-only all-False ``(n,)`` mask (shared: no allocation per step)."""
        if self._no.shape[0] < n:
            self._no = np.zeros(max(n, 2 * self._no.shape[0]), dtype=bool)
            self._no.flags.writeable = False
        return self._no[:n]

    def _arange(self, n: int) -> np.ndarray:
        """A read-only ``arange(n)`` (shared: no allocation per step)."""
        if self._ar.shape[0] < n:
            self._ar = np.arange(max(n, 2 * self._ar.shape[0]), dtype=np.intp)
            self._ar.flags.writeable = False
        return self._ar[:n]

    def _impute(self, ix: np.ndarray, values: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Replace non-finite values: the target by the last one-step forecast, covariates
        by their last values (rows ``bad`` only; every such sensor has a forecast)."""
        values = values.copy()
        rows = np.flatnonzero(bad)
        v = values[rows]
        s = ix[rows]
        v[:, 0] = np.where(np.isfinite(v[:, 0]), v[:, 0], self.last_fc[s, 0])
        if self.C > 1:
            prev = np.where(self.has_x[s, None], self.last_x[s], np.nan)
            v[:, 1:] = np.where(np.isfinite(v[:, 1:]), v[:, 1:], prev)
        values[rows] = v
        return values

    def _online(self, ix: np.ndarray, z: np.ndarray, values: np.ndarray,
                imputed: np.ndarray, z_hat: np.ndarray) -> None:
        """Let the online stage serve its sensors' rows (see :mod:`tsforge.engine.online`)."""
        rows = np.flatnonzero(np.isin(ix, self.online.sensors))
        if not rows.size:
            return
        xs = (values[rows, 1:] - self.cov_mean) / self.cov_std
        fc, state = self.online.step(ix[rows], z[rows], xs, imputed[rows])
        z_hat[rows] = fc
        self.onnx.state[ix[rows]] = state

    def step_one(self, i: int, y: float, x: Any = None) -> np.ndarray | None:
        """Serve one reading of sensor ``i``; the forecast ``(H,)``, None if rejected.

        Intervals off and no online stage: Python floats around the bound ONNX
        call.  Otherwise (or for a non-finite reading) the batch path with one row.
        """
        if self.C == 1 and self.conformal is None and self.online is None and math.isfinite(y):
            onnx = self.onnx
            onnx.x[0, 0] = self.chain.transform_one(i, y, bool(self.fresh[i]))
            self.fresh[i] = False
            t0 = time.perf_counter()
            z_hat = onnx.run_one(i).astype(np.float64)
            self.latency.add(time.perf_counter() - t0)
            mean = self.chain.inverse_one(i, z_hat)
            self.last_fc[i] = mean
            self.has_fc[i] = True
            self.readings[i] += 1
            return mean
        row = np.empty((1, self.C))
        row[0, 0] = y
        if self.C > 1:
            row[0, 1:] = np.asarray(x, dtype=np.float64).reshape(-1)
        res = self.step(np.array([i]), row)
        return None if res.rejected[0] else res.mean[0]

    # ------------------------------------------------------------------ views, state
    def state_dict(self, i: int) -> dict[str, np.ndarray]:
        """Sensor ``i``'s whole state as plain arrays (the per-sensor runtime's format)."""
        out = {
            "model_state": np.array(self.onnx.state[i]),
            "chain": np.array(json.dumps(self.chain.spec(i))),
            "counters": np.array([self.readings[i], self.imputed[i], int(self.fresh[i])],
                                 dtype=np.int64),
            "last_forecast": self.last_fc[i].copy() if self.has_fc[i] else np.zeros(0),
            "last_x": self.last_x[i].copy() if self.has_x[i] else np.zeros(0),
        }
        if self.conformal is not None:
            out.update({f"conformal/{k}": v for k, v in self.conformal.state_dict(i).items()})
        return out

    def load_state_dict(self, i: int, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` output (a checkpoint) into sensor ``i``."""
        model_state = np.asarray(state["model_state"], dtype=np.float32)
        if model_state.shape != self.artifact.state_shape:
            raise DataError(
                f"saved state of sensor '{self.names[i]}' has shape {model_state.shape}, the "
                f"model expects {self.artifact.state_shape}; it belongs to another model version")
        self.onnx.state[i] = model_state
        self.chain.set_spec(i, json.loads(str(state["chain"])))
        readings, imputed, fresh = (int(v) for v in state["counters"])
        self.readings[i], self.imputed[i], self.fresh[i] = readings, imputed, bool(fresh)
        fc = np.asarray(state["last_forecast"])
        self.has_fc[i] = fc.size > 0
        if fc.size:
            self.last_fc[i] = fc
        lx = np.asarray(state["last_x"])
        self.has_x[i] = lx.size > 0
        if lx.size:
            self.last_x[i] = lx
        if self.conformal is not None and "conformal/alpha" in state:
            self.conformal.load_state_dict(i, {k.split("/", 1)[1]: v for k, v in state.items()
                                               if k.startswith("conformal/")})
