"""The drift-detector protocol and the alarm it raises.

A detector sees one number per reading (``update``) and says whether the
distribution it watches has just changed (``drift_detected``).  tsforge does not
implement change detection itself: :mod:`tsforge.drift.detectors` wraps river's
ADWIN, Page-Hinkley and KSWIN behind this protocol and adds what a pipeline needs
on top, the statistic that made the detector fire.  An :class:`Alarm` records one
firing with where it happened (reading index and timestamp), on which sensor, by
which detector and on which signal (the model's ``"input"`` or its one-step
``"residual"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

#: The signals a :class:`~tsforge.drift.monitor.DriftMonitor` watches.
SIGNALS = ("input", "residual")


class DriftDetector(Protocol):
    """What a change detector offers (river's ``base.DriftDetector`` has the same shape).

    Attributes
    ----------
    kind
        Detector name, e.g. ``"adwin"``.
    drift_detected
        True right after the ``update`` on which the detector fired.
    """

    kind: str
    drift_detected: bool

    def update(self, value: float) -> None:
        """Feed one value."""

    def statistic(self) -> tuple[str, float]:
        """Name and value of the test statistic behind the last decision."""

    def reset(self) -> None:
        """Forget everything seen (a fresh detector of the same configuration)."""


@dataclass(frozen=True)
class Alarm:
    """One drift alarm.

    Attributes
    ----------
    index
        Reading index at which the detector fired (0 = first reading it watched).
    sensor
        Sensor (series) name.
    detector
        Detector kind (``"adwin"``, ``"page_hinkley"``, ``"kswin"``).
    signal
        ``"input"`` (the transformed reading) or ``"residual"`` (absolute one-step error).
    statistic
        Value of the test statistic when it fired (see ``statistic_name``).
    statistic_name
        What ``statistic`` is, e.g. ``"window mean"``, ``"PH statistic"``, ``"KS p-value"``.
    timestamp
        Time of the reading as an ISO string, or None when the stream has no clock.
    """

    index: int
    sensor: str
    detector: str
    signal: str
    statistic: float
    statistic_name: str
    timestamp: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alarm:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)

    def describe(self) -> str:
        """One line for logs: ``'reading 512 (2016-07-22T08:00): adwin on residual, ...'``."""
        when = f"reading {self.index}" + (f" ({self.timestamp})" if self.timestamp else "")
        return (f"{when}: {self.detector} on {self.signal} of '{self.sensor}', "
                f"{self.statistic_name} {self.statistic:.4g}")
