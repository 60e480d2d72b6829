"""Point-forecast and interval metrics (numpy only)."""

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


def future_truth(actual: np.ndarray, horizon: int) -> np.ndarray:
    """``truth[i, h] = actual[i + h]`` (shape ``(n, horizon)``); NaN past the end of the data."""
    n = len(actual)
    truth = np.full((n, horizon), np.nan)
    for h in range(horizon):
        truth[: max(0, n - h), h] = actual[h:n]
    return truth


def forecast_errors(predictions: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Errors ``actual[i + h] - predictions[i, h]``; NaN where ``i + h`` runs past the data.

    ``predictions[i]`` is the forecast made just before ``actual[i]`` was observed.
    """
    return future_truth(actual, predictions.shape[1]) - predictions


def interval_coverage(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> float:
    """Share of readings inside their interval, over the intervals that were issued.

    ``lower``/``upper`` are ``(n, H)`` aligned like predictions (row ``i`` issued just
    before ``actual[i]``); NaN bounds mean "not issued" and are skipped, infinite
    bounds count as covering.
    """
    truth = future_truth(actual, lower.shape[1])
    scored = np.isfinite(truth) & ~np.isnan(lower) & ~np.isnan(upper)
    if not scored.any():
        return float("nan")
    inside = (lower[scored] <= truth[scored]) & (truth[scored] <= upper[scored])
    return float(inside.mean())


def interval_width(lower: np.ndarray, upper: np.ndarray) -> float:
    """Mean width of the finite intervals (NaN if none)."""
    width = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    width = width[np.isfinite(width)]
    return float(width.mean()) if width.size else float("nan")
