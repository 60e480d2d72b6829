"""Drift monitoring of one sensor: detectors on its input and on its forecast residuals.

:class:`DriftMonitor` feeds every configured detector with two signals per
reading, the (transformed) input value and the absolute one-step forecast error,
and turns each firing into an :class:`~tsforge.drift.base.Alarm`.  It keeps the
alarm log, the alarm rate per 1,000 readings, and calls listeners on each alarm
(a registry or a monitor subscribes with :meth:`DriftMonitor.subscribe`).

Persistence without pickles.  river's ADWIN keeps its buckets in a compiled
object that cannot be read back, so the monitor restarts its detectors every
``segment`` readings by design and keeps the values of the current segment.
:meth:`state` stores those values; :meth:`load_state` replays them into fresh
detectors, which then hold exactly the state the original had (river's detectors
are deterministic given their seed and input).  A restart therefore resumes
bit-for-bit, and the memory needed stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tsforge.drift.base import SIGNALS, Alarm
from tsforge.drift.detectors import DetectorSpec, RiverDetector, make_detector, parse_detectors
from tsforge.errors import ConfigError

#: Detectors per signal when none are configured.
DEFAULT_DETECTORS: dict[str, list[DetectorSpec]] = {
    "input": ["adwin", "page_hinkley"],
    "residual": ["adwin", "page_hinkley", "kswin"],
}

class DriftMonitor:
    """Detectors per signal for one sensor, with an alarm log.

    Parameters
    ----------
    sensor
        Sensor name written into every alarm.
    detectors
        Detector specs (``"adwin"``, ``{"kind": "kswin", "alpha": 1e-4}``) or a comma
        list, used on every signal; or a dict from signal to such specs.  None means
        :data:`DEFAULT_DETECTORS`: ADWIN and Page-Hinkley on the input, the same plus
        KSWIN on the residual (KSWIN runs a KS test per reading, ~0.2 ms, so it watches
        the signal that decides switches).
    signals
        Which signals are watched: ``("input", "residual")`` by default.
    segment
        Detectors restart every ``segment`` readings (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> mon = DriftMonitor("pump", detectors="page_hinkley", signals=("input",))
    >>> x = np.r_[np.zeros(300), np.full(300, 3.0)]
    >>> alarms = [a for v in x for a in mon.update(input=v)]
    >>> [(a.index, a.detector, a.signal) for a in alarms]
    [(317, 'page_hinkley', 'input')]
    """

    def __init__(
        self,
        sensor: str = "series",
        detectors: str | list[DetectorSpec] | dict[str, Any] | None = None,
        *,
        signals: Iterable[str] = SIGNALS,
        segment: int = 5000,
    ) -> None:
        self.sensor = sensor
        self.signals = tuple(signals)
        bad = [s for s in self.signals if s not in SIGNALS]
        if bad:
            raise ConfigError(f"unknown drift signal(s) {bad}; valid: {', '.join(SIGNALS)}")
        if detectors is None:
            detectors = dict(DEFAULT_DETECTORS)
        if isinstance(detectors, dict):
            bad = [s for s in detectors if s not in SIGNALS]
            if bad:
                raise ConfigError(f"unknown drift signal(s) {bad} in the detector map; valid: "
                                  f"{', '.join(SIGNALS)}")
            self.specs = {s: parse_detectors(detectors.get(s, [])) for s in self.signals}
        else:
            specs = parse_detectors(detectors)
            self.specs = {s: specs for s in self.signals}
        if segment < 100:
            raise ConfigError(f"drift monitor segment must be >= 100 readings, got {segment}")
        self.segment = int(segment)
        self._listeners: list[Callable[[Alarm], None]] = []
        self.reset()

    def reset(self) -> None:
        """Fresh detectors, empty log, reading counter at 0."""
        self.detectors: dict[str, list[RiverDetector]] = {
            s: [make_detector(spec) for spec in self.specs[s]] for s in self.signals}
        self.alarms: list[Alarm] = []
        self.n_seen = 0
        self._segment_values: dict[str, list[float]] = {s: [] for s in self.signals}

    def subscribe(self, listener: Callable[[Alarm], None]) -> None:
        """Call ``listener(alarm)`` on every future alarm."""
        self._listeners.append(listener)

    def update(self, *, input: float | None = None, residual: float | None = None,
               timestamp: str | None = None) -> list[Alarm]:
        """Feed one reading's signals; return the alarms it raised.

        ``residual`` is the signed one-step error; detectors see its absolute value
        (a worse or better fitting model both move it).  A signal given as None or
        non-finite is skipped for this reading (never fed to a detector).
        """
        if self.n_seen and self.n_seen % self.segment == 0:
            self._restart_detectors()
        values = {"input": input, "residual": None if residual is None else abs(residual)}
        raised = []
        for signal in self.signals:
            value = values[signal]
            if value is None or not np.isfinite(value):
                continue
            self._segment_values[signal].append(float(value))
            raised += self._feed(signal, float(value), timestamp)
        self.n_seen += 1
        for alarm in raised:
            self.alarms.append(alarm)
            for listener in self._listeners:
                listener(alarm)
        return raised

    def _feed(self, signal: str, value: float, timestamp: str | None) -> list[Alarm]:
        raised = []
        for det in self.detectors[signal]:
            det.update(value)
            if det.drift_detected:
                name, stat = det.statistic()
                raised.append(Alarm(index=self.n_seen, sensor=self.sensor, detector=det.kind,
                                    signal=signal, statistic=stat, statistic_name=name,
                                    timestamp=timestamp, extra=det.extra()))
        return raised

    def _restart_detectors(self) -> None:
        for signal in self.signals:
            for det in self.detectors[signal]:
                det.reset()
            self._segment_values[signal] = []

    # ------------------------------------------------------------------ summaries
    def count(self, signal: str | None = None, since: int = 0) -> int:
        """Alarms on ``signal`` (None: all) raised at reading index >= ``since``."""
        return sum(1 for a in self.alarms
                   if a.index >= since and (signal is None or a.signal == signal))

    def rate_per_1k(self, signal: str | None = None) -> float:
        """Alarms per 1,000 readings watched so far (0 before the first reading)."""
        return 1000.0 * self.count(signal) / self.n_seen if self.n_seen else 0.0

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        """JSON-serialisable state: counter, alarm log and the current segment's values."""
        return {"n_seen": self.n_seen, "alarms": [a.to_dict() for a in self.alarms],
                "segment_values": {s: list(v) for s, v in self._segment_values.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`: replay the segment into fresh detectors."""
        self.reset()
        for signal in self.signals:
            for value in state["segment_values"].get(signal, []):
                self._segment_values[signal].append(float(value))
                for det in self.detectors[signal]:
                    det.update(value)
        self.alarms = [Alarm.from_dict(a) for a in state["alarms"]]
        self.n_seen = int(state["n_seen"])


def scan(values: np.ndarray, sensor: str = "series",
         detectors: str | list[DetectorSpec] | dict[str, Any] | None = None,
         residuals: np.ndarray | None = None,
         timestamps: Iterable[Any] | None = None) -> DriftMonitor:
    """Run a :class:`DriftMonitor` over a whole recorded series (and optional residuals).

    Returns the monitor; its ``alarms`` are the log and :meth:`DriftMonitor.rate_per_1k`
    the rates.  Used for the warm-up drift rate of a regime profile and by
    ``tsforge analyze``.
    """
    values = np.asarray(values, dtype=np.float64)
    signals = ("input", "residual") if residuals is not None else ("input",)
    mon = DriftMonitor(sensor, detectors, signals=signals)
    stamps = None if timestamps is None else [str(t) for t in timestamps]
    for i, v in enumerate(values):
        r = None if residuals is None else float(residuals[i])
        mon.update(input=float(v), residual=r,
                   timestamp=None if stamps is None else stamps[i])
    return mon
