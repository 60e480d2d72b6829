"""Forecasting a poll's readings in batches through the torch-free ONNX runtime.

:class:`OnnxEngine` holds one :class:`~tsforge.runtime.StreamingRuntime` per
model group and maps each sensor to its group.  :meth:`OnnxEngine.step` takes a
whole :class:`~tsforge.connectors.base.ReadingBatch`, groups its rows by sensor
(keeping each sensor's arrival order) and serves each group with
:meth:`StreamingRuntime.push_series`: one onnxruntime call per time step for all
the group's sensors present in the poll.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsforge.connectors.base import ReadingBatch
from tsforge.errors import ConfigError
from tsforge.runtime import StreamingRuntime
from tsforge.serve.models import ModelGroup


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
    """

    def __init__(self, groups: list[ModelGroup], *, intervals: bool = True) -> None:
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
            means, halves = self.runtimes[group].push_series(
                [m[0] for m in members], [batch.values[m[1]] for m in members])
            for (_, rows), m, h in zip(members, means, halves):
                mean[rows] = m
                if L:
                    half[rows] = h
                version[rows] = self.versions[group]
        return ForecastBlock(mean, half, version)

    def sensor_state(self, sensor: str) -> dict[str, np.ndarray]:
        return self.runtimes[self.group_of[sensor]].sensor_state_dict(sensor)

    def load_sensor_state(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        self.runtimes[self.group_of[sensor]].load_sensor_state_dict(sensor, state)

    def drop_sensor(self, sensor: str) -> None:
        rt = self.runtimes[self.group_of[sensor]]
        rt.drop_sensor(sensor)
