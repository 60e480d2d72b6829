"""The Kafka worker's adapter to the serving engine: a poll's columns in, forecasts out.

:class:`OnnxEngine` holds one :class:`~tsforge.engine.GroupEngine` per model group
and maps each sensor to its group and its row in the group's arrays.
:meth:`OnnxEngine.step` takes a whole :class:`~tsforge.connectors.base.ReadingBatch`,
maps its sensor column to (group, index) with one ``np.unique``, and hands each
group's rows (in arrival order) to the engine: one onnxruntime call per time step
for all the group's sensors present in the poll.  Groups served from a registry
with a previous version go through the engine's shadow stage
(:mod:`tsforge.engine.shadow`), which rolls back when the monitor's rule says so.
Everything else here is transport: versions for the output keys, rollbacks for
the worker to log, per-sensor state for checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsforge.connectors.base import ReadingBatch
from tsforge.engine import GroupEngine
from tsforge.engine.aggregate import AggregateEngine, engine_for
from tsforge.errors import ConfigError, TsforgeError
from tsforge.runtime.artifact import load_model
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


def group_engine(group: ModelGroup, intervals: bool) -> GroupEngine | AggregateEngine:
    """An engine serving ``group``'s sensors, each with its own fitted chain(s): a
    :class:`GroupEngine`, or an :class:`AggregateEngine` for an aggregate (``auto``)."""
    engine = engine_for(load_model(group.onnx_path), intervals=intervals,
                        capacity=max(16, len(group.sensors)))
    for sensor, chain in group.sensors.items():
        engine.add_sensor(sensor, chain)
    return engine


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
        the rule says so.  None: no shadow.
    """

    def __init__(self, groups: list[ModelGroup], *, intervals: bool = True,
                 monitor: Any = None) -> None:
        if not groups:
            raise ConfigError("no models to serve")
        self.groups = groups
        self.engines = {g.name: group_engine(g, intervals) for g in groups}
        self.group_of = {s: g.name for g in groups for s in g.sensors}
        self.versions = {g.name: g.version for g in groups}
        first = next(iter(self.engines.values()))
        self.horizon, self.levels, self.channels = first.H, first.levels, first.C
        for name, eng in self.engines.items():
            if (self.horizon, self.channels) != (eng.H, eng.C):
                raise ConfigError(
                    f"model group '{name}' has horizon {eng.H} and {eng.C} channel(s), others "
                    f"{self.horizon} and {self.channels}; one worker serves one horizon and "
                    "one message layout")
        self._known = np.asarray(sorted(self.group_of))
        self._group_names = list(self.engines)
        self.shadows: dict[str, Any] = {}
        self.switches: list[tuple[ModelGroup, ModelGroup, Any]] = []
        if monitor is not None:
            for g in groups:
                self._add_shadow(g, monitor, intervals)

    def _add_shadow(self, group: ModelGroup, config: Any, intervals: bool) -> None:
        """Run ``group``'s previous registry version in shadow, when it has one."""
        if group.registry is None:
            return
        from tsforge.engine.shadow import ShadowStage
        from tsforge.registry import Registry
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
        stage = ShadowStage({group.version: self.engines[group.name],
                             prev.version: group_engine(prev, intervals)},
                            group.version, prev.version, config=config,
                            on_switch=lambda event: _record(registry, event))
        stage.groups = {group.version: group, prev.version: prev}
        self.shadows[group.name] = stage
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
        mean = np.full((n, H), np.nan)
        half = np.full((n, L, H), np.nan)
        version = np.empty(n, dtype=object)
        if n == 0:
            return ForecastBlock(mean, half, version)
        names, inverse = np.unique(batch.sensor, return_inverse=True)
        groups = [self.group_of[s] for s in names.tolist()]
        gid = np.asarray([self._group_names.index(g) for g in groups])[inverse]
        # each sensor's row in its group's arrays, looked up once per distinct sensor
        pos = np.asarray([self.engines[g].index[s] for g, s in zip(groups, names.tolist())],
                         dtype=np.intp)[inverse]
        for k, group in enumerate(self._group_names):
            rows = np.flatnonzero(gid == k)
            if not rows.size:
                continue
            values = batch.values[rows]
            if group in self.shadows:
                res = self.shadows[group].serve(batch.sensor[rows].tolist(), values,
                                                timestamps=batch.ts[rows])
                mean[rows], half[rows], version[rows] = res.mean, res.half, res.version
                self._switched(group, res.events)
                continue
            res = self.engines[group].serve(pos[rows], values)
            mean[rows], half[rows] = res.mean, res.half
            version[rows] = self.versions[group]
        return ForecastBlock(mean, half, version)

    def _switched(self, group: str, events: list) -> None:
        """Serve the version a rollback switched to from now on; queue it for the worker."""
        stage = self.shadows[group]
        for _, _, event in events:
            if event.kind != "rollback":
                continue
            old, new = stage.groups[event.from_version], stage.groups[event.to_version]
            self.groups = [new if g.name == group else g for g in self.groups]
            self.engines[group] = stage.engines[event.to_version]
            self.versions[group] = new.version
            self.switches.append((old, new, event))
        if len(stage.engines) < 2:
            del self.shadows[group]

    def take_switches(self) -> list[tuple[ModelGroup, ModelGroup, Any]]:
        """Rollbacks since the last call: ``(old group, new group, monitor event)``."""
        out, self.switches = self.switches, []
        return out

    def _engines_of(self, sensor: str) -> list[GroupEngine]:
        group = self.group_of[sensor]
        stage = self.shadows.get(group)
        return list(stage.engines.values()) if stage is not None else [self.engines[group]]

    def sensor_state(self, sensor: str) -> dict[str, np.ndarray]:
        eng = self.engines[self.group_of[sensor]]
        return eng.state_dict(eng.sensor_index(sensor))

    def load_sensor_state(self, sensor: str, state: dict[str, np.ndarray]) -> None:
        eng = self.engines[self.group_of[sensor]]
        eng.load_state_dict(eng.sensor_index(sensor), state)

    def drop_sensor(self, sensor: str) -> None:
        for eng in self._engines_of(sensor):
            i = eng.index.get(sensor)
            if i is not None:
                eng.reset(i)


def _record(registry: Any, event: Any) -> None:
    """Write a rollback to the registry; a refusal is logged, serving goes on."""
    if event.kind != "rollback":
        return
    try:
        registry.apply(event)
    except TsforgeError as exc:
        log.error("registry refused the rollback; serving the previous version from memory",
                  extra={"fields": {"registry": str(registry.root), "to": event.to_version,
                                    "error": str(exc)}})


class KafkaDrift:
    """The engine's drift stage for the worker: alarms as metrics and log lines.

    ``[drift] detectors`` watch each sensor's ``[drift] signals`` (see
    :mod:`tsforge.engine.drift`); an alarm increments
    ``tsforge_drift_alarms_total{sensor, detector}`` and is logged.
    """

    def __init__(self, spec: Any, metrics: Any = None) -> None:
        from tsforge.engine.drift import DriftStage

        self.stage = DriftStage(spec.detectors, spec.signals, spec.params)
        self.metrics = metrics

    @property
    def alarms(self) -> int:
        return self.stage.alarms

    def update(self, batch: ReadingBatch, block: ForecastBlock) -> int:
        """Feed every reading of ``batch``; return the number of alarms raised."""
        alarms = self.stage.update(batch.sensor.tolist(), batch.values[:, 0],
                                   block.mean[:, 0] if len(batch) else None)
        for a in alarms:
            if self.metrics is not None:
                self.metrics.drift_alarms.labels(a.sensor, f"{a.detector}:{a.signal}").inc()
            log.info("drift alarm", extra={"fields": {
                "sensor": a.sensor, "detector": a.detector, "signal": a.signal}})
        return len(alarms)
