"""The figures of a proof-of-concept study, as matplotlib figures and PNG bytes.

PNG bytes go unchanged into a notebook (``IPython.display.Image``), into the HTML
report (base64 ``data:`` URIs) and onto disk, so every reader sees the same picture.
Only matplotlib's object API is used (``Figure`` with the Agg canvas): no pyplot
global state, no GUI backend, safe in threads and on headless machines.

Every figure follows one look (:func:`new_figure`, :func:`finish`): the sensor's
name and unit on the value axis where the unit is known, readable date ticks,
legends outside the data, and a width that fills the HTML report's page
(:data:`WIDTH` inches at :data:`DPI`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tsforge.optional import require

#: Colour of the picked model and its intervals.
PICKED = "tab:green"
#: Figure width (inches) and resolution: 12.5 in at 100 dpi is the report page's 1250 px.
WIDTH, DPI = 12.5, 100
#: Font size of legends and tick labels.
FONT = 9.5
#: Readings shown in the zoomed views of a forecast figure.
ZOOM = 300


def new_figure(rows: int, height: float, width: float = WIDTH) -> tuple[Any, Any]:
    """A constrained-layout ``Figure`` with ``rows`` stacked axes (Agg canvas)."""
    figure_mod = require("matplotlib.figure", "plots")
    backend_agg = require("matplotlib.backends.backend_agg", "plots")
    fig = figure_mod.Figure(figsize=(width, height), layout="constrained")
    backend_agg.FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def value_label(name: str, unit: str = "", width: int = 22) -> str:
    """Value-axis label: ``"Usage_kWh [kWh]"``, or the bare name when the unit is unknown.

    Long names are broken after ``_`` or spaces into lines of about ``width`` characters,
    so that the label never runs off the panel.
    """
    text = f"{name} [{unit}]" if unit else name
    lines, line = [], ""
    for token in re.findall(r"[^_ ]+[_ ]?", text):
        if line and len(line) + len(token) > width:
            lines.append(line)
            line = ""
        line += token
    return "\n".join(part.rstrip() for part in [*lines, line] if part)


def step_text(step: Any) -> str:
    """A sampling step as words (``15 min``, ``1 h``), or ``""`` when unknown."""
    if step is None:
        return ""
    ns = int(np.asarray(step).astype("timedelta64[ns]").astype(np.int64))
    for unit, size in (("d", 86400 * 10**9), ("h", 3600 * 10**9), ("min", 60 * 10**9),
                       ("s", 10**9), ("ms", 10**6)):
        if ns > 0 and ns % size == 0:
            return f"{ns // size} {unit}"
    return ""


def date_axes(axes: Any, x: np.ndarray) -> None:
    """Concise date ticks (day, month and year where they change; datetime ``x`` only)."""
    if np.asarray(x).dtype.kind != "M":
        return
    mdates = require("matplotlib.dates", "plots")
    for ax in axes:
        locator = mdates.AutoDateLocator(minticks=4, maxticks=9, interval_multiples=True)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))


def finish(axes: Sequence[Any], x: np.ndarray | None = None) -> None:
    """The common look: grid, tick font, legend outside the data, date ticks."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=FONT)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=FONT,
                      frameon=False, borderaxespad=0.0)
    if x is not None:
        date_axes([ax for ax in axes if ax.get_xlabel() != "steps ahead"], x)


def to_png(fig: Any, dpi: int = DPI) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def decomposition_png(y: np.ndarray, report: Any, *, time: Any = None, title: str = "",
                      unit: str = "", step: Any = None) -> bytes:
    """The STL decomposition and ACF of :func:`tsforge.preprocess.plot_decomposition`."""
    from tsforge.preprocess.plots import decomposition_figure

    return to_png(decomposition_figure(y, report, time=time, title=title or None, unit=unit,
                                       step=step))


def forecast_png(result: Any, model: str, *, time: Any = None, last: int = ZOOM,
                 title: str = "", unit: str = "",
                 events: Sequence[tuple[Any, Any, str]] = ()) -> bytes:
    """PNG of :func:`forecast_figure`."""
    return to_png(forecast_figure(result, model, time=time, last=last, title=title,
                                  unit=unit, events=events))


def forecast_figure(result: Any, model: str, *, time: Any = None, last: int = ZOOM,
                    title: str = "", unit: str = "",
                    events: Sequence[tuple[Any, Any, str]] = ()) -> Any:
    """Forecast vs actual on the streamed part, with the prediction intervals of ``model``.

    Panels: the whole streamed part (one step ahead, ``model`` and its widest
    interval); a zoom on the latest ``last`` readings one step and H steps ahead
    (every model, every interval level of ``model``); a zoom on each known event
    that falls in the streamed part; the MAE by forecast step.

    Parameters
    ----------
    result
        A :class:`tsforge.backtest.BacktestResult`.
    model
        The model whose intervals are drawn (the picked family).
    time
        Timestamps of the whole series (the test part starts at ``result.test_start``).
    unit
        Unit of the readings, for the value axis ("" when unknown).
    events
        Known ``(start, end, label)`` periods, in the unit of ``time``.
    """
    actual = result.actual
    n = len(actual)
    x = np.arange(n) if time is None else np.asarray(time)[result.test_start:]
    horizon = result.scores[0].horizon
    windows = _event_windows(x, events, last)
    rows = 3 + len(windows) + int(horizon > 1)
    fig, axes = new_figure(rows, 2.7 * rows)
    label = value_label(title.split("/")[-1] or "reading", unit)
    ax_full, ax_last = axes[0], axes[1]
    _draw(ax_full, x, result, model, 0, slice(0, n), others=False)
    ax_full.set_title(f"{title}: whole streamed part ({n} readings), {model} one step ahead "
                      "with its interval", fontsize=11)
    lo = max(0, n - last)
    _draw(ax_last, x, result, model, 0, slice(lo, n))
    ax_last.set_title(f"latest {n - lo} readings: forecast one step ahead vs actual",
                      fontsize=11)
    k = 2
    if horizon > 1:
        _draw(axes[k], x, result, model, horizon - 1, slice(lo, n))
        axes[k].set_title(f"latest {n - lo} readings: forecast {horizon} steps ahead "
                          "(issued {horizon} readings earlier) vs actual".format(
                              horizon=horizon - 1), fontsize=11)
        k += 1
    for (a, b, name, span) in windows:
        _draw(axes[k], x, result, model, 0, span)
        axes[k].axvspan(a, b, color="gold", alpha=0.35, lw=0, label=f"known event: {name}")
        axes[k].set_title(f"around the known event '{name}': one step ahead", fontsize=11)
        k += 1
    for ax in axes[:k]:
        ax.set_ylabel(label, fontsize=FONT + 0.5)
    ax_mae = axes[k]
    for score in result.scores:
        ax_mae.plot(np.arange(1, score.horizon + 1), score.mae_by_step, marker="o", ms=3,
                    label=score.model, **({"lw": 1.8, "color": PICKED}
                                          if score.model == model else {"lw": 0.9}))
    ax_mae.set_title("mean absolute error by forecast step (lower is better)", fontsize=11)
    ax_mae.set_xlabel("steps ahead")
    ax_mae.set_ylabel(f"MAE [{unit}]" if unit else "MAE", fontsize=FONT + 0.5)
    finish(axes, x)
    return fig


def _event_windows(x: np.ndarray, events: Sequence[tuple[Any, Any, str]],
                   last: int) -> list[tuple[Any, Any, str, slice]]:
    """Known events inside the streamed part, each with a window of readings around it."""
    out = []
    for start, end, name in events or ():
        if end < x[0] or start > x[-1]:
            continue
        i = int(np.searchsorted(x, start))
        j = int(np.searchsorted(x, end, side="right"))
        pad = max(last // 2, (j - i) // 2)
        out.append((max(start, x[0]), min(end, x[-1]), name,
                    slice(max(0, i - pad), min(len(x), j + pad))))
    return out[:3]


def _draw(ax: Any, x: np.ndarray, result: Any, model: str, step: int, span: slice,
          others: bool = True) -> None:
    """Actual, forecasts issued ``step + 1`` readings ahead and ``model``'s bands on ``span``."""
    bands = result.intervals.get(model, {})
    levels = sorted(bands, reverse=True)
    if not others:
        levels = levels[:1]
    for k, level in enumerate(levels):
        lower, upper = (_issued_for_reading(a, step) for a in bands[level])
        ax.fill_between(x[span], lower[span], upper[span], color=PICKED,
                        alpha=0.16 + 0.14 * k, lw=0, label=f"{model} {level:.0%} interval")
    for name, preds in result.predictions.items():
        if name != model and not others:
            continue
        style = {"lw": 1.3, "color": PICKED} if name == model else {"lw": 0.8}
        ax.plot(x[span], _issued_for_reading(preds, step)[span], label=name, **style)
    # the readings on top, so that a close forecast never hides them
    ax.plot(x[span], result.actual[span], color="black", lw=0.9, label="actual", zorder=5)
    ax.set_xlim(x[span][0], x[span][-1])


def weights_png(result: Any, *, model: str = "auto", time: Any = None, title: str = "",
                unit: str = "") -> bytes:
    """The aggregate's one-step forecast and its experts' weights over the streamed part."""
    from tsforge.plotting import draw_weights

    fig, (ax1, ax2) = new_figure(2, 5.5)
    x = None if time is None else np.asarray(time)
    draw_weights(ax1, ax2, result, model, x, ylabel=value_label(title or "reading", unit))
    ax1.set_title(f"{title}: weights of the online aggregation ({model})" if title
                  else f"weights of the online aggregation ({model})")
    finish((ax1, ax2), None if x is None else x[result.test_start:])
    return to_png(fig)


def _issued_for_reading(values: np.ndarray, step: int) -> np.ndarray:
    """Column ``step`` of ``(n, H)`` forecasts, aligned with the reading it forecasts."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    out[step:] = values[: n - step, step]
    return out


def drift_png(y: np.ndarray, timeline: Any, *, time: Any = None, title: str = "",
              events: list[tuple[Any, Any, str]] | None = None, unit: str = "") -> bytes:
    """The series with every drift alarm of ``timeline`` marked on it.

    ``events`` are known ``(start, end, label)`` periods (same unit as ``time``),
    shaded on both panels so that alarms can be set against what really happened.

    ``timeline`` is a :class:`tsforge.report.alarms.DriftTimeline`.  Alarms on the
    readings are drawn on the upper panel; alarms on the forecast errors (which start
    with the streamed part) on the lower panel, over the scaled errors they watched.
    """
    x = np.arange(len(y)) if time is None else np.asarray(time)
    test_start = timeline.test_start
    fig, (ax1, ax2) = new_figure(2, 6.0)
    ax1.plot(x, y, lw=0.6, color="tab:blue", label="reading")
    if timeline.residual is not None:
        w = timeline.residual
        ax2.plot(x[test_start:test_start + len(w)], w, lw=0.5, color="tab:gray",
                 label="|one-step error|\n/ its early mean")
    for ax in (ax1, ax2):
        if 0 < test_start < len(y):
            ax.axvline(x[test_start], color="black", ls="--", lw=0.9,
                       label="model fitted\nup to here")
    shown = [(a, b) for a, b, _label in events or [] if b >= x[0] and a <= x[-1]]
    for k, (start, end) in enumerate(shown):
        for ax in (ax1, ax2):
            ax.axvspan(max(start, x[0]), min(end, x[-1]), color="gold", alpha=0.35, lw=0,
                       label="known event" if k == 0 else None)
    from tsforge.drift.plot import mark_drift

    for ax, signal in ((ax1, "input"), (ax2, "residual")):
        mark_drift(ax, x, [(a.index, a.detector, a.signal) for a in timeline.alarms
                           if a.signal == signal])
    ax1.set_title(f"{title}: drift alarms on the readings", fontsize=11, pad=12)
    ax2.set_title("drift alarms on the forecast errors of the picked model", fontsize=11,
                  pad=12)
    ax1.set_ylabel(value_label(title.split("/")[-1] or "reading", unit), fontsize=FONT + 0.5)
    ax2.set_ylabel("scaled |error|", fontsize=FONT + 0.5)
    for ax in (ax1, ax2):
        ax.set_xlim(x[0], x[-1])
    finish((ax1, ax2), x)
    return to_png(fig)
