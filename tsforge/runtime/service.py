"""One edge deployment: a verified bundle served per reading, with rollback and adaptation.

:class:`EdgeService` ties the pieces together for ``tsforge-edge run``:

- the current version's :class:`~tsforge.runtime.streaming.StreamingRuntime`;
- the previous version in its shadow, with the engine's shadow stage
  (:class:`~tsforge.engine.shadow.ShadowStage`, the monitor's rule) switching serving
  back to it when the live errors say so (and, with ``persist_rollback``, recording
  the switch in ``bundle.json`` so a restart keeps it);
- with ``adapt``, the bundle's online learner serving and learning for its sensor,
  and :meth:`save` writing what it learned as a new bundle version;
- where river is installed, per-sensor drift detectors on the served residuals
  (the engine's drift stage, :mod:`tsforge.engine.drift`), reported as events and
  passed to the monitor.

A plain ``model.onnx`` (with its manifest) is served too, without rollback or adaptation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tsforge.engine.drift import drift_stage
from tsforge.errors import ArtifactError, ConfigError, DataError
from tsforge.models.base import Forecast
from tsforge.runtime import bundle as layout
from tsforge.runtime.streaming import StreamingRuntime, as_forecast


class EdgeService:
    """Serve a bundle (or a bare ONNX artifact) one reading at a time.

    Parameters
    ----------
    path
        Bundle folder or ``model.onnx``.
    threads, intervals
        As for :class:`StreamingRuntime`.
    int8
        Serve the bundle's int8 step instead of the float32 one.
    adapt
        Keep learning on the device with the bundle's online learner.
    rollback
        Shadow the previous version and roll back when the monitor says so (bundles
        that keep one).  ``monitor`` holds :class:`~tsforge.monitor.MonitorConfig`
        settings (defaults when None).
    persist_rollback
        Record a rollback in ``bundle.json`` (the previous version becomes current).
    drift
        Watch the served residuals for drift when river is installed.
    """

    def __init__(self, path: str | Path, *, threads: int = 1, intervals: bool = False,
                 int8: bool = False, adapt: bool = False, rollback: bool = True,
                 monitor: dict[str, Any] | None = None, persist_rollback: bool = True,
                 drift: bool = True) -> None:
        path = Path(path)
        self.bundle: layout.Bundle | None = None
        self.persist_rollback = persist_rollback
        self.events: list[dict[str, Any]] = []
        self._persisted = False
        self.drift = drift_stage(drift, detectors=("adwin",), signals=("abs_residual",))
        learner, shadow = None, None
        if layout.is_bundle(path):
            self.bundle = layout.load_bundle(path, threads=threads, int8=int8)
            artifact = self.bundle.current
            if adapt:
                learner = self._load_learner()
            previous = self.bundle.previous
            if rollback and previous is not None and _compatible(artifact, previous):
                shadow = StreamingRuntime(previous, intervals=intervals)
        else:
            if adapt or int8:
                raise ConfigError("--adapt and --int8 need a bundle folder (tsforge export "
                                  "--bundle OUT), not a single .onnx file")
            artifact = path
        self.runtime = StreamingRuntime(artifact, threads=threads, intervals=intervals,
                                        learner=learner)
        self.shadow = None
        if shadow is not None:
            from tsforge.engine.shadow import ShadowStage
            from tsforge.monitor import MonitorConfig

            assert self.bundle is not None
            current, prev = self.bundle.index["current"], self.bundle.index["previous"]
            self.shadow = ShadowStage({current: self.runtime.engine, prev: shadow.engine},
                                      current, prev, config=MonitorConfig.from_dict(monitor or {}),
                                      on_switch=self._rolled_back)
        self._current = self.bundle.index["current"] if self.bundle is not None else None

    def _load_learner(self) -> Any:
        from tsforge.models.base import load_forecaster

        assert self.bundle is not None
        if self.bundle.learner_path is None:
            raise ArtifactError(
                f"bundle {self.bundle.root} version {self.bundle.index['current']} carries no "
                "online learner; on-device adaptation needs an esn, rtrl or uoro (cell 'rnn') "
                "model exported with `tsforge export ... --bundle OUT`"
            )
        return load_forecaster(self.bundle.learner_path)

    @property
    def horizon(self) -> int:
        return self.runtime.horizon

    @property
    def interval_levels(self) -> tuple[float, ...]:
        return self.runtime.interval_levels

    @property
    def serving(self) -> str:
        """Which version answers: the bundle folder name, or the artifact path."""
        if self.bundle is None:
            return str(self.runtime.artifact.path)
        return self.shadow.champion if self.shadow is not None else str(self._current)

    @property
    def rolled_back(self) -> bool:
        return self.shadow is not None and self.shadow.champion != self._current

    def push(self, sensor: str, y: float, x: Any = None) -> Forecast:
        """Serve one reading; return the served model's forecast (with intervals if on)."""
        drifting = self._watch_drift(sensor, y)
        if self.shadow is None:
            out = self.runtime.push_with_intervals(sensor, y, x)
            if self.drift is not None:
                self.drift.record([sensor], out.mean[:1])
            return out
        self.runtime._check_covariates(x)
        row = np.empty((1, self.runtime.artifact.n_channels))
        row[0, 0] = y
        row[0, 1:] = np.zeros(0) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
        res = self.shadow.serve([sensor], row, drift=[drifting])
        for _, s, event in res.events:
            self.events.append({"event": event.kind, "sensor": s, **event.to_dict()})
            if event.kind == "rollback" and self._persisted:
                self.events[-1]["persisted"] = True
        if not np.isfinite(res.mean[0]).all():
            raise DataError("first reading of a sensor is not finite; cannot impute without "
                            "history")
        if self.drift is not None:
            self.drift.record([sensor], res.mean[:, 0])
        return as_forecast(res.mean[0], res.half[0], self.shadow.active.levels)

    def _rolled_back(self, event: Any) -> None:
        """Record a rollback in ``bundle.json`` (with ``persist_rollback``)."""
        self._persisted = False
        if event.kind == "rollback" and self.persist_rollback:
            assert self.bundle is not None
            self.bundle.index = layout.promote_previous(self.bundle.root,
                                                        {"reason": event.reason})
            self._persisted = True

    def _watch_drift(self, sensor: str, y: float) -> bool:
        """Feed the reading's residual to the sensor's detector; True when it fires."""
        if self.drift is None:
            return False
        alarms = self.drift.update([sensor], [float(y)])
        for alarm in alarms:
            self.events.append({"event": "drift", "sensor": sensor, "detector": "river ADWIN",
                                "residual": alarm.value, "alarms": self.drift.alarms})
        return bool(alarms)

    def save(self) -> dict[str, Any]:
        """Write the learner as a new bundle version (refused after a rollback)."""
        from tsforge.runtime.writeback import save_adapted

        if self.bundle is None or self.runtime.learner is None:
            raise ConfigError("saving needs a bundle served with adapt=True (--adapt)")
        if self.rolled_back:
            raise ConfigError("the adapted model was rolled back; it is not written as a version")
        index = save_adapted(self.bundle, self.runtime)
        self.bundle.index = index
        event = {"event": "saved", "version": index["current"],
                 "readings_learned": self.runtime.learned}
        self.runtime.learned = 0
        self.events.append(event)
        return event


def _compatible(a: Any, b: Any) -> bool:
    """Whether two artifacts can shadow each other (same horizon and inputs)."""
    return a.horizon == b.horizon and a.n_channels == b.n_channels
