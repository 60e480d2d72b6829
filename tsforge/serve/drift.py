"""Drift alarms in the service: river detectors on each sensor's readings and residuals.

For every sensor, each detector of ``[drift] detectors`` watches each signal of
``[drift] signals``: ``"input"`` (the reading) and ``"residual"`` (the reading
minus the one-step forecast issued before it).  An alarm increments
``tsforge_drift_alarms_total{sensor, detector}`` and is logged.  ``[drift]
params`` holds per-detector keyword arguments, e.g. ``{adwin = {delta = 0.001}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tsforge.connectors.base import ReadingBatch
from tsforge.errors import ConfigError
from tsforge.optional import require
from tsforge.pipeline.spec import DriftSpec
from tsforge.serve.engine import ForecastBlock

log = logging.getLogger("tsforge.serve")

DETECTORS = {"adwin": "ADWIN", "page_hinkley": "PageHinkley", "kswin": "KSWIN"}
SIGNALS = ("input", "residual")


class DriftWatch:
    """Per-sensor river drift detectors fed from each poll's readings and forecasts."""

    def __init__(self, spec: DriftSpec, metrics: Any = None) -> None:
        for name in spec.detectors:
            if name not in DETECTORS:
                raise ConfigError(f"[drift] detectors: {name!r} is not valid; valid values: "
                                  f"{', '.join(DETECTORS)}")
        for sig in spec.signals:
            if sig not in SIGNALS:
                raise ConfigError(f"[drift] signals: {sig!r} is not valid; valid values: "
                                  f"{', '.join(SIGNALS)}")
        self.spec = spec
        self.metrics = metrics
        # Import now: a first import inside the poll loop can outlast max_poll_interval_ms.
        self._drift = require("river.drift", "drift detection in the service")
        self.detectors: dict[tuple[str, str, str], Any] = {}
        self.last_forecast: dict[str, float] = {}
        self.alarms = 0

    def _detector(self, sensor: str, signal: str, name: str) -> Any:
        key = (sensor, signal, name)
        det = self.detectors.get(key)
        if det is None:
            det = getattr(self._drift, DETECTORS[name])(**self.spec.params.get(name, {}))
            self.detectors[key] = det
        return det

    def update(self, batch: ReadingBatch, block: ForecastBlock) -> int:
        """Feed every reading of ``batch``; return the number of alarms raised."""
        raised = 0
        ys = batch.values[:, 0].tolist()
        next_step = block.mean[:, 0].tolist() if len(batch) else []
        for sensor, y, f in zip(batch.sensor.tolist(), ys, next_step):
            signals = {}
            if "input" in self.spec.signals:
                signals["input"] = y
            prev = self.last_forecast.get(sensor)
            if "residual" in self.spec.signals and prev is not None and np.isfinite(prev):
                signals["residual"] = y - prev
            self.last_forecast[sensor] = f
            for signal, value in signals.items():
                for name in self.spec.detectors:
                    det = self._detector(sensor, signal, name)
                    det.update(value)
                    if det.drift_detected:
                        raised += 1
                        if self.metrics is not None:
                            self.metrics.drift_alarms.labels(sensor, f"{name}:{signal}").inc()
                        log.info("drift alarm", extra={"fields": {
                            "sensor": sensor, "detector": name, "signal": signal}})
        self.alarms += raised
        return raised
