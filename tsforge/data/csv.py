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


#: Column names (lower case) that hold event labels, not readings: SKAB's ``anomaly`` and
#: ``changepoint``, and the usual names of labelled benchmark files.
LABEL_NAMES = ("anomaly", "anomalies", "changepoint", "label", "labels", "is_anomaly",
               "anomaly_label", "fault", "attack")
_NULL_TOKENS = ["", "nan", "na", "null", "none"]


def _numbers(df: Any, name: str) -> tuple[np.ndarray, Any]:
    """A column as float64 plus a boolean Series: cells that hold text other than a number."""
    pl = require("polars", "reading CSV files")
    col = df[name]
    if col.dtype.is_numeric():
        return col.cast(pl.Float64).to_numpy().astype(np.float64), pl.Series([False] * len(col))
    text = col.cast(pl.Utf8).str.strip_chars()
    num = text.cast(pl.Float64, strict=False)
    bad = (num.is_null() & text.is_not_null()
           & ~text.str.to_lowercase().is_in(_NULL_TOKENS)).fill_null(False)
    return num.fill_null(float("nan")).to_numpy().astype(np.float64), bad


def _to_float(df: Any, name: str, source: str) -> np.ndarray:
    """A value column as float64; empty and NaN tokens become NaN, other text is an error."""
    values, bad = _numbers(df, name)
    if bad.any():
        i = int(bad.arg_true()[0])
        text = df[name].cast(require("polars", "reading CSV files").Utf8).str.strip_chars()[i]
        raise DataError(
            f"{source}: column '{name}', line {i + 2}: {text!r} is not a number. "
            "Clean the cell, or pass columns=[...] (CLI: --columns) to skip the column."
        )
    return values


def _is_text(df: Any, name: str) -> bool:
    """True for a column of words (``Weekday``, ``Light_Load``): no cell holds a number."""
    values, bad = _numbers(df, name)
    return bool(bad.any()) and not bool(np.isfinite(values).any())


_UNIT_SUFFIX = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]{1,12})\s*[\])]\s*$")
#: Unit words recognised at the end of a column name after ``_`` (``Usage_kWh``).
KNOWN_UNITS = ("kWh", "MWh", "Wh", "kW", "MW", "W", "kVarh", "kVar", "kVA", "V", "kV", "A",
               "mA", "Hz", "rpm", "bar", "mbar", "psi", "Pa", "kPa", "degC", "degF", "C", "F",
               "K", "pct", "mm", "m3h", "lpm", "tCO2")


def guess_units(names: list[str]) -> dict[str, str]:
    """Units written in column names: ``Temperature [°C]``, ``CO2(tCO2)``, ``Usage_kWh``.

    Names without a recognisable unit get none (a plot then shows no unit rather than
    a wrong one).
    """
    out = {}
    for name in names:
        m = _UNIT_SUFFIX.match(name)
        if m and m.group(1):
            out[name] = m.group(2).strip()
            continue
        tail = name.rsplit("_", 1)
        if len(tail) == 2 and tail[0] and tail[1] in KNOWN_UNITS:
            out[name] = tail[1]
    return out


def _header(path: Path, sep: str) -> list[str]:
    """The header cells of a CSV file (BOM and blanks stripped)."""
    pl = require("polars", "reading CSV files")
    try:
        head = pl.read_csv(path, separator=sep, n_rows=0, encoding="utf8-lossy")
    except Exception as exc:  # polars raises several exception types for malformed files
        raise _unreadable(path, exc) from exc
    return [c.lstrip("\ufeff").strip() for c in head.columns]


def header_columns(path: str | Path, separator: str | None = None) -> list[str]:
    """The column names of a CSV file, read from its header only."""
    path = Path(path)
    return _header(path, separator or _sniff_separator(path))


def _unreadable(path: Path, exc: Exception) -> DataError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"{path}: not a readable CSV ({first}). Check that every quote is closed "
                     "and the separator is right: pass --separator ';' (Python: "
                     "separator=';') if the file is not comma-separated.")


def read_csv(path: str | Path, *, time_col: str | None = None, layout: str = "auto",
             sensor_col: str = "sensor", value_col: str = "value",
             time_format: str | None = None, separator: str | None = None,
             columns: list[str] | None = None, units: dict[str, str] | None = None,
             labels: list[str] | None = None) -> SensorFrame:
    """Read a CSV export into a :class:`SensorFrame`, rows in file order, unvalidated.

    Wide layout: ``timestamp, s1, s2, …``.  Long layout: ``timestamp, sensor, value``
    (chosen automatically when ``sensor_col`` and ``value_col`` exist).  Run
    :func:`tsforge.data.prepare` afterwards to repair and resample.

    Only the time column and the wanted ``columns`` are parsed, so text columns
    elsewhere in the file (a weekday, a load type) never get in the way.  Without
    ``columns``, text columns are skipped and listed in ``frame.skipped``; label
    columns (:data:`LABEL_NAMES`, or those named in ``labels``) are kept out of the
    sensors in ``frame.labels``.  ``units`` maps sensors to their unit for plots
    and tables (merged over units written in the column names, see
    :func:`guess_units`).
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
    names = _header(path, sep)
    tcol = _time_column(names, time_col, source)
    long = layout == "long" or (layout == "auto" and sensor_col in names and value_col in names)
    if long:
        needed = [tcol, sensor_col, value_col]
    elif columns:
        unknown = [c for c in columns if c not in names or c == tcol]
        if unknown:
            raise DataError(f"{source}: unknown columns {unknown}; valid: "
                            f"{[c for c in names if c != tcol]}")
        needed = [tcol, *columns]
    else:
        needed = names
    idx = [names.index(c) for c in dict.fromkeys(needed) if c in names]
    try:
        df = pl.read_csv(path, separator=sep, infer_schema_length=10000, encoding="utf8-lossy",
                         try_parse_dates=False, columns=idx)
    except Exception as exc:  # polars raises several exception types for malformed files
        raise _unreadable(path, exc) from exc
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    if df.height == 0:
        raise DataError(f"{source}: the file has a header but no rows")
    return _from_polars(df, source, time_col, layout, sensor_col, value_col, time_format,
                        columns, units=units, labels=labels)


def _from_polars(df: Any, source: str, time_col: str | None, layout: str, sensor_col: str,
                 value_col: str, time_format: str | None,
                 columns: list[str] | None, units: dict[str, str] | None = None,
                 labels: list[str] | None = None) -> SensorFrame:
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
                           merged_duplicates=merged,
                           units={**guess_units(sensors), **(units or {})})
    value_cols = [c for c in df.columns if c != tcol]
    skipped: list[str] = []
    label_cols: list[str] = []
    if columns:
        unknown = [c for c in columns if c not in value_cols]
        if unknown:
            raise DataError(f"{source}: unknown columns {unknown}; valid: {value_cols}")
        value_cols = list(columns)
    else:
        wanted_labels = set(labels or ())
        label_cols = [c for c in value_cols
                      if c in wanted_labels or c.strip().lower() in LABEL_NAMES]
        skipped = [c for c in value_cols if c not in label_cols and _is_text(df, c)]
        value_cols = [c for c in value_cols if c not in label_cols and c not in skipped]
    if not value_cols:
        extra = f" (text columns skipped: {skipped})" if skipped else ""
        raise DataError(f"{source}: no sensor columns besides the time column '{tcol}'{extra}")
    time = parse_timestamps(df[tcol], time_format=time_format, source=source, column=tcol)
    values = np.column_stack([_to_float(df, c, source) for c in value_cols])
    return SensorFrame(time=time, values=values, sensors=value_cols, source=source,
                       units={**guess_units(value_cols), **(units or {})},
                       labels={c: _numbers(df, c)[0] for c in label_cols}, skipped=skipped)


def _library(obj: Any) -> str:
    """``"pandas"``, ``"polars"`` or ``""`` for the DataFrame/Series ``obj``."""
    module = type(obj).__module__.split(".")[0]
    return module if module in ("pandas", "polars") else ""


def from_pandas(obj: Any, *, time_col: str | None = None, layout: str = "auto",
                sensor_col: str = "sensor", value_col: str = "value",
                units: dict[str, str] | None = None) -> SensorFrame:
    """A pandas DataFrame (wide or long; time in a column or the index) or Series."""
    pd = require("pandas", "reading pandas objects")
    pl = require("polars", "reading pandas objects")
    if _library(obj) == "polars":
        raise DataError("from_pandas got a polars DataFrame: use tsforge.data.from_polars "
                        "(or tsforge.data.from_frame, which takes either)")
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
    return _from_polars(_pandas_to_polars(df, pl), "<pandas>", time_col, layout, sensor_col,
                        value_col, None, None, units=units)


def _pandas_to_polars(df: Any, pl: Any) -> Any:
    """Column by column through numpy, so that text columns need no pyarrow."""
    cols = []
    for name in df.columns:
        col = df[name]
        if col.dtype.kind in "biufM":
            values = col.to_numpy()
            if col.dtype.kind == "M":
                values = values.astype("datetime64[ns]")
            cols.append(pl.Series(name, values))
        elif str(col.dtype).startswith("datetime64"):  # tz-aware: to naive UTC
            cols.append(pl.Series(name, col.dt.tz_convert("UTC").dt.tz_localize(None)
                                  .to_numpy().astype("datetime64[ns]")))
        else:
            cols.append(pl.Series(name, [None if v is None or v != v else str(v)
                                         for v in col.tolist()], dtype=pl.Utf8))
    return pl.DataFrame(cols)


def from_polars(df: Any, *, time_col: str | None = None, layout: str = "auto",
                sensor_col: str = "sensor", value_col: str = "value",
                time_format: str | None = None, columns: list[str] | None = None,
                units: dict[str, str] | None = None) -> SensorFrame:
    """A polars DataFrame (wide ``timestamp, s1, s2, …`` or long ``timestamp, sensor,
    value``) as a :class:`SensorFrame`; the same rules as :func:`read_csv`."""
    pl = require("polars", "reading polars DataFrames")
    if _library(df) == "pandas":
        raise DataError("from_polars got a pandas object: use tsforge.data.from_pandas "
                        "(or tsforge.data.from_frame, which takes either)")
    if isinstance(df, pl.Series):
        df = df.to_frame()
    if not isinstance(df, pl.DataFrame):
        raise DataError(f"expected a polars DataFrame, got {type(df).__name__}")
    if df.height == 0:
        raise DataError("<polars>: the DataFrame has no rows")
    return _from_polars(df, "<polars>", time_col, layout, sensor_col, value_col, time_format,
                        columns, units=units)


def from_frame(obj: Any, **kwargs: Any) -> SensorFrame:
    """A pandas or polars DataFrame (or Series) as a :class:`SensorFrame`."""
    if _library(obj) == "polars":
        return from_polars(obj, **kwargs)
    if _library(obj) == "pandas":
        return from_pandas(obj, **kwargs)
    raise DataError(f"expected a pandas or polars DataFrame, got {type(obj).__name__}")


_FREQ = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)\s*$", re.IGNORECASE)
_UNIT_NS = {"ms": 10**6, "s": 10**9, "sec": 10**9, "min": 60 * 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9, "d": 86400 * 10**9}


def parse_freq(text: str) -> np.timedelta64:
    """``"5min"``, ``"1h"``, ``"15s"``, ``"250ms"``, ``"1d"`` to a timedelta."""
    m = _FREQ.match(text)
    if not m:
        raise ConfigError(f"frequency '{text}' not understood; examples: 15s, 5min, 1h, 1d")
    return np.timedelta64(int(float(m.group(1)) * _UNIT_NS[m.group(2).lower()]), "ns")
