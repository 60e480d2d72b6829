"""Vectorised timestamp parsing: ISO-8601 (with or without zone), epoch s/ms, strftime."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.optional import require

#: Numeric timestamps at or above this are epoch milliseconds, below it epoch seconds.
#: 1e11 s is the year 5138; 1e11 ms is 1973-03-03, so real data is never ambiguous.
EPOCH_MS_THRESHOLD = 1e11


def parse_timestamps(values: Any, *, time_format: str | None = None, source: str = "<memory>",
                     column: str = "timestamp") -> np.ndarray:
    """Parse a column of timestamps to naive UTC ``datetime64[ns]``.

    Numbers are epoch seconds or milliseconds (see :data:`EPOCH_MS_THRESHOLD`);
    strings are ISO-8601 or follow ``time_format``.  Offsets such as ``+01:00``
    and ``+02:00`` in one column (daylight saving) are converted to UTC.
    """
    pl = require("polars", "parsing timestamps")
    s = values if isinstance(values, pl.Series) else pl.Series(column, values)
    if s.dtype.is_numeric():
        arr = s.cast(pl.Float64).to_numpy()
        if np.isnan(arr).any():
            line = int(np.flatnonzero(np.isnan(arr))[0]) + 2
            raise DataError(f"{source}: empty timestamp in column '{column}' at line {line}")
        unit_ms = np.nanmedian(np.abs(arr)) >= EPOCH_MS_THRESHOLD
        ns = np.round(arr * (1e6 if unit_ms else 1e9)).astype(np.int64)
        return ns.astype("datetime64[ns]")
    if s.dtype == pl.Datetime or s.dtype == pl.Date:
        out = s.cast(pl.Datetime("ns"))
        if getattr(s.dtype, "time_zone", None):
            out = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("ns"))
        return out.to_numpy().astype("datetime64[ns]")
    s = s.cast(pl.Utf8).str.strip_chars()
    try:
        if time_format:
            parsed = s.str.strptime(pl.Datetime("ns"), time_format, strict=False)
        elif s.drop_nulls().len() and not _ISO.match(s.drop_nulls()[0]):
            # 31/12/2018 and its relatives: never guess day- or month-first silently
            parsed = _parse_regional(s, pl, source, column)
            if parsed.is_null().all():
                parsed = _parse_iso(s, pl)
        else:
            parsed = _parse_iso(s, pl)
    except pl.exceptions.PolarsError as exc:
        first = s.drop_nulls()[0] if s.drop_nulls().len() else None
        raise DataError(
            f"{source}: cannot parse the timestamps of column '{column}' (first value "
            f"{first!r}){'' if not time_format else f' with time format {time_format!r}'}. "
            "Pass --time-format (Python: time_format=), e.g. '%d/%m/%Y %H:%M' for day-first "
            "dates, or --time COL if this is not the time column."
        ) from exc
    if parsed.dtype.time_zone if hasattr(parsed.dtype, "time_zone") else False:
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    bad = parsed.is_null() & s.is_not_null()
    if bad.any() or s.is_null().any():
        i = int((bad | s.is_null()).arg_true()[0])
        hint = "" if time_format else " Pass time_format (e.g. --time-format '%d/%m/%Y %H:%M')."
        raise DataError(
            f"{source}: cannot parse timestamp {s[i]!r} in column '{column}' at line {i + 2}."
            + hint
        )
    return parsed.cast(pl.Datetime("ns")).to_numpy().astype("datetime64[ns]")


_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}")
#: Regional layouts tried when a column is not ISO-8601: day-first and month-first dates
#: with ``/``, ``.`` or ``-``.  A column that parses both ways (every day <= 12) is read
#: the way whose timestamps step regularly; when both step alike it needs ``time_format``.
REGIONAL_FORMATS = tuple(
    f"{d}{sep}{m}{sep}%Y{t}"
    for d, m in (("%d", "%m"), ("%m", "%d"))
    for sep in ("/", ".", "-")
    for t in (" %H:%M:%S", " %H:%M", "")
)


def _distinct_steps(parsed: Any) -> int:
    """How many different steps (backwards ones included) lie between the timestamps."""
    ns = parsed.drop_nulls().cast(require("polars", "parsing timestamps").Int64).to_numpy()
    return int(np.unique(np.diff(ns)).size)


def _parse_regional(s: Any, pl: Any, source: str, column: str) -> Any:
    """``31/12/2018 23:45`` and its relatives (see :data:`REGIONAL_FORMATS`)."""
    fits = []
    for fmt in REGIONAL_FORMATS:
        parsed = s.str.strptime(pl.Datetime("ns"), fmt, strict=False)
        if not (parsed.is_null() & s.is_not_null()).any():
            fits.append((fmt, parsed))
    if len(fits) > 1:
        # both readings parse: keep the one whose clock ticks regularly, if only one does
        steps = [_distinct_steps(parsed) for _, parsed in fits]
        best = min(steps)
        if steps.count(best) == 1:
            return fits[steps.index(best)][1]
        raise DataError(
            f"{source}: the dates of column '{column}' (first {s[0]!r}) read both day-first and "
            f"month-first; pass --time-format '{fits[0][0]}' or '{fits[-1][0]}'")
    return fits[0][1] if fits else pl.Series(s.name, [None] * s.len(), dtype=pl.Datetime("ns"))


def _parse_iso(s: Any, pl: Any) -> Any:
    """ISO strings: zone-aware ones go to UTC, naive ones stay naive."""
    has_zone = s.str.contains(r"(Z|[+-]\d{2}:?\d{2})$").fill_null(False)
    if has_zone.any():
        aware = s.str.to_datetime(time_zone="UTC", strict=False, time_unit="ns")
        if has_zone.all():
            return aware
        naive = s.str.to_datetime(strict=False, time_unit="ns")
        aware = aware.dt.replace_time_zone(None)
        return pl.select(pl.when(has_zone).then(aware).otherwise(naive)).to_series()
    return s.str.to_datetime(strict=False, time_unit="ns")
