"""The serving engine of an exported ``auto``: K expert engines and batched BOA.

An aggregate (:func:`tsforge.export.aggregate.export_aggregate`) is K exported
experts and the state of the BOA rule that combines them.  :class:`AggregateEngine`
serves it with the protocol of :class:`~tsforge.engine.group.GroupEngine`
(``step``, ``serve``, ``step_one``, ``add_sensor``, ``state_dict(i)``, ...), so the
Kafka worker, the edge runtime and the shadow stage use it unchanged.  A time
step of ``n`` sensors runs::

    each expert's GroupEngine.step on the same rows (one ONNX call per expert;
    its own chain, its own imputation of NaN readings, intervals off)
    -> BOA (tsforge.aggregation.BatchAggregator, all n sensors at once):
       push the experts' forecasts made at the previous step, score them on the
       readings (a NaN reading scores nothing) and update the weights
    -> drift: river detectors on the aggregate's one-step |residual| per sensor
       (tsforge.engine.drift.DriftStage); an alarm restarts that sensor's
       weights from (1 - share) w + share / K, at most every restart_gap readings
    -> combine the experts' new forecasts with the new weights
    -> conformal intervals of the aggregate (ConformalArrays)

which is what the library's ``auto`` does per reading, with the experts frozen
at their exported weights (online learners among them do not learn on; the
aggregation weights do).  The exported sensor continues from the exported state;
any other sensor starts from the exported weights with the share floor (as after
a restart) and empty interval windows.  The exported sensor's detectors replay
the |residual|s the library's detectors held at export, and every sensor's
detectors restart every ``segment`` values as the library's monitor does.  The
river detectors are not part of a checkpoint: a sensor restored from one starts
fresh detectors.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any

import numpy as np

from tsforge.aggregation import Aggregator, BatchAggregator, config_from_array
from tsforge.engine.chain import grown
from tsforge.engine.conformal import ConformalArrays
from tsforge.engine.drift import drift_stage
from tsforge.engine.group import GroupEngine, ServedSensors, StepResult
from tsforge.engine.latency import LatencyHistogram
from tsforge.errors import DataError
from tsforge.intervals import IntervalConfig

log = logging.getLogger("tsforge.engine")


class AggregateEngine(ServedSensors):
    """Serve an exported aggregate to many sensors (see the module docstring).

    Parameters
    ----------
    artifact
        A loaded :class:`~tsforge.runtime.artifact.AggregateArtifact`.
    intervals
        Keep conformal interval state of the aggregate (as exported).
    capacity
        Sensors to allocate for at first (the arrays grow as sensors arrive).
    drift
        Restart the weights on drift alarms (needs river; without it, no restarts).
    """

    def __init__(self, artifact: Any, *, intervals: bool = True, capacity: int = 16,
                 drift: bool = True) -> None:
        self.artifact = artifact
        meta = artifact.meta
        self.H, self.C = artifact.horizon, artifact.n_channels
        self.experts = [GroupEngine(a, intervals=False, capacity=capacity)
                        for a in artifact.experts]
        for e in self.experts:
            e.warn_unseen = False
        self.K = len(self.experts)
        self.exported = {k: np.asarray(v, dtype=np.float64)
                         for k, v in meta["aggregator"].items()}
        self.agg = BatchAggregator(config_from_array(self.exported["config"]), capacity)
        start = Aggregator.from_state(self.exported)
        start.restart()  # a new sensor: the exported weights with the share floor
        self.new_prior = start.prior.copy()
        settings = meta["drift"]
        self.restart_gap = int(settings["restart_gap"])
        self.drift = drift_stage(drift and bool(settings["detectors"]),
                                 detectors=tuple(settings["detectors"]),
                                 signals=("abs_residual",),
                                 segment=int(settings.get("segment", 0)))
        imeta = meta.get("intervals") if intervals else None
        self._intervals_meta = imeta
        self.levels: tuple[float, ...] = tuple(imeta["config"]["levels"]) if imeta else ()
        self.conformal = (ConformalArrays(IntervalConfig.from_dict(imeta["config"]),
                                          int(imeta["horizon"]), capacity) if imeta else None)
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.own_chains: dict[str, list[list[dict[str, Any]]]] = {}
        self.capacity = 0
        H, K = self.H, self.K
        self.last_fc, self.has_fc = np.zeros((0, H)), np.zeros(0, dtype=bool)
        self.expert_fc = np.zeros((0, H, K))  # the experts' latest forecasts, pending
        self.last_y = np.zeros(0)
        self.counts = np.zeros((0, 4), dtype=np.int64)  # readings, imputed, seen, last restart
        self._grow(capacity)
        self.latency = LatencyHistogram()  # the experts' steps (ONNX and chains) per time step
        self.restarts: deque[dict[str, Any]] = deque(maxlen=1000)
        self.online = None

    @property
    def families(self) -> list[str]:
        return list(self.artifact.families)

    # ------------------------------------------------------------------ sensors
    def _grow(self, need: int) -> None:
        if need <= self.capacity:
            return
        cap = max(need, 2 * self.capacity)
        self.agg.grow(cap)
        if self.conformal is not None:
            self.conformal.grow(cap)
        self.last_fc, self.has_fc = grown(self.last_fc, cap, 0.0), grown(self.has_fc, cap, False)
        self.expert_fc = grown(self.expert_fc, cap, np.nan)
        self.last_y = grown(self.last_y, cap, np.nan)
        self.counts = grown(self.counts, cap, 0)
        self.capacity = cap

    def add_sensor(self, sensor: str, transforms: list[list[dict[str, Any]]]) -> int:
        """Serve ``sensor`` with its own fitted chains: ``transforms[k]`` for expert ``k``."""
        if len(transforms) != self.K:
            raise DataError(f"sensor '{sensor}': {len(transforms)} chain(s) given, the "
                            f"aggregate has {self.K} experts ({', '.join(self.families)})")
        self.own_chains[sensor] = [list(t) for t in transforms]
        for e, chain in zip(self.experts, transforms, strict=True):
            e.own_chains[sensor] = [dict(t) for t in chain]
        i = self.sensor_index(sensor, create=True)
        self.reset(i)
        return i

    def _register(self, sensor: str, i: int) -> None:
        """Register ``sensor`` in every expert engine too, at the same position."""
        for e in self.experts:
            if e.sensor_index(sensor) != i:  # pragma: no cover - registered together
                raise DataError(f"expert engines disagree on sensor '{sensor}'")
        self._grow(i + 1)
        exported = self.artifact.meta.get("sensor")
        if sensor not in self.own_chains and sensor != exported:
            log.warning("sensor '%s' is not the exported sensor ('%s'): it is served from the "
                        "exported weights with the share floor, the experts' initial states "
                        "and the exported sensor's chains, and gets intervals once its "
                        "residual windows fill", sensor, exported)

    def _continuing(self, sensor: str) -> bool:
        return sensor not in self.own_chains and sensor == self.artifact.meta.get("sensor")

    def reset(self, i: int) -> None:
        """Sensor ``i`` as never served (the exported sensor continues its exported state)."""
        sensor = self.names[i]
        for e in self.experts:
            e.reset(i)
        self.has_fc[i] = False
        self.counts[i] = 0
        if self.drift is not None:
            self.drift.forget(sensor)
        if self.conformal is not None:
            self.conformal.reset(i)
        if not self._continuing(sensor):
            self.agg.reset(i, self.new_prior)
            self.expert_fc[i], self.last_y[i] = np.nan, np.nan
            self.counts[i, 3] = -self.restart_gap
            return
        exported = self.artifact.meta["exported"]
        self.agg.load_state_dict(i, self.exported)
        self.expert_fc[i] = np.asarray(exported["expert_forecasts"], dtype=np.float64)
        self.last_y[i] = float(exported["last_y"])
        self.counts[i, 2:] = int(exported["n_seen"]), int(exported["last_restart"])
        if self.drift is not None:
            settings = self.artifact.meta["drift"]
            self.drift.replay(sensor, "abs_residual", settings.get("residuals", []))
            self.drift.record([sensor], self.agg.combine([i], self.expert_fc[[i]])[:, 0])
        imeta = self._intervals_meta
        if self.conformal is not None and imeta is not None and "state" in imeta:
            self.conformal.load_state_dict(i, {k: np.asarray(v) for k, v in
                                               imeta["state"].items()})

    # ------------------------------------------------------------------ serving
    def step(self, idx: np.ndarray | None, values: np.ndarray) -> StepResult:
        """One time step: one reading ``values[j]`` ``(C,)`` of each sensor ``idx[j]``
        (distinct; None: every sensor in order)."""
        n = values.shape[0]
        ix = np.arange(n) if idx is None else idx
        t0 = time.perf_counter()
        results = [e.step(idx, values) for e in self.experts]
        self.latency.add(time.perf_counter() - t0)
        rejected, imputed = results[0].rejected, results[0].imputed
        x = np.stack([r.mean for r in results], axis=-1)  # (n, H, K)
        keep = ~rejected
        if keep.all():  # every sensor in order: the BOA arrays as views, no gathers
            mean, half = self._aggregate(ix, slice(0, n) if idx is None else ix,
                                         values[:, 0], x, imputed)
            return StepResult(mean, half, rejected, imputed)
        mean = np.full((n, self.H), np.nan)
        half = np.full((n, len(self.levels), self.H), np.nan)
        if keep.any():
            mean[keep], half[keep] = self._aggregate(ix[keep], ix[keep], values[keep, 0],
                                                     x[keep], imputed[keep])
        return StepResult(mean, half, rejected, imputed)

    def step_one(self, i: int, y: float, x: Any = None) -> np.ndarray | None:
        """Serve one reading of sensor ``i``: each expert's single-reading path, then the
        aggregation of one row; the forecast ``(H,)``, None if rejected."""
        t0 = time.perf_counter()
        out = [e.step_one(i, y, x) for e in self.experts]
        self.latency.add(time.perf_counter() - t0)
        if any(o is None for o in out):
            return None
        xs = np.stack(out, axis=-1)[None]
        mean, _ = self._aggregate(np.array([i]), slice(i, i + 1),
                                  np.array([y], dtype=np.float64), xs,
                                  np.array([not math.isfinite(y)]))
        return mean[0]

    def _aggregate(self, ix: np.ndarray, sel: Any, y: np.ndarray, x: np.ndarray,
                   imputed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Learn the weights of sensors ``ix`` on readings ``y`` (as received), restart
        them on drift, combine the experts' new forecasts ``x`` ``(n, H, K)``.

        ``sel`` indexes the same sensors in the per-sensor arrays: ``ix`` or, for
        consecutive sensors, a slice (views instead of gathers)."""
        if not np.isfinite(x).all():
            x = np.where(np.isfinite(x), x, np.nan)
        agg, counts = self.agg, self.counts
        agg.push(sel, self.expert_fc[sel])
        agg.update(sel, y)
        if self.conformal is not None:  # sensors 0..n-1: windows updated in place
            self.conformal.observe(ix, y, contiguous=isinstance(sel, slice) and sel.start == 0)
        names = [self.names[i] for i in ix.tolist()] if self.drift is not None else []
        if self.drift is not None:
            self._watch(ix, names, y)
        counts[sel, 2] += 1
        fresh = agg.combine(sel, x)
        finite = np.isfinite(y)
        if finite.all():
            self.last_y[sel] = y
        else:
            self.last_y[sel] = np.where(finite, y, self.last_y[sel])
        # no expert has a finite forecast: carry the last reading (never NaN downstream)
        mean = fresh
        if not np.isfinite(fresh).all():
            mean = np.where(np.isfinite(fresh), fresh, self.last_y[sel, None])
        if self.drift is not None:
            self.drift.record(names, fresh[:, 0])
        self.expert_fc[sel] = x
        self.last_fc[sel] = mean
        self.has_fc[sel] = True
        counts[sel, 0] += 1
        if imputed.any():
            counts[sel, 1] += imputed
        half = (self.conformal.record(ix, mean) if self.conformal is not None
                else np.empty((ix.shape[0], 0, self.H)))
        return mean, half

    def _watch(self, ix: np.ndarray, names: list[str], y: np.ndarray) -> None:
        """Feed each sensor's one-step |residual|; restart the weights of those that fire
        (at most every ``restart_gap`` readings)."""
        assert self.drift is not None
        alarms = self.drift.update(names, y)
        if not alarms:
            return
        rows = np.unique([a.row for a in alarms])
        seen, last = self.counts[ix[rows], 2], self.counts[ix[rows], 3]
        due = rows[seen - last >= self.restart_gap]
        if not due.size:
            return
        who = ix[due]
        before = self.agg.weights(who)[:, 0]
        self.agg.restart(who)
        self.counts[who, 3] = self.counts[who, 2]
        fired = {a.row: a.detector for a in alarms}
        for r, w in zip(due.tolist(), before, strict=True):
            event = {"sensor": names[r], "index": int(self.counts[ix[r], 2]),
                     "alarm": fired[r], "weights_before": w.tolist()}
            self.restarts.append(event)
            log.info("aggregate weights restarted on drift", extra={"fields": event})

    # ------------------------------------------------------------------ views, state
    def weights(self, i: int) -> np.ndarray:
        """Sensor ``i``'s current weights ``(H, K)`` over :attr:`families`."""
        return self.agg.weights(np.array([i]))[0]

    def model_state(self, i: int) -> np.ndarray:
        """Sensor ``i``'s expert states, flattened one after the other."""
        return np.concatenate([e.onnx.state[i].ravel() for e in self.experts])

    def state_dict(self, i: int) -> dict[str, np.ndarray]:
        """Sensor ``i``'s whole state as plain arrays (experts, weights, intervals)."""
        out: dict[str, np.ndarray] = {}
        for k, e in enumerate(self.experts):
            out.update({f"expert{k}/{key}": v for key, v in e.state_dict(i).items()})
        out.update({f"agg/{key}": v for key, v in self.agg.state_dict(i).items()})
        out["counters"] = self.counts[i].copy()
        out["expert_forecasts"] = self.expert_fc[i].copy()
        out["last_y"] = np.array(self.last_y[i])
        out["last_forecast"] = self.last_fc[i].copy() if self.has_fc[i] else np.zeros(0)
        if self.conformal is not None:
            out.update({f"conformal/{k}": v for k, v in self.conformal.state_dict(i).items()})
        return out

    def load_state_dict(self, i: int, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` output (a checkpoint) into sensor ``i``."""
        n_experts = len({k.split("/")[0] for k in state if k.startswith("expert") and "/" in k})
        if n_experts != self.K or "agg/config" not in state:
            raise DataError(f"saved state of sensor '{self.names[i]}' holds {n_experts} "
                            f"expert(s), the aggregate has {self.K}; it belongs to another "
                            "model version")
        for k, e in enumerate(self.experts):
            prefix = f"expert{k}/"
            e.load_state_dict(i, {key[len(prefix):]: v for key, v in state.items()
                                  if key.startswith(prefix)})
        self.agg.load_state_dict(i, {key[4:]: v for key, v in state.items()
                                     if key.startswith("agg/")})
        self.counts[i] = np.asarray(state["counters"], dtype=np.int64)
        self.expert_fc[i] = np.asarray(state["expert_forecasts"], dtype=np.float64)
        self.last_y[i] = float(state["last_y"])
        fc = np.asarray(state["last_forecast"])
        self.has_fc[i] = fc.size > 0
        if fc.size:
            self.last_fc[i] = fc
        if self.drift is not None:  # fresh detectors, residuals against the served forecast
            self.drift.forget(self.names[i])
            self.drift.record([self.names[i]],
                              self.agg.combine([i], self.expert_fc[[i]])[:, 0])
        if self.conformal is not None and "conformal/alpha" in state:
            self.conformal.load_state_dict(i, {k.split("/", 1)[1]: v for k, v in state.items()
                                               if k.startswith("conformal/")})


def engine_for(artifact: Any, *, intervals: bool = True, capacity: int = 16
               ) -> GroupEngine | AggregateEngine:
    """The engine that serves ``artifact``: an aggregate's or one ONNX step's."""
    if hasattr(artifact, "experts"):
        return AggregateEngine(artifact, intervals=intervals, capacity=capacity)
    return GroupEngine(artifact, intervals=intervals, capacity=capacity)
