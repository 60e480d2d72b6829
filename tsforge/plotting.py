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
