"""Drift as a stage of the engine: per-sensor river detectors fed each batch's readings.

For every sensor, each detector of ``detectors`` (``adwin``, ``page_hinkley``,
``kswin``: the library's :class:`~tsforge.drift.RiverDetector`, river's
implementations) watches each signal of ``signals``:

- ``input``: the reading;
- ``residual``: the reading minus the one-step forecast served before it;
- ``abs_residual``: its absolute value (what the edge box watches by default).

:meth:`DriftStage.update` takes a batch (sensor names, readings, and the one-step
forecasts served after each reading) in arrival order and returns the alarms;
the adapters turn them into metrics and logs (Kafka) or events and the
monitor's drift flag (edge).  river is needed only when a stage is built; the
edge box without river watches nothing (:func:`drift_stage`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsforge.errors import ConfigError

SIGNALS = ("input", "residual", "abs_residual")
DETECTORS = ("adwin", "page_hinkley", "kswin")


@dataclass(frozen=True)
class DriftAlarm:
    """A detector fired: row of the batch, sensor, detector kind, signal, value fed."""

    row: int
    sensor: str
    detector: str
    signal: str
    value: float


class DriftStage:
    """Per-sensor detectors (see the module docstring).

    ``params`` holds per-detector keyword arguments, e.g. ``{"adwin": {"delta": 0.001}}``.
    ``segment``: restart a sensor's detectors of a signal every that many values fed
    (as :class:`~tsforge.drift.DriftMonitor` does; 0: never).
    """

    def __init__(self, detectors: tuple[str, ...] | list[str] = ("adwin",),
                 signals: tuple[str, ...] | list[str] = ("residual",),
                 params: dict[str, dict[str, Any]] | None = None, segment: int = 0) -> None:
        for name in detectors:
            if name not in DETECTORS:
                raise ConfigError(f"drift detector {name!r} is not valid; valid values: "
                                  f"{', '.join(DETECTORS)}")
        for sig in signals:
            if sig not in SIGNALS:
                raise ConfigError(f"drift signal {sig!r} is not valid; valid values: "
                                  f"{', '.join(SIGNALS)}")
        from tsforge.drift import make_detector

        self.detectors, self.signals = tuple(detectors), tuple(signals)
        self.params = params or {}
        self._make = make_detector
        for name in self.detectors:  # import river now, not inside a poll loop
            self._make({"kind": name, **self.params.get(name, {})})
        # (sensor, signal) -> [values fed, [(detector kind, detector), ...]]: one dict
        # lookup per value fed
        self._watch: dict[tuple[str, str], list[Any]] = {}
        self.segment = int(segment)
        self.last_forecast: dict[str, float] = {}
        self.alarms = 0

    def _fresh(self) -> list[tuple[str, Any]]:
        """New detectors, as ``(kind, river detector)`` (fed directly, see
        :attr:`~tsforge.drift.detectors.RiverDetector.river`)."""
        return [(name, self._make({"kind": name, **self.params.get(name, {})}).river)
                for name in self.detectors]

    def _entry(self, key: tuple[str, str]) -> list[Any]:
        """``[values fed, detectors]`` of ``key`` = (sensor, signal), made at first use."""
        entry = self._watch.get(key)
        if entry is None:
            entry = self._watch[key] = [0, self._fresh()]
        return entry

    def update(self, sensors: list[str], y: np.ndarray,
               forecasts: np.ndarray | None = None) -> list[DriftAlarm]:
        """Feed readings ``y`` of ``sensors`` in order; return the alarms they raised.

        ``forecasts`` ``(n,)``: the one-step forecast served after each reading (the
        residual of a sensor's next reading is taken against it); None leaves them
        to :meth:`record`.  Non-finite values feed nothing.
        """
        out: list[DriftAlarm] = []
        last = self.last_forecast
        fc = None if forecasts is None else np.asarray(forecasts, dtype=np.float64).tolist()
        signals, segment, isfinite = self.signals, self.segment, math.isfinite
        watch = self._watch
        for r, (sensor, v) in enumerate(zip(sensors, np.asarray(y, dtype=np.float64).tolist())):
            prev = last.get(sensor)
            res = v - prev if prev is not None else math.nan
            for signal in signals:
                value = (abs(res) if signal == "abs_residual" else res if signal == "residual"
                         else v)
                if not isfinite(value):
                    continue
                entry = watch.get((sensor, signal)) or self._entry((sensor, signal))
                fed = entry[0]
                if segment and fed and fed % segment == 0:  # a new segment: fresh detectors
                    entry[1] = self._fresh()
                entry[0] = fed + 1
                for name, det in entry[1]:
                    det.update(value)
                    if det.drift_detected:
                        out.append(DriftAlarm(r, sensor, name, signal, value))
            if fc is not None:
                last[sensor] = fc[r]
        self.alarms += len(out)
        return out

    def replay(self, sensor: str, signal: str, values: Any) -> None:
        """Feed ``sensor``'s detectors of ``signal`` past values without raising alarms
        (a sensor that continues a history watched elsewhere, e.g. at export: the values
        since the last segment restart there, so the segment count continues)."""
        entry = self._entry((sensor, signal))
        for _, det in entry[1]:
            for v in values:
                det.update(float(v))
        entry[0] = len(values)

    def record(self, sensors: list[str], forecasts: np.ndarray) -> None:
        """The one-step forecasts served for ``sensors`` (when :meth:`update` had none)."""
        self.last_forecast.update(zip(sensors, np.asarray(forecasts, dtype=np.float64).tolist()))

    def forget(self, sensor: str) -> None:
        """Drop ``sensor``'s detectors and last forecast (it moved to another worker)."""
        self.last_forecast.pop(sensor, None)
        for key in [k for k in self._watch if k[0] == sensor]:
            del self._watch[key]


def drift_stage(enabled: bool = True, **settings: Any) -> DriftStage | None:
    """A :class:`DriftStage` when ``enabled`` and river is importable, else None."""
    if not enabled:
        return None
    try:
        import river.drift  # noqa: F401
    except ImportError:
        return None
    return DriftStage(**settings)
