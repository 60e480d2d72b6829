"""Latency statistics in fixed memory: a log-spaced histogram of call durations.

A service runs for months; keeping every call's duration (as a list) grows
without bound.  :class:`LatencyHistogram` counts durations in 20 bins per
decade from 100 ns to 100 s (181 integers whatever the number of calls), so
a percentile is exact to within one bin (12 %).
"""

from __future__ import annotations

import math

import numpy as np

_PER_DECADE = 20
_LO = -7.0  # log10 of the lowest bin edge (100 ns)
_BINS = 9 * _PER_DECADE + 1  # up to 100 s, the last bin takes anything longer


class LatencyHistogram:
    """Counts of call durations in log-spaced bins (see the module docstring)."""

    def __init__(self) -> None:
        self._counts = [0] * _BINS
        self.count = 0
        self.total_s = 0.0

    def add(self, seconds: float) -> None:
        """Count one call of ``seconds``."""
        b = int((math.log10(seconds) - _LO) * _PER_DECADE) if seconds > 1e-7 else 0
        self._counts[min(b, _BINS - 1)] += 1
        self.count += 1
        self.total_s += seconds

    def percentile_us(self, q: float) -> float:
        """The ``q``-th percentile in microseconds (the geometric middle of its bin)."""
        if not self.count:
            return 0.0
        b = int(np.searchsorted(np.cumsum(self._counts), q / 100.0 * self.count))
        return 10 ** (_LO + (min(b, _BINS - 1) + 0.5) / _PER_DECADE) * 1e6

    @property
    def counts(self) -> np.ndarray:
        """Calls per bin (bin ``b`` spans ``10**(-7 + b/20)`` s to the next edge)."""
        return np.asarray(self._counts, dtype=np.int64)

    @property
    def mean_us(self) -> float:
        return self.total_s / self.count * 1e6 if self.count else 0.0
