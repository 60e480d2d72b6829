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

Readings of a shadowed group are served one onnxruntime call per reading and
version instead of the batched path, so groups without a registry (or without a
previous version) pay nothing for this.
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
        self.known = set(previous.sensors)
        self.guard = RollbackGuard(current, shadow, (current_version, previous.version), config)
        self.event: MonitorEvent | None = None

    def push(self, sensor: str, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Score, then feed one reading to both versions.

        Returns the served forecast ``(H,)``, its half-widths ``(L, H)`` and whether
        this reading triggered the rollback (the forecast is then the previous
        version's already).
        """
        value = np.atleast_1d(np.asarray(value, dtype=np.float64))
        shadowed = sensor in self.known
        triggered = False
        if shadowed:
            n_events = len(self.guard.monitor.events)
            triggered = self.guard.observe(sensor, float(value[0]))
            if triggered:
                self.event = next(e for e in self.guard.monitor.events[n_events:]
                                  if e.kind == "rollback")
                self._record(self.event)
        mean, half = self.guard.current.push_series([sensor], [value[None]])
        if shadowed:
            p_mean, p_half = self.guard.previous.push_series([sensor], [value[None]])
            if self.guard.rolled_back:
                mean, half = p_mean, p_half
        return mean[0][0], half[0][0], triggered

    def _record(self, event: MonitorEvent) -> None:
        """Write the rollback to the registry; a refusal is logged, serving goes on."""
        try:
            self.registry.apply(event)
        except TsforgeError as exc:
            log.error("registry refused the rollback; serving the previous version from "
                      "memory", extra={"fields": {"registry": str(self.registry.root),
                                                  "to": event.to_version, "error": str(exc)}})
