"""Drift alarms on a recorded series, for the timeline of a study.

river's detectors (ADWIN, Page-Hinkley, KSWIN) watch two signals, as a production
monitor would: the readings themselves (has the process changed?) and the absolute
one-step forecast error of the picked model on the streamed part (has the model got
worse?).  Each signal is put on a unit scale first, learned causally from its
beginning (readings: the training part; errors: the first errors), so that one
detector setting suits a temperature in °C and a load in kW alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsforge.errors import ConfigError
from tsforge.optional import require

#: Detector name -> river class name (``river.drift``).
DETECTORS = {"adwin": "ADWIN", "page_hinkley": "PageHinkley", "kswin": "KSWIN"}
SIGNALS = ("input", "residual")
#: Errors used to set the scale of the residual signal.
RESIDUAL_SCALE_WARMUP = 200


@dataclass(frozen=True)
class DriftAlarm:
    """One alarm: which detector, on which signal, at which reading of the series."""

    detector: str
    signal: str
    index: int


@dataclass
class DriftTimeline:
    """Every alarm of a study's sensor, with the residual signal that was watched.

    Attributes
    ----------
    alarms
        In order of detector, then signal, then time.
    test_start
        First reading of the streamed part (residual alarms start there).
    residual
        The scaled absolute one-step errors fed to the detectors (None when the
        residual signal was not watched).
    """

    alarms: list[DriftAlarm] = field(default_factory=list)
    test_start: int = 0
    residual: np.ndarray | None = None

    def count(self, signal: str | None = None) -> int:
        """Number of alarms, on one signal or on all."""
        return sum(1 for a in self.alarms if signal is None or a.signal == signal)

    def to_dict(self) -> dict[str, Any]:
        return {"test_start": self.test_start,
                "alarms": [{"detector": a.detector, "signal": a.signal, "index": a.index}
                           for a in self.alarms]}


def make_detector(name: str, params: dict[str, Any] | None = None) -> Any:
    """A fresh river detector; ``params`` are its keyword arguments."""
    if name not in DETECTORS:
        raise ConfigError(f"drift detector '{name}' unknown; valid: {', '.join(DETECTORS)}")
    drift = require("river.drift", "drift detection")
    try:
        return getattr(drift, DETECTORS[name])(**(params or {}))
    except TypeError as exc:
        raise ConfigError(f"drift detector '{name}': {exc}; see river.drift."
                          f"{DETECTORS[name]} for its parameters") from exc


def run_detector(name: str, signal: np.ndarray, params: dict[str, Any] | None = None) -> list[int]:
    """Positions in ``signal`` where a fresh ``name`` detector raised an alarm."""
    det = make_detector(name, params)
    hits = []
    for i, v in enumerate(np.asarray(signal, dtype=np.float64)):
        det.update(float(v))
        if det.drift_detected:
            hits.append(i)
    return hits


def watch(y: np.ndarray, test_start: int, one_step: np.ndarray | None = None, *,
          detectors: list[str] | tuple[str, ...] = ("adwin", "page_hinkley"),
          signals: list[str] | tuple[str, ...] = SIGNALS,
          params: dict[str, dict[str, Any]] | None = None) -> DriftTimeline:
    """Run each detector over each signal of one sensor.

    Parameters
    ----------
    y
        The whole series (training part then streamed part).
    test_start
        Index of the first streamed reading.
    one_step
        One-step-ahead forecasts of the streamed part (``len(y) - test_start``), or
        None to watch the readings only.
    detectors, signals
        Names from :data:`DETECTORS` and :data:`SIGNALS`.
    params
        Per-detector keyword arguments, e.g. ``{"adwin": {"delta": 0.001}}``.
    """
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown:
        raise ConfigError(f"drift signal(s) {unknown} unknown; valid: {', '.join(SIGNALS)}")
    params = params or {}
    y = np.asarray(y, dtype=np.float64)
    streams: dict[str, tuple[np.ndarray, int]] = {}
    if "input" in signals:
        ref = y[: max(test_start, 2)]
        streams["input"] = ((y - ref.mean()) / (ref.std() or 1.0), 0)
    residual = None
    if "residual" in signals and one_step is not None:
        err = np.abs(y[test_start:] - np.asarray(one_step, dtype=np.float64))
        scale = float(np.mean(err[:RESIDUAL_SCALE_WARMUP])) or 1.0
        residual = err / scale
        streams["residual"] = (residual, test_start)
    alarms = []
    for name in detectors:
        for signal, (values, offset) in streams.items():
            for i in run_detector(name, values, params.get(name)):
                alarms.append(DriftAlarm(detector=name, signal=signal, index=offset + i))
    return DriftTimeline(alarms=alarms, test_start=test_start, residual=residual)
