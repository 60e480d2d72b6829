"""Drift alarms on a recorded series, for the timeline of a study.

A :class:`tsforge.drift.DriftMonitor` (river's ADWIN, Page-Hinkley, KSWIN) watches the
two signals the production monitor watches: the reading after the sensor's transform
chain (has the process changed?) and the one-step forecast error of the picked model
on the streamed part (has the model got worse?).  The chain is fitted on the training
part only, and the error is divided by its mean over the first streamed readings, so
both signals are on a unit scale and one detector setting suits a temperature in °C
and a load in kW alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsforge.drift import Alarm, DriftMonitor
from tsforge.preprocess.transforms import TransformChain

#: Errors used to set the scale of the residual signal.
RESIDUAL_SCALE_WARMUP = 200


@dataclass
class DriftTimeline:
    """Every alarm of one sensor over its whole series.

    Attributes
    ----------
    alarms
        :class:`tsforge.drift.Alarm` in time order; ``index`` counts readings of the
        whole series (training part first).
    test_start
        First reading of the streamed part (residual alarms start there).
    residual
        The scaled absolute one-step errors the detectors watched (None when the
        residual signal was not watched).
    """

    alarms: list[Alarm] = field(default_factory=list)
    test_start: int = 0
    residual: np.ndarray | None = None

    def count(self, signal: str | None = None) -> int:
        """Number of alarms, on one signal or on all."""
        return sum(1 for a in self.alarms if signal is None or a.signal == signal)

    def to_dict(self) -> dict[str, Any]:
        return {"test_start": self.test_start, "alarms": [a.to_dict() for a in self.alarms]}


def detector_specs(names: list[str], params: dict[str, Any] | None = None) -> list[Any]:
    """``[adwin, ...]`` plus ``{"adwin": {"delta": 0.001}}`` -> monitor detector specs."""
    params = params or {}
    return [{"kind": n, **params[n]} if isinstance(params.get(n), dict) else n for n in names]


def watch(y: np.ndarray, test_start: int, one_step: np.ndarray | None = None, *,
          transforms: list[dict[str, Any]] | None = None,
          detectors: list[str] | tuple[str, ...] = ("adwin", "page_hinkley"),
          signals: list[str] | tuple[str, ...] = ("input", "residual"),
          params: dict[str, Any] | None = None, sensor: str = "series",
          time: np.ndarray | None = None) -> DriftTimeline:
    """Run the drift monitor over one sensor's whole series.

    Parameters
    ----------
    y
        The whole series (training part then streamed part), engineering units.
    test_start
        Index of the first streamed reading.
    one_step
        One-step-ahead forecasts of the streamed part (``len(y) - test_start``), or
        None to watch the readings only.
    transforms
        The sensor's transform chain spec (fitted here on the training part); None
        or empty: the readings standardised by the training part.
    detectors, params
        Detector kinds and per-kind river parameters, e.g. ``{"adwin": {"delta": 1e-3}}``.
    signals
        ``"input"`` and/or ``"residual"``.
    sensor, time
        Written into every alarm (time as ISO text).
    """
    y = np.asarray(y, dtype=np.float64)
    train = y[: max(test_start, 2)]
    chain = TransformChain.from_spec(list(transforms or []) or [{"kind": "scale"}]).fit(train)
    z = chain.transform(y)
    residual = None
    err = np.full(y.size, np.nan)
    if one_step is not None:
        e = y[test_start:] - np.asarray(one_step, dtype=np.float64)
        scale = float(np.mean(np.abs(e[:RESIDUAL_SCALE_WARMUP]))) or 1.0
        err[test_start:] = e / scale
        residual = np.abs(err[test_start:])
    watched = tuple(s for s in signals if s != "residual" or one_step is not None)
    monitor = DriftMonitor(sensor, detector_specs(list(detectors), params), signals=watched)
    stamps = None
    if time is not None and np.asarray(time).dtype.kind == "M":
        stamps = np.datetime_as_string(np.asarray(time), unit="s")
    for i in range(y.size):
        monitor.update(input=float(z[i]), residual=float(err[i]),
                       timestamp=None if stamps is None else str(stamps[i]))
    alarms = sorted(monitor.alarms, key=lambda a: a.index)
    return DriftTimeline(alarms=alarms, test_start=test_start,
                         residual=residual if "residual" in watched else None)
