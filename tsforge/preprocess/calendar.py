"""Calendar covariates from timestamps: hour of day and day of week as sine/cosine.

Factory loads follow the shift plan: the hour of the day and the day of the week
explain what a window of recent readings cannot (a Monday morning start after a
quiet weekend).  Each cycle is given as a (sin, cos) pair, so 23:00 sits next to
00:00 and a linear map of the pair at time t gives the pair at t + h.  A cycle is
included only when the data resolves it (sampling step well below the cycle) and
spans two of them; an irregular or too short series gets none.

The covariates are known ahead (they depend on the clock only), so a streaming
model given the values at the current reading has all it needs; the edge runtime
and the Kafka service compute the same columns from each reading's timestamp with
:func:`calendar_row`.
"""

from __future__ import annotations

import numpy as np

from tsforge.errors import DataError

DAY = 86_400.0
WEEK = 7 * DAY
#: (name, cycle length in seconds, offset in seconds from the Unix epoch to the cycle's
#: start).  1970-01-01 was a Thursday: the week starts on Monday, 4 days later.
CYCLES = (("hour_of_day", DAY, 0.0), ("day_of_week", WEEK, 4 * DAY))


def calendar_cycles(time: np.ndarray) -> list[str]:
    """The cycles the timestamps resolve and span twice (subset of :data:`CYCLES`)."""
    t = _seconds(time)
    if t.size < 3:
        return []
    steps = np.diff(t)
    steps = steps[steps > 0]
    if steps.size == 0:
        return []
    step, span = float(np.median(steps)), float(t[-1] - t[0])
    return [name for name, length, _ in CYCLES if step <= length / 4 and span >= 2 * length]


def calendar_features(time: np.ndarray, cycles: list[str] | None = None
                      ) -> tuple[np.ndarray, list[str]]:
    """Sine/cosine columns ``(T, 2 * len(cycles))`` and their names.

    Parameters
    ----------
    time
        ``datetime64`` timestamps (naive: the plant's local clock, as read).
    cycles
        Names from :data:`CYCLES`; None picks :func:`calendar_cycles` of ``time``.

    Examples
    --------
    >>> t = np.arange("2024-01-01", "2024-01-16", dtype="datetime64[h]")
    >>> X, names = calendar_features(t)
    >>> names
    ['hour_of_day_sin', 'hour_of_day_cos', 'day_of_week_sin', 'day_of_week_cos']
    >>> X[0].round(3).tolist()  # Monday 00:00
    [0.0, 1.0, 0.0, 1.0]
    """
    t = _seconds(time)
    chosen = calendar_cycles(time) if cycles is None else list(cycles)
    known = {name: (length, offset) for name, length, offset in CYCLES}
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise DataError(f"unknown calendar cycle(s) {unknown}; valid: {list(known)}")
    columns, names = [], []
    for name in chosen:
        length, offset = known[name]
        phase = 2 * np.pi * np.mod(t - offset, length) / length
        columns += [np.sin(phase), np.cos(phase)]
        names += [f"{name}_sin", f"{name}_cos"]
    X = np.column_stack(columns) if columns else np.zeros((t.size, 0))
    return X, names


def calendar_row(timestamp: np.datetime64, cycles: list[str]) -> np.ndarray:
    """The covariates of one reading: what a stream computes from its timestamp."""
    return calendar_features(np.array([timestamp], dtype="datetime64[ns]"), cycles)[0][0]


def _seconds(time: np.ndarray) -> np.ndarray:
    t = np.asarray(time)
    if not np.issubdtype(t.dtype, np.datetime64):
        raise DataError(f"calendar features need datetime64 timestamps, got {t.dtype}")
    return t.astype("datetime64[ns]").astype(np.int64) / 1e9
