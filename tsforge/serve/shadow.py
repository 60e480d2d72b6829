"""The previous registry version in shadow, and automatic rollback, for one model group.

When a group is served from a registry (:mod:`tsforge.serve.versions`) that holds
a previous champion, :class:`ShadowedGroup` runs that version beside the
champion on the same readings (its own :class:`~tsforge.runtime.StreamingRuntime`
with its own per-sensor chains).  Each reading first scores both versions'
pending one-step forecasts through :class:`~tsforge.runtime.rollback.RollbackGuard`
(the rule of :class:`~tsforge.monitor.Monitor`, readings of all the group's
sensors in arrival order), then feeds both runtimes.  On a rollback the decision
is written to the registry (:meth:`~tsforge.registry.Registry.apply`, idempotent
across the workers of a consumer group) and the previous version is served from
that reading on; since it ran on the whole stream, its state is warm.

Both versions are fed each poll's readings in batched calls (one onnxruntime call
per time step and version); only the rule runs per reading.  Groups without a
registry (or without a previous version) pay nothing for this.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tsforge.errors import TsforgeError
from tsforge.monitor import MonitorConfig, MonitorEvent
from tsforge.registry import Registry
from tsforge.runtime import StreamingRuntime
from tsforge.runtime.rollback import RollbackGuard

log = logging.getLogger("tsforge.serve")


def _pending(runtime: StreamingRuntime, sensor: str) -> float | None:
    """The one-step forecast ``runtime`` issued last for ``sensor`` (None: none yet)."""
    st = runtime.sensors.get(sensor)
    return None if st is None or st.last_forecast is None else float(st.last_forecast[0])


class ShadowedGroup:
    """Champion runtime + previous version's runtime + the rollback rule.

    Parameters
    ----------
    current
        The champion's runtime (the engine's runtime of the group).
    current_version
        The champion's version name.
    previous
        The previous version's :class:`~tsforge.serve.models.ModelGroup`.
    registry
        The group's registry, where a rollback is recorded.
    config
        The monitor's rule (``[monitor] params``).
    intervals
        Serve conformal intervals from the previous version too.
    """

    def __init__(self, current: StreamingRuntime, current_version: str, previous: Any,
                 registry: Registry, config: MonitorConfig, *, intervals: bool) -> None:
        shadow = StreamingRuntime(previous.onnx_path, intervals=intervals)
        for sensor, chain in previous.sensors.items():
            shadow.add_sensor(sensor, chain)
        self.previous = previous
        self.registry = registry
        self.guard = RollbackGuard(current, shadow, (current_version, previous.version), config)
        self.event: MonitorEvent | None = None

    def step(self, sensors: list[str], values: list[np.ndarray], order: np.ndarray
             ) -> tuple[list[np.ndarray], list[np.ndarray], int | None]:
        """Serve a block of readings of the group (the shapes of ``push_series``).

        Both versions are fed the whole block in batched calls; then each reading's
        paired one-step errors (the forecasts each version issued before it) go to
        the rule in arrival order: ``order`` lists ``(j, t)`` pairs, reading ``t``
        of ``sensors[j]``, as an ``(n, 2)`` array.  Returns per sensor the served
        forecasts ``(T_j, H)`` and half-widths ``(T_j, L, H)``, and the position in
        ``order`` of the reading that triggered a rollback (None without one): from
        that reading on the previous version's forecasts are served.
        """
        guard = self.guard
        before = [(_pending(guard.current, s), _pending(guard.previous, s)) for s in sensors]
        c_mean, c_half = guard.current.push_series(sensors, values)
        p_mean, p_half = guard.previous.push_series(sensors, values)
        switch = None
        for k, (j, t) in enumerate(order.tolist()):
            y = float(values[j][t].reshape(-1)[0])
            fc = before[j][0] if t == 0 else c_mean[j][t - 1, 0]
            fp = before[j][1] if t == 0 else p_mean[j][t - 1, 0]
            if fc is None or fp is None or not np.isfinite(y):
                continue
            if guard.observe_errors(sensors[j], float(fc) - y, float(fp) - y):
                self.event = guard.rollback_event
                self._record(self.event)
                switch = k
                break
        if switch is None:
            return c_mean, c_half, None
        for j, t in order[switch:].tolist():  # served by the previous version from here
            c_mean[j][t] = p_mean[j][t]
            c_half[j][t] = p_half[j][t]
        return c_mean, c_half, switch

    def _record(self, event: MonitorEvent) -> None:
        """Write the rollback to the registry; a refusal is logged, serving goes on."""
        try:
            self.registry.apply(event)
        except TsforgeError as exc:
            log.error("registry refused the rollback; serving the previous version from "
                      "memory", extra={"fields": {"registry": str(self.registry.root),
                                                  "to": event.to_version, "error": str(exc)}})
