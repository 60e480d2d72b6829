"""Drift detection on inputs and forecast residuals with river's detectors.

``RiverDetector`` wraps ADWIN, Page-Hinkley and KSWIN behind one small protocol;
``DriftMonitor`` watches one sensor's input and residual signals and logs
:class:`Alarm` objects.  river is imported when the first detector is built.
"""

from tsforge.drift.base import SIGNALS, Alarm, DriftDetector
from tsforge.drift.detectors import DEFAULTS, RiverDetector, make_detector, parse_detectors
from tsforge.drift.monitor import DEFAULT_DETECTORS, DriftMonitor, scan

__all__ = ["DEFAULTS", "DEFAULT_DETECTORS", "SIGNALS", "Alarm", "DriftDetector", "DriftMonitor",
           "RiverDetector", "make_detector", "parse_detectors", "scan"]
