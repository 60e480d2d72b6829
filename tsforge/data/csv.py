"""Read factory CSV exports (wide or long layout) and pandas objects into a SensorFrame."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.data.frame import SensorFrame
from tsforge.data.timestamps import parse_timestamps
from tsforge.errors import ConfigError, DataError
from tsforge.optional import require

TIME_NAMES = ("timestamp", "time", "datetime", "date", "ts", "date_time")
LAYOUTS = ("auto", "wide", "long")


def _sniff_separator(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        head = fh.readline()
    counts = {sep: head.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _time_column(columns: list[str], time_col: str | None, source: str) -> str:
    if time_col is not None:
        if time_col not in columns:
            raise DataError(f"{source}: no time column '{time_col}'; columns are {columns}")
        return time_col
    for c in columns:
        if c.strip().lower() in TIME_NAMES:
            return c
    return columns[0]


def _to_float(df: Any, name: str, source: str) -> np.ndarray:
    """A value column as float64; empty and NaN tokens become NaN, other text is an error."""
    pl = require("polars", "reading CSV files")
    col = df[name]
    if col.dtype.is_numeric():
        return col.cast(pl.Float64).to_numpy().astype(np.float64)
    text = col.cast(pl.Utf8).str.strip_chars()
    num = text.cast(pl.Float64, strict=False)
    bad = num.is_null() & text.is_not_null() & (text != "") & ~text.str.to_lowercase().is_in(
        ["nan", "na", "null", "none"])
    if bad.any():
        i = int(bad.arg_true()[0])
        raise DataError(
            f"{source}: column '{name}', line {i + 2}: {text[i]!r} is not a number. "
            "Clean the cell, or pass columns=[...] (CLI: --columns) to skip the column."
        )
    return num.fill_null(float("nan")).to_numpy().astype(np.float64)


def read_csv(path: str | Path, *, time_col: str | None = None, layout: str = "auto",
             sensor_col: str = "sensor", value_col: str = "value",
             time_format: str | None = None, separator: str | None = None,
             columns: list[str] | None = None) -> SensorFrame:
    """Read a CSV export into a :class:`SensorFrame`, rows in file order, unvalidated.

    Wide layout: ``timestamp, s1, s2, …``.  Long layout: ``timestamp, sensor, value``
    (chosen automatically when ``sensor_col`` and ``value_col`` exist).  Run
    :func:`tsforge.data.prepare` afterwards to repair and resample.
    """
    pl = require("polars", "reading CSV files")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout '{layout}' unknown; valid: {', '.join(LAYOUTS)}")
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError(f"{source}: file not found; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    sep = separator or _sniff_separator(path)
    try:
        df = pl.read_csv(path, separator=sep, infer_schema_length=10000, encoding="utf8-lossy",
                         try_parse_dates=False)
    except Exception as exc:  # polars raises several exception types for malformed files
        raise DataError(f"{source}: not a readable CSV ({exc}). Check the separator and "
                        "quoting, or pass separator=") from exc
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    if df.height == 0:
        raise DataError(f"{source}: the file has a header but no rows")
    return _from_polars(df, source, time_col, layout, sensor_col, value_col, time_format,
                        columns)


def _from_polars(df: Any, source: str, time_col: str | None, layout: str, sensor_col: str,
                 value_col: str, time_format: str | None,
                 columns: list[str] | None) -> SensorFrame:
    pl = require("polars", "reading CSV files")
    tcol = _time_column(df.columns, time_col, source)
    long = layout == "long" or (layout == "auto" and sensor_col in df.columns
                                and value_col in df.columns)
    if long:
        missing = [c for c in (sensor_col, value_col) if c not in df.columns]
        if missing:
            raise DataError(f"{source}: long layout needs columns {missing}; found {df.columns}")
        time = parse_timestamps(df[tcol], time_format=time_format, source=source, column=tcol)
        values = _to_float(df, value_col, source)
        names = df[sensor_col].cast(pl.Utf8).to_numpy()
        sensors = list(dict.fromkeys(names.tolist()))
        if columns:
            sensors = [s for s in sensors if s in columns]
        # One row per distinct timestamp, in order of first appearance in the file.
        uniq, first_pos, inverse = np.unique(time, return_index=True, return_inverse=True)
        order = np.argsort(first_pos)
        row_of = np.empty(uniq.size, dtype=np.int64)
        row_of[order] = np.arange(uniq.size)
        col_of = {s: i for i, s in enumerate(sensors)}
        sel = np.array([n in col_of for n in names]) & np.isfinite(values)
        rows = row_of[inverse[sel]]
        cols = np.array([col_of[n] for n in names[sel]], dtype=np.int64)
        # Repeated (timestamp, sensor) pairs are averaged and counted, never overwritten.
        total = np.zeros((uniq.size, len(sensors)))
        count = np.zeros((uniq.size, len(sensors)))
        np.add.at(total, (rows, cols), values[sel])
        np.add.at(count, (rows, cols), 1.0)
        with np.errstate(invalid="ignore"):
            out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        merged = int(np.sum(np.maximum(count - 1, 0)))
        return SensorFrame(time=uniq[order], values=out, sensors=sensors, source=source,
                           merged_duplicates=merged)
    value_cols = [c for c in df.columns if c != tcol]
    if columns:
        unknown = [c for c in columns if c not in value_cols]
        if unknown:
            raise DataError(f"{source}: unknown columns {unknown}; valid: {value_cols}")
        value_cols = list(columns)
    if not value_cols:
        raise DataError(f"{source}: no sensor columns besides the time column '{tcol}'")
    time = parse_timestamps(df[tcol], time_format=time_format, source=source, column=tcol)
    values = np.column_stack([_to_float(df, c, source) for c in value_cols])
    return SensorFrame(time=time, values=values, sensors=value_cols, source=source)


def from_pandas(obj: Any, *, time_col: str | None = None, layout: str = "auto",
                sensor_col: str = "sensor", value_col: str = "value") -> SensorFrame:
    """A pandas DataFrame (wide or long; time in a column or the index) or Series."""
    pd = require("pandas", "reading pandas objects")
    pl = require("polars", "reading pandas objects")
    if isinstance(obj, pd.Series):
        obj = obj.to_frame(name=str(obj.name) if obj.name is not None else "value")
    if not isinstance(obj, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame or Series, got {type(obj).__name__}")
    df = obj.copy()
    if time_col is None and isinstance(df.index, pd.DatetimeIndex):
        idx = df.index
        if idx.tz is not None:
            idx = idx.tz_convert("UTC").tz_localize(None)
        df.index = idx
        time_col = str(df.index.name or "timestamp")
        df = df.reset_index(names=time_col)
    df.columns = [str(c) for c in df.columns]
    return _from_polars(pl.from_pandas(df), "<pandas>", time_col, layout, sensor_col,
                        value_col, None, None)


_FREQ = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)\s*$", re.IGNORECASE)
_UNIT_NS = {"ms": 10**6, "s": 10**9, "sec": 10**9, "min": 60 * 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9, "d": 86400 * 10**9}


def parse_freq(text: str) -> np.timedelta64:
    """``"5min"``, ``"1h"``, ``"15s"``, ``"250ms"``, ``"1d"`` to a timedelta."""
    m = _FREQ.match(text)
    if not m:
        raise ConfigError(f"frequency '{text}' not understood; examples: 15s, 5min, 1h, 1d")
    return np.timedelta64(int(float(m.group(1)) * _UNIT_NS[m.group(2).lower()]), "ns")
