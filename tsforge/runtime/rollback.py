"""On-device rollback: the previous version runs in the shadow and the monitor decides.

The bundle keeps the previous version; the runtime runs it beside the current one
(same readings, its own per-sensor state).  When a reading arrives, both models'
one-step forecasts made before it are scored and the paired errors go to the
library's :class:`~tsforge.monitor.Monitor` (numpy only), the same rule the
production service uses: roll back when the current version's windowed MAE is
worse than the previous one's by the configured margin, significantly, for
``patience`` consecutive readings.  Readings of all sensors feed one monitor, in
arrival order.  After a rollback the box serves the previous version; alarms and
holds are reported as events too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsforge.monitor import Monitor, MonitorConfig


class RollbackGuard:
    """Scores the current and the previous runtime on the live stream and applies the monitor.

    Parameters
    ----------
    current, previous
        :class:`~tsforge.runtime.streaming.StreamingRuntime` of each version.
    names
        Version names for the monitor and the events, e.g. ``("v0002", "v0001")``.
    config
        The monitor's rule (:class:`~tsforge.monitor.MonitorConfig`); its defaults
        when None.
    """

    def __init__(self, current: Any, previous: Any, names: tuple[str, str] = ("current",
                 "previous"), config: MonitorConfig | None = None) -> None:
        self.current, self.previous = current, previous
        self.names = names
        self.monitor = Monitor(names[0], previous=names[1], config=config)
        self.rolled_back = False
        self.rollback_event: Any = None  # the monitor's MonitorEvent that triggered it
        self.events: list[dict[str, Any]] = []

    @property
    def active(self) -> Any:
        """The runtime whose forecasts are served."""
        return self.previous if self.rolled_back else self.current

    def observe(self, sensor: str, y: float, timestamp: float | None = None,
                drift: bool = False) -> bool:
        """Score both pending one-step forecasts of ``sensor`` against ``y``.

        ``drift`` says a drift detector fired on this reading.  Returns True when
        this reading triggered the rollback.
        """
        if self.rolled_back or not np.isfinite(y):
            return False
        a, b = self.current.sensors.get(sensor), self.previous.sensors.get(sensor)
        if a is None or b is None or a.last_forecast is None or b.last_forecast is None:
            return False
        return self.observe_errors(sensor, float(a.last_forecast[0]) - y,
                                   float(b.last_forecast[0]) - y, timestamp, drift)

    def observe_errors(self, sensor: str, current: float, previous: float,
                       timestamp: float | None = None, drift: bool = False) -> bool:
        """Feed one reading's paired one-step errors (forecast - reading) of both versions.

        For callers that run the runtimes themselves (batched) and computed the
        errors; :meth:`observe` is this with the runtimes' pending forecasts.
        Returns True when this reading triggered the rollback.
        """
        if self.rolled_back:
            return False
        errors = {self.names[0]: current, self.names[1]: previous}
        triggered = False
        for event in self.monitor.observe(errors, timestamp=timestamp, drift=drift):
            self.events.append({"event": event.kind, "sensor": sensor, **event.to_dict()})
            if event.kind == "rollback":
                self.rolled_back = triggered = True
                self.rollback_event = event
        return triggered
