"""Forecasting a poll's readings in batches through the torch-free ONNX runtime.

:class:`OnnxEngine` holds one :class:`~tsforge.runtime.StreamingRuntime` per
model group and maps each sensor to its group.  :meth:`OnnxEngine.step` takes a
whole :class:`~tsforge.connectors.base.ReadingBatch`, groups its rows by sensor
(keeping each sensor's arrival order) and serves each group with
:meth:`StreamingRuntime.push_series`: one onnxruntime call per time step for all
the group's sensors present in the poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsforge.connectors.base import ReadingBatch
from tsforge.errors import ConfigError, TsforgeError
from tsforge.runtime import StreamingRuntime
from tsforge.serve.models import ModelGroup

log = logging.getLogger("tsforge.serve")


@dataclass
class ForecastBlock:
    """Forecasts of a batch's readings, row for row.

    ``mean`` ``(n, H)``; ``half`` ``(n, L, H)`` conformal half-widths (NaN while a
    sensor's intervals warm up); ``version`` ``(n,)`` model version of each row.
    """

    mean: np.ndarray
    half: np.ndarray
    version: np.ndarray


class OnnxEngine:
    """Serve every group of ``groups`` (see :mod:`tsforge.serve.models`).

    Parameters
    ----------
    groups
        The exported models and their sensors.
    intervals
        Serve conformal intervals (as configured when the models were exported).
    monitor
        A :class:`~tsforge.monitor.MonitorConfig`: groups served from a registry
        that holds a previous version run it in shadow and roll back to it when
        the rule says so (:mod:`tsforge.serve.shadow`).  None: no shadow.
    """

    def __init__(self, groups: list[ModelGroup], *, intervals: bool = True,
                 monitor: Any = None) -> None:
        if not groups:
            raise ConfigError("no models to serve")
        self.groups = groups
        self.runtimes = {g.name: StreamingRuntime(g.onnx_path, intervals=intervals)
                         for g in groups}
        self.group_of: dict[str, str] = {}
        for g in groups:
            for sensor, chain in g.sensors.items():
                self.runtimes[g.name].add_sensor(sensor, chain)
                self.group_of[sensor] = g.name
        self.versions = {g.name: g.version for g in groups}
        first = next(iter(self.runtimes.values()))
        self.horizon = first.horizon
        self.levels = first.interval_levels
        self.channels = first.artifact.n_channels
        for name, rt in self.runtimes.items():
            if (rt.horizon, rt.artifact.n_channels) != (self.horizon, self.channels):
                raise ConfigError(
                    f"model group '{name}' has horizon {rt.horizon} and {rt.artifact.n_channels}"
                    f" channel(s), others {self.horizon} and {self.channels}; one worker "
                    "serves one horizon and one message layout")
        self._known = np.asarray(sorted(self.group_of))
        self.shadows: dict[str, Any] = {}
        self.switches: list[tuple[ModelGroup, ModelGroup, Any]] = []
        if monitor is not None:
            for g in groups:
                self._add_shadow(g, monitor, intervals)

    def _add_shadow(self, group: ModelGroup, config: Any, intervals: bool) -> None:
        """Run ``group``'s previous registry version in shadow, when it has one."""
        if group.registry is None:
            return
        from tsforge.registry import Registry
        from tsforge.serve.shadow import ShadowedGroup
        from tsforge.serve.versions import load_version

        registry = Registry(group.registry, create=False)
        previous = registry.previous
        if previous is None or previous == group.version:
            return
        try:
            prev = load_version(registry, group.name, previous)
        except TsforgeError as exc:  # serve on, without a rollback target
            log.warning("previous version not loaded; rollback disabled", extra={"fields": {
                "group": group.name, "previous": previous, "error": str(exc)}})
            return
        if not set(group.sensors) <= set(prev.sensors):
            log.warning("previous version does not serve every sensor; rollback disabled",
                        extra={"fields": {"group": group.name, "previous": previous}})
            return
        self.shadows[group.name] = ShadowedGroup(self.runtimes[group.name], group.version,
                                                 prev, registry, config, intervals=intervals)
        log.info("previous version in shadow", extra={"fields": {
            "group": group.name, "champion": group.version, "previous": previous}})

    @property
    def sensors(self) -> list[str]:
        return list(self.group_of)

    def knows(self, sensors: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``sensors`` this engine has a model for."""
        return np.isin(sensors, self._known)

    def version(self, sensor: str) -> str:
        return self.versions[self.group_of[sensor]]

    def step(self, batch: ReadingBatch) -> ForecastBlock:
        """Feed every reading of ``batch`` (known sensors only) and forecast after each."""
        n, H, L = len(batch), self.horizon, len(self.levels)
        mean = np.empty((n, H))
        half = np.full((n, L, H), np.nan)
        version = np.empty(n, dtype=object)
        if n == 0:
            return ForecastBlock(mean, half, version)
        names, inverse = np.unique(batch.sensor, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
        by_group: dict[str, list[tuple[str, np.ndarray]]] = {}
        for j, name in enumerate(names):
            rows = order[bounds[j]:bounds[j + 1]]
            by_group.setdefault(self.group_of[str(name)], []).append((str(name), rows))
        for group, members in by_group.items():
            if group in self.shadows:
                self._step_shadowed(group, members, batch, mean, half, version)
                continue
            means, halves = self.runtimes[group].push_series(
                [m[0] for m in members], [batch.values[m[1]] for m in members])
            for (_, rows), m, h in zip(members, means, halves):
                mean[rows] = m
                if L:
                    half[rows] = h
                version[rows] = self.versions[group]
        return ForecastBlock(mean, half, version)

    def _step_shadowed(self, group: str, members: list[tuple[str, np.ndarray]],
                       batch: ReadingBatch, mean: np.ndarray, half: np.ndarray,
                       version: np.ndarray) -> None:
        """Serve a shadowed group; a rollback applies from the reading that triggered it."""
        shadow = self.shadows[group]
        rows = np.concatenate([m[1] for m in members])
        pairs = np.concatenate([np.stack([np.full(len(m[1]), j), np.arange(len(m[1]))], 1)
                                for j, m in enumerate(members)])
        arrival = np.argsort(rows, kind="stable")
        means, halves, switch = shadow.step([m[0] for m in members],
                                            [batch.values[m[1]] for m in members],
                                            pairs[arrival])
        old = self.versions[group]
        for (_, r), m, h in zip(members, means, halves):
            mean[r] = m
            if len(self.levels):
                half[r] = h
            version[r] = old
        if switch is not None:
            self._switch(group, shadow)
            version[rows[arrival[switch:]]] = self.versions[group]

    def _switch(self, group: str, shadow: Any) -> None:
        """Serve the previous version of ``group`` from now on (a rollback)."""
        old = next(g for g in self.groups if g.name == group)
        new = shadow.previous
        self.groups = [new if g.name == group else g for g in self.groups]
        self.runtimes[group] = shadow.guard.previous
        self.versions[group] = new.version
        del self.shadows[group]
        self.switches.append((old, new, shadow.event))

    def take_switches(self) -> list[tuple[ModelGroup, ModelGroup, Any]]:
        """Rollbacks since the last call: ``(old group, new group, monitor event)``."""
        out, self.switches = self.switches, []
        return out

    def sensor_state(self, sensor: str) -> dict[str, np.ndarray]:
        return self.runtimes[self.group_of[sensor]].sensor_state_dict(sensor)

    def load_sensor_state(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        self.runtimes[self.group_of[sensor]].load_sensor_state_dict(sensor, state)

    def drop_sensor(self, sensor: str) -> None:
        group = self.group_of[sensor]
        self.runtimes[group].drop_sensor(sensor)
        if group in self.shadows:
            self.shadows[group].guard.previous.drop_sensor(sensor)
