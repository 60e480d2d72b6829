"""Serve the registry's champion on a stream with the monitor deciding promote/rollback.

:class:`MonitoredServing` runs the champion, the previous champion and an optional
shadow challenger side by side on the same stream through the serving engine's shadow
stage (:mod:`tsforge.engine.shadow`: ONNX, torch-free), which scores each one's
forecast of the next reading when it arrives and feeds the errors to a
:class:`~tsforge.monitor.Monitor`; this adapter applies its switch events to the
:class:`~tsforge.registry.Registry` and serves the forecast of whichever version is
champion after the reading.  Because every model keeps running on the whole stream, a
rollback serves exactly the forecasts the earlier model would have served alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsforge.errors import ArtifactError, TsforgeError
from tsforge.monitor.events import MonitorConfig, MonitorEvent

log = logging.getLogger("tsforge.monitor")


@dataclass
class ServingReport:
    """What :meth:`MonitoredServing.run` served and decided.

    ``forecasts[t]`` is the forecast (shape ``(H,)``) served after reading ``t`` and
    ``versions[t]`` the version that produced it.
    """

    forecasts: np.ndarray
    versions: list[str]
    events: list[MonitorEvent] = field(default_factory=list)

    def switches(self) -> list[MonitorEvent]:
        return [e for e in self.events if e.switches]


class MonitoredServing:
    """Champion + previous + shadow challenger of one sensor, with automatic switching.

    The library's adapter to the engine's shadow stage
    (:class:`~tsforge.engine.shadow.ShadowStage`): loads the versions from the
    registry and writes the monitor's decisions back to it.

    Parameters
    ----------
    registry
        The :class:`~tsforge.registry.Registry` naming champion and previous version;
        every model is loaded from it (checksums verified, ONNX only).
    sensor
        Sensor name passed to the engines (the exported sensor continues its state).
    challenger
        Version to run in shadow (promotion candidate), or None.
    config
        The monitor's rule.
    apply_to_registry
        Write promote/rollback decisions to the registry (True) or only serve them.
    """

    def __init__(self, registry: Any, sensor: str, *, challenger: str | None = None,
                 config: MonitorConfig | None = None, apply_to_registry: bool = True,
                 threads: int = 1) -> None:
        from tsforge.engine import GroupEngine
        from tsforge.engine.shadow import ShadowStage

        self.registry = registry
        self.sensor = sensor
        self.apply_to_registry = apply_to_registry
        champion = registry.champion
        if champion is None:
            raise ArtifactError(f"registry {registry.root} has no champion to serve; promote one")
        engines = {champion: GroupEngine(registry.load_artifact(champion, threads=threads))}
        previous = registry.previous
        if previous is not None:
            try:
                engines[previous] = GroupEngine(registry.load_artifact(previous, threads=threads))
            except ArtifactError as exc:  # serve on, without a rollback target
                log.warning("previous version %s not loaded, rollback disabled: %s",
                            previous, exc)
                previous = None
        if challenger is not None:
            engines[challenger] = GroupEngine(registry.load_artifact(challenger,
                                                                     threads=threads))
        self.stage = ShadowStage(engines, champion, previous, challenger, config,
                                 on_switch=self._apply, gaps=True)
        self.monitor = self.stage.monitor
        self._channels = engines[champion].C

    @property
    def champion(self) -> str:
        """The version whose forecasts are served now."""
        return self.monitor.champion

    def push(self, y: float, x: Any = None, *, drift: bool = False,
             timestamp: float | None = None) -> tuple[np.ndarray, list[MonitorEvent]]:
        """Score the pending forecasts on reading ``y``, decide, then forecast from it.

        Returns the served forecast and the monitor's events of this reading.
        """
        row = np.empty((1, self._channels))
        row[0, 0] = y
        row[0, 1:] = np.zeros(0) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
        res = self.stage.serve([self.sensor], row, drift=[drift],
                               timestamps=None if timestamp is None else [timestamp])
        return res.mean[0].copy(), [e for _, _, e in res.events]

    def run(self, ys: Any, xs: Any = None, *, drift: Any = None,
            timestamps: Any = None) -> ServingReport:
        """Serve a whole stream (arrays) and collect forecasts, versions and events."""
        ys = np.asarray(ys, dtype=np.float64)
        out, versions, events = [], [], []
        for t in range(ys.shape[0]):
            f, ev = self.push(ys[t], None if xs is None else xs[t],
                              drift=False if drift is None else bool(drift[t]),
                              timestamp=None if timestamps is None else float(timestamps[t]))
            out.append(f)
            versions.append(self.champion)
            events += ev
        return ServingReport(np.asarray(out), versions, events)

    def _apply(self, event: MonitorEvent) -> None:
        """Record the decision in the registry when asked (serving switches anyway).

        The switch itself uses models already loaded and verified at start, so a registry
        that refuses the write (stale event from another worker, a target tampered since)
        is logged as an error and never stops the stream.
        """
        if self.apply_to_registry:
            try:
                self.registry.apply(event)
            except TsforgeError as exc:
                log.error("registry refused %s to %s (%s); serving it from memory",
                          event.kind, event.to_version, exc)
        if event.kind == "rollback":
            earlier = self._registry_previous() if self.apply_to_registry else None
            if earlier in self.stage.engines and earlier != event.from_version:
                self.monitor.set_previous(earlier)  # only a model that ran on this stream
        log.info("serving %s after %s", self.monitor.champion, event.kind)

    def _registry_previous(self) -> str | None:
        try:
            return self.registry.previous
        except TsforgeError:
            return None
