"""Decomposition plot that goes with a :class:`StationarityReport`.

One PNG per series lets an engineer check the analysis at a glance: does the
trend follow the level, is the seasonal profile real, is the remainder noise?
matplotlib is imported when the function is called, and only its object API
(``Figure`` with the Agg canvas) is used: no pyplot global state, no GUI backend,
safe in threads and on headless edge boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.optional import require
from tsforge.preprocess import seasonality
from tsforge.preprocess.stationarity import StationarityReport


def plot_decomposition(
    y: Any,
    report: StationarityReport,
    path: str | Path,
    *,
    time: Any = None,
    title: str | None = None,
    acf: bool = True,
    unit: str = "",
    step: Any = None,
) -> Path:
    """Draw series, trend, seasonal and remainder panels (and the ACF) to a PNG.

    The figure is :func:`decomposition_figure`; this writes it to ``path``.

    The decomposition is recomputed on the window the report analysed (its last
    ``report.window`` points) with the report's period, exactly as :func:`analyze`
    computed the strengths; the series panel shows the whole series with that window
    shaded.

    Parameters
    ----------
    y
        The series given to :func:`analyze`.
    report
        Its report.
    path
        PNG file to write; missing parent folders are created.
    time
        Optional x values (numbers or datetimes), one per reading; default: index.
    title
        Figure title; default: the report's name and decision.
    acf
        Add a panel with the autocorrelation used for season detection, the period
        and the detection threshold marked.
    unit, step
        The readings' unit (value axes) and sampling step (lag axis, ``× 15 min``);
        left out of the labels when unknown.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        ``y`` or ``time`` does not match the report's length.
    """
    from tsforge.report.figures import to_png

    fig = decomposition_figure(y, report, time=time, title=title, acf=acf, unit=unit, step=step)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_png(fig))
    return out


def decomposition_figure(
    y: Any,
    report: StationarityReport,
    *,
    time: Any = None,
    title: str | None = None,
    acf: bool = True,
    unit: str = "",
    step: Any = None,
) -> Any:
    """The matplotlib ``Figure`` drawn by :func:`plot_decomposition` (Agg canvas attached),
    for callers that embed it elsewhere (an HTML report, a notebook).  Without a season
    the seasonal panel is left out (the title says so)."""
    require("matplotlib", "plotting a decomposition")
    from tsforge.report.figures import finish, new_figure, step_text, value_label

    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size != report.n:
        raise DataError(
            f"plot_decomposition: the report '{report.name}' describes {report.n} readings "
            f"but y has shape {y.shape}; pass the series given to analyze()"
        )
    x = np.arange(y.size) if time is None else np.asarray(time)
    if x.shape != y.shape:
        raise DataError(
            f"plot_decomposition: time has shape {x.shape}, y has {y.shape}; give one "
            "time stamp per reading"
        )
    window = report.window or report.n
    w, xw = y[-window:], x[-window:]
    dec = seasonality.decompose(w, report.period)

    seasonal = report.period is not None
    panels = 3 + int(seasonal) + int(acf)
    fig, axes = new_figure(panels, 2.3 * panels)
    axes[0].plot(x, y, lw=0.6, color="tab:blue", label="reading")
    if window < y.size:
        axes[0].axvspan(xw[0], xw[-1], color="tab:orange", alpha=0.12, label="analysed window")
    axes[0].set_ylabel(value_label(report.name.split("/")[-1], unit))
    f_t = "" if report.trend_strength is None else f" (F_T={report.trend_strength:.2f})"
    f_s = "" if report.seasonal_strength is None else f" (F_S={report.seasonal_strength:.2f})"
    parts = [(axes[1], dec.trend, "trend" + f_t, "trend" + f_t)]
    if seasonal:
        parts.append((axes[2], dec.seasonal, "seasonal" + f_s,
                      f"seasonal, period {report.period} readings" + f_s))
    parts.append((axes[1 + len(parts)], dec.resid, "remainder", "remainder"))
    for ax, values, label, heading in parts:
        ax.plot(xw, values, lw=0.6, color="tab:gray" if label == "remainder" else "tab:blue")
        ax.set_ylabel(f"{label.split(' ')[0]} [{unit}]" if unit else label.split(" ")[0])
        ax.set_title(heading, fontsize=10, loc="left")
    for ax, *_ in parts[1:]:
        ax.sharex(axes[1])  # the window's panels move together
    if acf:
        _acf_panel(axes[-1], w, report, step_text(step))

    chain = " -> ".join(
        f"{s['kind']}({s['period']})" if "period" in s else s["kind"] for s in report.transforms
    )
    no_season = "" if seasonal else "; no season found (no seasonal panel)"
    fig.suptitle((title or f"{report.name}: {report.decision}; chain {chain}") + no_season,
                 fontsize=12)
    finish(list(axes[:-1] if acf else axes), x)
    finish([axes[-1]] if acf else [])
    return fig


def _acf_panel(ax: Any, w: np.ndarray, report: StationarityReport, step: str = "") -> None:
    """ACF of the window, levelled as :func:`analyze` levelled it for season detection."""
    detrend = seasonality.choose_detrend(
        report.decision, report.kpss_trend_pvalue or np.nan, report.alpha
    )
    longest = min(w.size // 3, 1000)
    max_lag = min(w.size // 2, max(3 * (report.period or 0), longest))
    r = seasonality.autocorrelation(w, nlags=max_lag, detrend=detrend, width=2 * longest + 1)
    lags = np.arange(r.size)
    ax.fill_between(lags, 0.0, r, step="mid", lw=0.0, color="tab:blue", alpha=0.6)
    ax.axhline(seasonality.ACF_THRESHOLD, ls="--", lw=0.8, color="tab:red", label="threshold")
    ax.axhline(0.0, lw=0.5, color="black")
    if report.period is not None:
        ax.axvline(report.period, lw=1.0, color="tab:orange", label=f"period {report.period}")
    levelled = {"none": "", "linear": " (less line)", "local": " (less moving avg)"}[detrend]
    ax.set_ylabel("ACF" + levelled, fontsize=9)
    ax.set_xlabel(f"lag (× {step})" if step else "lag (readings)")
