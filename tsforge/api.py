"""DataFrames in, DataFrames out: :func:`forecast` for pandas and polars users.

A data scientist holds readings in a pandas or polars DataFrame, wide
(``timestamp, s1, s2, …``) or long (``timestamp, sensor, value``).  :func:`forecast`
reads it (:func:`tsforge.data.from_frame`), repairs it (:func:`tsforge.data.prepare`),
fits one model per sensor on the older readings, streams the newest ones through it
so that the online conformal intervals are calibrated on readings the model did
not train on, and returns the next ``horizon`` readings of every sensor as a
DataFrame of the same library: ``timestamp, sensor, step, mean, lower_80,
upper_80, lower_95, upper_95`` (one ``lower_/upper_`` pair per level).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tsforge import progress
from tsforge.errors import ConfigError, DataError
from tsforge.intervals import IntervalConfig


def level_name(level: float) -> str:
    """``0.8 -> "80"``, ``0.975 -> "97.5"``: the suffix of interval columns."""
    return f"{level * 100:g}"


def forecast(data: Any, *, horizon: int = 1, model: str = "auto",
             params: dict[str, Any] | None = None, sensors: Sequence[str] | None = None,
             levels: Sequence[float] = (0.8, 0.95), calibration: float = 0.3,
             time_col: str | None = None, layout: str = "auto") -> Any:
    """Forecast the next ``horizon`` readings of every sensor of a DataFrame.

    Parameters
    ----------
    data
        A pandas or polars DataFrame, wide or long, time in a column (or, for pandas,
        a ``DatetimeIndex``).
    horizon
        Steps ahead (H).
    model
        A registry name (``tsforge models-available``) or ``"auto"``.
    params
        The model's parameters, e.g. ``{"epochs": 10}``.
    sensors
        Only these sensors (default: every one).
    levels
        Nominal coverage of the prediction intervals.
    calibration
        Share of the newest readings streamed after the fit to calibrate the
        intervals (the model still sees them, as it would in production).
    time_col, layout
        As for :func:`tsforge.data.read_csv`.

    Returns
    -------
    DataFrame
        Same library as ``data``: ``timestamp, sensor, step, mean`` and
        ``lower_<level>, upper_<level>`` per level (``lower_80``, ``upper_95``).
    """
    from tsforge.data import from_frame, prepare

    frame, _report = prepare(from_frame(data, time_col=time_col, layout=layout))
    names = list(sensors) if sensors else list(frame.sensors)
    if frame.freq is None:
        raise DataError("forecast: the timestamps have no regular step to continue")
    rows: dict[str, list[Any]] = {"timestamp": [], "sensor": [], "step": [], "mean": []}
    for level in levels:
        rows[f"lower_{level_name(level)}"] = []
        rows[f"upper_{level_name(level)}"] = []
    for name in names:
        fitted = fit_calibrated(frame.column(name), model=model, params=params or {},
                                horizon=horizon, levels=levels, calibration=calibration)
        f = fitted.forecast()
        rows["timestamp"] += list(frame.time[-1] + frame.freq * np.arange(1, horizon + 1))
        rows["sensor"] += [name] * horizon
        rows["step"] += list(range(1, horizon + 1))
        rows["mean"] += f.mean.tolist()
        for level in levels:
            lo, hi = f.intervals.get(level, (np.full(horizon, np.nan),) * 2)
            rows[f"lower_{level_name(level)}"] += np.asarray(lo).tolist()
            rows[f"upper_{level_name(level)}"] += np.asarray(hi).tolist()
    return to_library(rows, data)


def fit_calibrated(y: np.ndarray, X: np.ndarray | None = None, *, model: str,
                   params: dict[str, Any], horizon: int,
                   levels: Sequence[float] = (0.8, 0.95), calibration: float = 0.3,
                   config: IntervalConfig | None = None) -> Any:
    """A :class:`~tsforge.models.transformed.TransformedForecaster` fitted on the first
    ``1 - calibration`` of ``y`` (and covariates ``X``) and streamed through the rest, so
    that its state is at the last reading and its conformal intervals hold residuals of
    readings it did not train on (what ``forecast`` and exports need)."""
    from tsforge.backtest import _build
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.preprocess import analyze

    if not 0.0 < calibration < 0.9:
        raise ConfigError(f"calibration must be in (0, 0.9), got {calibration}")
    y = np.asarray(y, dtype=np.float64)
    config = config or IntervalConfig(levels=tuple(levels))
    n_fit = int(len(y) * (1.0 - calibration))
    if len(y) - n_fit < config.warmup + horizon:
        raise DataError(f"forecast: {len(y)} readings leave {len(y) - n_fit} to calibrate the "
                        f"intervals; they need at least {config.warmup + horizon} (give more "
                        "history or a larger calibration share)")
    stat = analyze(y[:n_fit], name="target")
    wrapped = TransformedForecaster(_build((model, params), horizon, stat.period or 1),
                                    stat.transforms, intervals=config)
    X_arr = None if X is None else np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    wrapped.fit(y[:n_fit], None if X_arr is None else X_arr[:n_fit])
    for i in progress.track(range(n_fit, len(y)), f"calibrate {model}", "reading"):
        wrapped.learn_one(y[i], None if X_arr is None else X_arr[i])
    return wrapped


def to_library(columns: dict[str, list[Any]], like: Any) -> Any:
    """``columns`` as a DataFrame of the library ``like`` comes from (pandas by default)."""
    module = type(like).__module__.split(".")[0]
    if "timestamp" in columns:
        columns = {**columns, "timestamp": np.asarray(columns["timestamp"],
                                                      dtype="datetime64[ns]")}
    if module == "polars":
        import polars as pl

        return pl.DataFrame(columns)
    import pandas as pd

    return pd.DataFrame(columns)
