"""One edge deployment: a verified bundle served per reading, with rollback and adaptation.

:class:`EdgeService` ties the pieces together for ``tsforge-edge run``:

- the current version's :class:`~tsforge.runtime.streaming.StreamingRuntime`;
- the previous version in its shadow and a :class:`~tsforge.runtime.rollback.RollbackGuard`
  whose monitor switches serving back to it when the live errors say so (and, with
  ``persist_rollback``, records the switch in ``bundle.json`` so a restart keeps it);
- with ``adapt``, the bundle's online learner serving and learning for its sensor,
  and :meth:`save` writing what it learned as a new bundle version;
- where river is installed, per-sensor drift detectors on the served residuals
  (:mod:`tsforge.runtime.drift`), reported as events and passed to the monitor.

A plain ``model.onnx`` (with its manifest) is served too, without rollback or adaptation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsforge.errors import ArtifactError, ConfigError
from tsforge.models.base import Forecast
from tsforge.runtime import bundle as layout
from tsforge.runtime.drift import drift_watch
from tsforge.runtime.rollback import RollbackGuard
from tsforge.runtime.streaming import StreamingRuntime


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
        self.drift = drift_watch(drift)
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
        self.guard = None
        if shadow is not None:
            from tsforge.monitor import MonitorConfig

            assert self.bundle is not None
            names = (self.bundle.index["current"], self.bundle.index["previous"])
            self.guard = RollbackGuard(self.runtime, shadow, names,
                                       MonitorConfig.from_dict(monitor or {}))

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
        return str(self.guard.active.artifact.path.parent.name if self.guard is not None
                   else self.bundle.index["current"])

    def push(self, sensor: str, y: float, x: Any = None) -> Forecast:
        """Serve one reading; return the served model's forecast (with intervals if on)."""
        drifting = self._watch_drift(sensor, y)
        if self.guard is None:
            return self.runtime.push_with_intervals(sensor, y, x)
        seen = len(self.guard.events)
        triggered = self.guard.observe(sensor, y, drift=drifting)
        self.runtime.push(sensor, y, x)
        self.guard.previous.push(sensor, y, x)
        self.events += self.guard.events[seen:]
        if triggered and self.persist_rollback:
            assert self.bundle is not None
            self.bundle.index = layout.promote_previous(
                self.bundle.root, {"reason": self.events[-1]["reason"]})
            self.events[-1]["persisted"] = True
        return self.guard.active.forecast(sensor)

    def _watch_drift(self, sensor: str, y: float) -> bool:
        active = self.guard.active if self.guard is not None else self.runtime
        st = active.sensors.get(sensor)
        if self.drift is None or st is None or st.last_forecast is None:
            return False
        residual = float(y) - float(st.last_forecast[0])
        if not self.drift.update(sensor, residual):
            return False
        self.events.append({"event": "drift", "sensor": sensor, "detector": "river ADWIN",
                            "residual": residual, "alarms": self.drift.alarms})
        return True

    def save(self) -> dict[str, Any]:
        """Write the learner as a new bundle version (refused after a rollback)."""
        from tsforge.runtime.writeback import save_adapted

        if self.bundle is None or self.runtime.learner is None:
            raise ConfigError("saving needs a bundle served with adapt=True (--adapt)")
        if self.guard is not None and self.guard.rolled_back:
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
