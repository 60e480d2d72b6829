"""Drift alarms on the device, only where river is installed (never an edge requirement).

Each sensor gets its own river ``ADWIN`` on the absolute one-step residual of the
served model (the reading minus the forecast issued before it).  An alarm is an
event for the operator and, when a previous version is kept, a ``drift`` signal to
the rollback monitor (which raises an alarm but needs the paired errors to roll
back).  Without river, :func:`drift_watch` returns None and nothing is watched.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np


class DriftWatch:
    """Per-sensor river detectors of the served model's absolute residuals."""

    def __init__(self, drift_module: Any, detector: str = "ADWIN") -> None:
        self._module, self._name = drift_module, detector
        self.detectors: dict[str, Any] = {}
        self.alarms = 0

    def update(self, sensor: str, residual: float) -> bool:
        """Feed one residual of ``sensor``; return True when its detector fires."""
        if not np.isfinite(residual):
            return False
        det = self.detectors.get(sensor)
        if det is None:
            det = self.detectors[sensor] = getattr(self._module, self._name)()
        det.update(abs(float(residual)))
        fired = bool(det.drift_detected)
        self.alarms += fired
        return fired


def drift_watch(enabled: bool = True) -> DriftWatch | None:
    """A :class:`DriftWatch` when river is importable and ``enabled``, else None."""
    if not enabled:
        return None
    try:
        module = importlib.import_module("river.drift")
    except ImportError:
        return None
    return DriftWatch(module)
