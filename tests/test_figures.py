"""Plots a plant engineer can read: units on the axes, intervals on every forecast plot,
a full view plus zooms, visible alarms, legends outside the data, no empty panels."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.backtest import backtest
from tsforge.report import figures

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    n = 600
    y = 70 + 5 * np.sin(np.arange(n) / 15) + rng.normal(0, 0.3, n)
    y[450:480] -= 20  # a failure the plant knows about
    time = np.datetime64("2024-03-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    return y, time


@pytest.fixture(scope="module")
def result(series):
    y, _ = series
    return backtest(y, models=["naive", "seasonal_naive"], horizon=3, transforms=[],
                    period=12)


def legends_outside(ax) -> bool:
    legend = ax.get_legend()
    return legend is not None and legend.get_bbox_to_anchor().x0 >= \
        ax.get_window_extent().x1 - 1


def test_forecast_figure_has_units_intervals_zooms_and_events(series, result):
    _y, time = series
    event = (time[450], time[480], "bearing replaced")
    fig = figures.forecast_figure(result, "naive", time=time, title="line3/temp", unit="°F",
                                  events=[event], last=50)
    axes = fig.axes
    # whole streamed part, latest 1 step, latest H steps, the event, MAE by step
    assert len(axes) == 5
    assert "whole streamed part" in axes[0].get_title()
    assert "latest 50 readings" in axes[1].get_title()
    assert "bearing replaced" in axes[3].get_title()
    for ax in axes[:4]:
        assert ax.get_ylabel() == "temp [°F]"
        bands = [c for c in ax.collections if "interval" in str(c.get_label())]
        assert bands, ax.get_title()  # intervals drawn on every forecast panel
        assert legends_outside(ax)
    assert axes[4].get_ylabel() == "MAE [°F]"
    # the zoom really shows the latest readings, not the whole part
    lo, hi = axes[1].get_xlim()
    assert hi - lo < 0.35 * (axes[0].get_xlim()[1] - axes[0].get_xlim()[0])


def test_no_unit_means_no_unit_shown(result):
    fig = figures.forecast_figure(result, "naive", title="temp")
    assert fig.axes[0].get_ylabel() == "temp" and "[" not in fig.axes[-1].get_ylabel()


def test_backtest_plot_draws_intervals(series, result, tmp_path):
    from tsforge.plotting import plot_backtest

    _, time = series
    path = plot_backtest(result, tmp_path / "bt.png", time=time, title="temp", unit="°C")
    assert path.read_bytes()[:4] == b"\x89PNG"
    fig = figures.forecast_figure(result, "naive", time=time, title="temp", unit="°C")
    assert any("95% interval" in str(c.get_label()) for c in fig.axes[1].collections)


def test_decomposition_without_season_has_no_empty_panel_and_lag_step(series):
    from tsforge.preprocess import analyze
    from tsforge.preprocess.plots import decomposition_figure

    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(size=400))
    rep = analyze(walk, name="plant/flow")
    assert rep.period is None
    time = series[1][:400]
    fig = decomposition_figure(walk, rep, time=time, unit="m3/h",
                               step=np.timedelta64(5, "m"))
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert not any("seasonal" in label for label in labels) and len(fig.axes) == 4
    assert labels[0] == "flow [m3/h]"
    assert fig.axes[-1].get_xlabel() == "lag (× 5 min)"
    assert "no season found" in fig._suptitle.get_text()


def test_drift_alarms_are_clearly_visible(series, tmp_path):
    from tsforge.drift.base import Alarm
    from tsforge.drift.plot import mark_drift, plot_drift

    y, time = series
    alarms = [Alarm(index=455, sensor="temp", detector="adwin", signal="input",
                    statistic=1.0, statistic_name="window mean")]
    _fig, (ax,) = figures.new_figure(1, 3.0)
    mark_drift(ax, time, [(a.index, a.detector, a.signal) for a in alarms])
    line = next(ln for ln in ax.lines if ln.get_label().startswith("adwin (input)"))
    assert line.get_linewidth() >= 1.5 and line.get_alpha() >= 0.8
    assert any(ln.get_marker() == "v" for ln in ax.lines)  # a marker on the top edge
    png = plot_drift(y, alarms, tmp_path / "d.png", time=time, unit="°F", name="temp")
    assert png.stat().st_size > 10_000


def test_figures_fill_the_report_page(result):
    fig = figures.forecast_figure(result, "naive")
    width_px = fig.get_figwidth() * figures.DPI
    from tsforge.report import html

    page = int(html.PAGE.template.split("max-width: ")[1].split("px")[0])
    assert abs(width_px - page) <= 0.05 * page
