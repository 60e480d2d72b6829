"""Plots of backtests and streams (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tsforge.optional import require


def _pyplot() -> Any:
    mpl = require("matplotlib", "plots")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "plots")


def plot_backtest(result: Any, path: str | Path, *, time: np.ndarray | None = None,
                  last: int = 2000, title: str = "Backtest") -> Path:
    """Forecast vs actual on the streamed part (1 step and H steps ahead) and MAE by horizon.

    Drift alarms and family switches of self-selecting models (``auto``) are marked
    on the one-step panel.

    ``result`` is a :class:`tsforge.backtest.BacktestResult`; the last ``last``
    readings are shown so that the curves stay readable.
    """
    plt = _pyplot()
    actual = result.actual
    n = len(actual)
    lo = max(0, n - last)
    x = np.arange(n) if time is None else np.asarray(time)[result.test_start:]
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), constrained_layout=True)
    ax1, ax2, ax3 = axes
    ax1.plot(x[lo:], actual[lo:], color="black", lw=1.0, label="actual")
    ax2.plot(x[lo:], actual[lo:], color="black", lw=1.0, label="actual")
    for name, preds in result.predictions.items():
        horizon = preds.shape[1]
        ax1.plot(x[lo:], preds[lo:, 0], lw=0.8, label=name)
        # forecast made H-1 steps earlier for this reading
        h = horizon - 1
        shifted = np.full(n, np.nan)
        shifted[h:] = preds[: n - h, h]
        ax2.plot(x[lo:], shifted[lo:], lw=0.8, label=name)
    for score in result.scores:
        ax3.plot(np.arange(1, score.horizon + 1), score.mae_by_step, marker="o", ms=3,
                 label=score.model)
    for marks in getattr(result, "drift", {}).values():
        from tsforge.drift.plot import mark_drift

        mark_drift(ax1, x, [a for a in marks["alarms"] if a[0] >= lo], marks["switches"])
    ax1.set_title(f"{title}: one step ahead")
    ax2.set_title(f"{title}: {result.scores[0].horizon} steps ahead")
    ax3.set_title("MAE by forecast step")
    ax3.set_xlabel("steps ahead")
    ax3.set_ylabel("MAE")
    for ax in axes:
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
