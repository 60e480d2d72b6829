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


def _check_weights(result: Any, model: str) -> None:
    if model not in result.weights:
        raise ValueError(f"the backtest has no weights for '{model}'; models with weights: "
                         f"{sorted(result.weights) or 'none'}")


def draw_weights(ax1: Any, ax2: Any, result: Any, model: str = "auto",
                 time: np.ndarray | None = None) -> None:
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
    ax1.set_ylabel("reading (engineering units)")
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
    ax2.set_xlim(x[0], x[-1])
    ax2.set_ylabel("weight in the 1-step forecast")
    ax2.set_xlabel("time" if time is not None else "reading after the training part")
    for ax in (ax1, ax2):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.grid(alpha=0.3)


def plot_weights(result: Any, path: str | Path, *, model: str = "auto",
                 time: np.ndarray | None = None, title: str = "Weights of the aggregate") -> Path:
    """The weight of each expert in ``model``'s one-step forecast over the streamed part
    (:func:`draw_weights`), as a PNG.  ``result`` is a
    :class:`tsforge.backtest.BacktestResult` of a run that included ``model``.
    """
    _check_weights(result, model)
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 1.4]},
                                   constrained_layout=True)
    draw_weights(ax1, ax2, result, model, time)
    ax1.set_title(f"{title}: {model} over the streamed part")
    if time is not None:
        fig.autofmt_xdate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
