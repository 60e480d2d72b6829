"""Plots of backtests (matplotlib, Agg canvas, PNG files).

The forecast figure is the report's (:func:`tsforge.report.figures.forecast_figure`),
so ``tsforge backtest --plot`` and the HTML report draw the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.optional import require


def _pyplot() -> Any:
    mpl = require("matplotlib", "plots")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "plots")


def plot_backtest(result: Any, path: str | Path, *, time: np.ndarray | None = None,
                  last: int | None = None, title: str = "Backtest", unit: str = "",
                  model: str | None = None,
                  events: Sequence[tuple[Any, Any, str]] = ()) -> Path:
    """Forecast vs actual on the streamed part with prediction intervals, and MAE by step.

    The whole streamed part, a zoom on the latest readings (one step and H steps
    ahead, every model), a zoom on each known event and the MAE by horizon step;
    the intervals drawn are ``model``'s (default: the lowest MASE).

    ``result`` is a :class:`tsforge.backtest.BacktestResult`.
    """
    from tsforge.report.figures import ZOOM, forecast_figure, to_png

    if model is None:
        model = min(result.scores, key=lambda s: (not np.isfinite(s.mase), s.mase)).model
    fig = forecast_figure(result, model, time=time, last=last or ZOOM, title=title,
                          unit=unit, events=events)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png(fig))
    return path


def _check_weights(result: Any, model: str) -> None:
    if model not in result.weights:
        raise ValueError(f"the backtest has no weights for '{model}'; models with weights: "
                         f"{sorted(result.weights) or 'none'}")


def draw_weights(ax1: Any, ax2: Any, result: Any, model: str = "auto",
                 time: np.ndarray | None = None, ylabel: str = "reading") -> None:
    """Draw ``model``'s one-step forecast over the actual series on ``ax1`` and the
    weight of each expert (stacked, shares sum to 1) on ``ax2``; restarts of the
    weights after drift alarms are dashed lines.  Legends sit outside the data."""
    _check_weights(result, model)
    from matplotlib import colormaps

    names, w = result.weights[model]
    n = len(result.actual)
    x = np.arange(n) if time is None else np.asarray(time)[result.test_start:]
    order = np.argsort(-np.nanmean(w, axis=0))
    ax1.plot(x, result.actual, color="black", lw=0.7, label="actual")
    ax1.plot(x, result.predictions[model][:, 0], color="tab:blue", lw=0.7, alpha=0.8,
             label=f"{model}, 1 step ahead")
    ax1.set_ylabel(ylabel)
    cmap = colormaps["tab10"]
    ax2.stackplot(x, np.nan_to_num(w[:, order]).T, labels=[names[i] for i in order],
                  colors=[cmap(i % 10) for i in range(len(order))], alpha=0.85)
    restarts = result.drift.get(model, {}).get("switches", [])
    for k, i in enumerate(restarts):
        if 0 <= i < n:
            for ax in (ax1, ax2):
                ax.axvline(x[i], color="black", lw=1.2, ls="--",
                           label="weights restart (drift alarm)" if k == 0 and ax is ax2
                           else None)
    ax2.set_ylim(0, 1)
    for ax in (ax1, ax2):
        ax.set_xlim(x[0], x[-1])
    ax2.set_ylabel("weight in the 1-step forecast")
    ax2.set_xlabel("time" if time is not None else "reading after the training part")
    for ax in (ax1, ax2):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.grid(alpha=0.3)


def plot_weights(result: Any, path: str | Path, *, model: str = "auto",
                 time: np.ndarray | None = None, title: str = "Weights of the aggregate",
                 unit: str = "") -> Path:
    """The weight of each expert in ``model``'s one-step forecast over the streamed part
    (:func:`draw_weights`), as a PNG.  ``result`` is a
    :class:`tsforge.backtest.BacktestResult` of a run that included ``model``; ``unit``
    labels the value axis (none shown when unknown).
    """
    from tsforge.report import figures

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figures.weights_png(result, model=model, time=time, title=title,
                                         unit=unit))
    return path
