"""Helpers shared by the sub-commands: data arguments, JSON options, intervals."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from tsforge.errors import ConfigError


def add_data_args(p: argparse.ArgumentParser, target: bool) -> None:
    """The CSV argument and the options that say how to read it."""
    p.add_argument("file",
                   help="CSV file (wide: timestamp,s1,s2,... or long: timestamp,sensor,value)")
    p.add_argument("--time", dest="time_col", metavar="COL",
                   help="timestamp column (auto-detected)")
    p.add_argument("--time-format", metavar="FMT",
                   help="strftime format if timestamps are unusual, e.g. '%%d/%%m/%%Y %%H:%%M'")
    p.add_argument("--columns", metavar="COLS", default="",
                   help="read only these sensor columns (comma-separated); other columns of the "
                   "file, text ones included, are never parsed")
    p.add_argument("--separator", metavar="SEP",
                   help="CSV separator (sniffed from the header: , ; or tab)")
    add_units_arg(p)
    if target:
        p.add_argument("--target", metavar="COL", help="column to forecast (default: first sensor)")
        p.add_argument("--covariates", metavar="COLS", default="",
                       help="comma-separated columns used as inputs (other sensors of the asset)")
    p.add_argument("--freq", default="auto",
                   help="resampling step, e.g. 5min, 1h; 'auto' = median step; 'none' = keep as is")
    add_progress_arg(p)


def add_units_arg(p: argparse.ArgumentParser) -> None:
    """``--units OT=°C,value=°F``: units for plot axes (also read from names like
    ``Usage_kWh`` or ``Temperature [°C]``)."""
    p.add_argument("--units", metavar="SENSOR=UNIT,...", default="",
                   help="units of the sensors for plots and tables, e.g. 'OT=°C,value=°F' "
                   "(units written in column names such as Usage_kWh are found by themselves)")


def pairs(text: str, flag: str, example: str) -> dict[str, str]:
    """``"OT=°C, value=°F"`` -> ``{"OT": "°C", "value": "°F"}``, naming ``flag`` in errors."""
    out = {}
    for item in split(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} item {item!r} must look like NAME=VALUE, e.g. {example}")
        out[key.strip()] = value.strip()
    return out


def units_arg(text: str) -> dict[str, str]:
    """The ``--units`` option as a mapping sensor -> unit."""
    return pairs(text, "--units", "OT=°C")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: progress is on by default (bars on a terminal, lines elsewhere)."""
    p.add_argument("--no-progress", action="store_true",
                   help="no progress output (default: bars on a terminal, one line per "
                   "finished stage in logs)")


def split(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]


def json_arg(text: str, flag: str) -> dict[str, Any]:
    """Parse a JSON-object option, naming the flag in the error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{flag} is not valid JSON ({exc}); example: '{{\"window\": 96}}'"
        ) from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object")
    return value


def interval_config(args: argparse.Namespace) -> Any:
    """The :class:`~tsforge.intervals.IntervalConfig` named by ``--levels`` and
    ``--interval-method`` (None for ``--levels none``)."""
    from tsforge.intervals import IntervalConfig

    if args.levels.strip().lower() == "none":
        return None
    try:
        levels = tuple(float(v) for v in split(args.levels))
    except ValueError:
        raise ConfigError(f"--levels must be numbers like 0.8,0.95 or 'none', got "
                          f"{args.levels!r}") from None
    return IntervalConfig(levels=levels, method=args.interval_method)


def load_prepared(args: argparse.Namespace) -> tuple[Any, Any]:
    """Read and validate the CSV named on the command line."""
    from tsforge.data import DataPolicy, prepare, read_csv

    wanted = split(args.columns)
    if getattr(args, "target", None):
        # the target and covariates are read even when --columns leaves them out
        wanted = wanted and list(dict.fromkeys([args.target, *split(args.covariates), *wanted]))
    frame = read_csv(args.file, time_col=args.time_col, time_format=args.time_format,
                     separator=args.separator, columns=wanted or None,
                     units=units_arg(args.units))
    freq = None if str(args.freq).lower() == "none" else args.freq
    return prepare(frame, DataPolicy(freq=freq))


def target_and_covariates(frame: Any, args: argparse.Namespace) -> tuple[str, list[str]]:
    """The target column and covariate columns named by ``--target``/``--covariates``."""
    from tsforge.errors import DataError

    target = args.target or frame.sensors[0]
    covariates = split(args.covariates)
    frame.column(target)
    for c in covariates:
        frame.column(c)
    if not np.isfinite(frame.column(target)).any():
        raise DataError(f"{frame.source}: sensor '{target}' holds no finite reading (every "
                        "value is empty or NaN); pick another --target")
    return target, covariates
