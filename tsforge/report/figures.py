"""The figures of a proof-of-concept study, as PNG bytes.

PNG bytes go unchanged into a notebook (``IPython.display.Image``), into the HTML
report (base64 ``data:`` URIs) and onto disk, so every reader sees the same picture.
Only matplotlib's object API is used (``Figure`` with the Agg canvas): no pyplot
global state, no GUI backend, safe in threads and on headless machines.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from tsforge.optional import require

#: Colour of the picked model and its intervals.
PICKED = "tab:green"


def new_figure(rows: int, height: float, width: float = 11.0) -> tuple[Any, Any]:
    """A constrained-layout ``Figure`` with ``rows`` stacked axes (Agg canvas)."""
    figure_mod = require("matplotlib.figure", "plots")
    backend_agg = require("matplotlib.backends.backend_agg", "plots")
    fig = figure_mod.Figure(figsize=(width, height), layout="constrained")
    backend_agg.FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def date_axes(axes: Any, x: np.ndarray) -> None:
    """Compact date ticks that never collide at a month's end (datetime ``x`` only)."""
    if np.asarray(x).dtype.kind != "M":
        return
    mdates = require("matplotlib.dates", "plots")
    for ax in axes:
        locator = mdates.AutoDateLocator(interval_multiples=False)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def to_png(fig: Any, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def decomposition_png(y: np.ndarray, report: Any, *, time: Any = None, title: str = "") -> bytes:
    """The STL decomposition and ACF of :func:`tsforge.preprocess.plot_decomposition`."""
    from tsforge.preprocess.plots import decomposition_figure

    return to_png(decomposition_figure(y, report, time=time, title=title or None), dpi=70)


def forecast_png(result: Any, model: str, *, time: Any = None, last: int = 600,
                 title: str = "") -> bytes:
    """Forecast vs actual on the streamed part, with the prediction intervals of ``model``.

    Top: one step ahead, every model, ``model``'s intervals shaded.  Middle: H steps
    ahead (the forecast issued H-1 readings earlier).  Bottom: MAE by forecast step.
    Only the last ``last`` readings are drawn so that the curves stay readable.

    Parameters
    ----------
    result
        A :class:`tsforge.backtest.BacktestResult`.
    model
        The model whose intervals are drawn (the picked family).
    time
        Timestamps of the whole series (the test part starts at ``result.test_start``).
    """
    actual = result.actual
    n = len(actual)
    lo = max(0, n - last)
    x = np.arange(n) if time is None else np.asarray(time)[result.test_start:]
    fig, (ax1, ax2, ax3) = new_figure(3, 9.0)
    horizon = result.scores[0].horizon
    for ax, step in ((ax1, 0), (ax2, horizon - 1)):
        bands = result.intervals.get(model, {})
        shades = sorted(bands, reverse=True)
        for k, level in enumerate(shades):
            lower, upper = (_issued_for_reading(a, step) for a in bands[level])
            ax.fill_between(x[lo:], lower[lo:], upper[lo:], color=PICKED,
                            alpha=0.18 + 0.12 * k, lw=0, label=f"{model} {level:.0%} interval")
        ax.plot(x[lo:], actual[lo:], color="black", lw=1.0, label="actual")
        for name, preds in result.predictions.items():
            style = {"lw": 1.3, "color": PICKED} if name == model else {"lw": 0.8}
            ax.plot(x[lo:], _issued_for_reading(preds, step)[lo:], label=name, **style)
    for score in result.scores:
        ax3.plot(np.arange(1, score.horizon + 1), score.mae_by_step, marker="o", ms=3,
                 label=score.model, **({"lw": 1.8, "color": PICKED} if score.model == model
                                       else {"lw": 0.9}))
    ax1.set_title(f"{title}: forecast one step ahead vs actual")
    ax2.set_title(f"{title}: forecast {horizon} steps ahead vs actual")
    ax3.set_title("mean absolute error by forecast step (lower is better)")
    ax3.set_xlabel("steps ahead")
    date_axes((ax1, ax2), x)
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="upper left", fontsize=7, ncol=3)
        ax.grid(alpha=0.3)
    return to_png(fig)


def weights_png(result: Any, *, model: str = "auto", time: Any = None, title: str = "") -> bytes:
    """The aggregate's one-step forecast and its experts' weights over the streamed part."""
    from tsforge.plotting import draw_weights

    fig, (ax1, ax2) = new_figure(2, 5.5)
    x = None if time is None else np.asarray(time)
    draw_weights(ax1, ax2, result, model, x)
    ax1.set_title(f"{title}: weights of the online aggregation ({model})")
    if x is not None:
        date_axes((ax1, ax2), x[result.test_start:])
    return to_png(fig)


def _issued_for_reading(values: np.ndarray, step: int) -> np.ndarray:
    """Column ``step`` of ``(n, H)`` forecasts, aligned with the reading it forecasts."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    out[step:] = values[: n - step, step]
    return out


def drift_png(y: np.ndarray, timeline: Any, *, time: Any = None, title: str = "",
              events: list[tuple[Any, Any, str]] | None = None) -> bytes:
    """The series with every drift alarm of ``timeline`` marked on it.

    ``events`` are known ``(start, end, label)`` periods (same unit as ``time``),
    shaded on both panels so that alarms can be set against what really happened.

    ``timeline`` is a :class:`tsforge.report.alarms.DriftTimeline`.  Alarms on the
    readings are drawn on the upper panel; alarms on the forecast errors (which start
    with the streamed part) on the lower panel, over the scaled errors they watched.
    """
    x = np.arange(len(y)) if time is None else np.asarray(time)
    test_start = timeline.test_start
    fig, (ax1, ax2) = new_figure(2, 5.2)
    ax1.plot(x, y, lw=0.6, color="tab:blue", label="reading")
    if timeline.residual is not None:
        w = timeline.residual
        ax2.plot(x[test_start:test_start + len(w)], w, lw=0.5, color="tab:gray",
                 label="|one-step error| / its early mean")
    for ax in (ax1, ax2):
        if 0 < test_start < len(y):
            ax.axvline(x[test_start], color="black", ls="--", lw=0.9,
                       label="model fitted up to here")
    shown = [(a, b) for a, b, _label in events or [] if b >= x[0] and a <= x[-1]]
    for k, (start, end) in enumerate(shown):
        for ax in (ax1, ax2):
            ax.axvspan(max(start, x[0]), min(end, x[-1]), color="gold", alpha=0.35, lw=0,
                       label="known event" if k == 0 else None)
    from tsforge.drift.plot import mark_drift

    for ax, signal in ((ax1, "input"), (ax2, "residual")):
        mark_drift(ax, x, [(a.index, a.detector, a.signal) for a in timeline.alarms
                           if a.signal == signal])
    ax1.set_title(f"{title}: drift alarms on the readings")
    ax2.set_title("drift alarms on the forecast errors of the picked model")
    date_axes((ax1, ax2), x)
    for ax in (ax1, ax2):
        ax.legend(loc="upper left", fontsize=7, ncol=4)
        ax.grid(alpha=0.3)
        ax.set_xlim(x[0], x[-1])
    return to_png(fig)
