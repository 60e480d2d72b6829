"""Point-forecast error metrics (numpy only)."""

from __future__ import annotations

import numpy as np


def seasonal_naive_scale(y: np.ndarray, period: int = 1) -> float:
    """In-sample MAE of the one-step seasonal naive forecast: the MASE denominator."""
    y = np.asarray(y, dtype=np.float64)
    m = max(1, int(period))
    if y.size <= m:
        m = 1
    diffs = np.abs(y[m:] - y[:-m])
    diffs = diffs[np.isfinite(diffs)]
    scale = float(diffs.mean()) if diffs.size else 1.0
    return scale if scale > 0 else 1.0


def mae(errors: np.ndarray) -> float:
    e = np.asarray(errors, dtype=np.float64)
    e = e[np.isfinite(e)]
    return float(np.abs(e).mean()) if e.size else float("nan")


def rmse(errors: np.ndarray) -> float:
    e = np.asarray(errors, dtype=np.float64)
    e = e[np.isfinite(e)]
    return float(np.sqrt((e**2).mean())) if e.size else float("nan")


def forecast_errors(predictions: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Errors ``actual[i + h] - predictions[i, h]``; NaN where ``i + h`` runs past the data.

    ``predictions[i]`` is the forecast made just before ``actual[i]`` was observed.
    """
    n, horizon = predictions.shape
    truth = np.full((n, horizon), np.nan)
    for h in range(horizon):
        truth[: max(0, n - h), h] = actual[h:n]
    return truth - predictions
