"""Peer baselines: each wrapper streams exactly what its package computes."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from tsforge.backtest import backtest
from tsforge.checks import synthetic_series
from tsforge.errors import ConfigError, MissingDependencyError
from tsforge.models import create
from tsforge.models.river_state import numeric_state, restore_numeric_state


@pytest.fixture(scope="module")
def series():
    y, _ = synthetic_series(n=700)
    return y


def _streamed(name, series, **params):
    model = create(name, horizon=4, refit_every=0, max_window=400, maxiter=30, **params)
    model.fit(series[:400])
    for t in range(400, 460):
        model.learn_one(series[t])
    return model


def test_arima_stream_equals_statsmodels_append_without_refit(series):
    model = _streamed("arima", series, p=2, d=1, q=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' start-parameter chatter
        fitted = model.build_model(series[:400]).filter(model.params_)
        reference = fitted.append(series[400:460], refit=False).forecast(4)
    np.testing.assert_allclose(model.forecast().mean, reference, rtol=0, atol=1e-8)


def test_ets_stream_equals_statsmodels_filter_from_the_fitted_initial_states(series):
    # append(refit=False) would re-concentrate ETS's initial states on the longer
    # series (looking back); streaming keeps those of the fit, so the reference is
    # statsmodels' filter over the whole series with the fit's initial states known.
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    model = _streamed("ets", series, trend=True, damped=True, period=12)
    init = model.build_model(series[:400]).filter(model.params_).initial_state
    known = ExponentialSmoothing(
        series[:460], trend=True, damped_trend=True, seasonal=12,
        initialization_method="known", initial_level=init[0], initial_trend=init[1],
        initial_seasonal=init[2:])
    reference = known.filter(model.params_).forecast(4)
    np.testing.assert_allclose(model.forecast().mean, reference, rtol=0, atol=1e-8)


def test_statsmodels_refits_on_schedule_with_a_capped_window(series):
    model = create("arima", p=1, d=1, q=0, horizon=2, refit_every=50, max_window=120)
    model.fit(series[:400])
    first = model.params_.copy()
    assert model.window_.size == 120
    for t in range(400, 449):
        model.learn_one(series[t])
    np.testing.assert_array_equal(model.params_, first)  # 49 readings: no refit yet
    model.learn_one(series[449])
    assert model.since_refit_ == 0 and not np.array_equal(model.params_, first)
    np.testing.assert_array_equal(model.window_, series[330:450])
    expected = create("arima", p=1, d=1, q=0, horizon=2, max_window=120)
    np.testing.assert_array_equal(model.params_, expected.fit(series[330:450]).params_)


def test_seasonal_component_only_within_max_period():
    assert create("ets", period=12)._seasonal_period() == 12
    assert create("ets", period=288)._seasonal_period() == 0
    assert create("ets", period=288, max_period=300)._seasonal_period() == 288


def test_snarimax_learns_like_river_and_update_leaves_weights_alone(series):
    from river import time_series

    z = (series - series.mean()) / series.std()
    model = create("snarimax", p=2, q=1, horizon=3).fit(z[:400])
    ref = time_series.SNARIMAX(p=2, d=0, q=1, regressor=model._build().regressor)
    for v in z[:400]:
        ref.learn_one(float(v))
    for t in range(400, 450):
        model.learn_one(z[t])
        ref.learn_one(float(z[t]))
    np.testing.assert_array_equal(model.forecast().mean, ref.forecast(3))
    weights = dict(model.model_.regressor["LinearRegression"]._weights.items())
    errors_before = list(model.model_.errors)
    model.update(z[450])
    assert dict(model.model_.regressor["LinearRegression"]._weights.items()) == weights
    assert list(model.model_.errors) != errors_before  # the buffers did advance


def test_holt_winters_matches_river_and_tunes_from_its_grid(series):
    from river import time_series

    fixed = create("holt_winters", period=12, alpha=0.3, beta=0.05, gamma=0.2, horizon=5)
    fixed.fit(series[:400])
    ref = time_series.HoltWinters(alpha=0.3, beta=0.05, gamma=0.2, seasonality=12)
    for v in series[:400]:
        ref.learn_one(float(v))
    np.testing.assert_array_equal(fixed.forecast().mean, ref.forecast(5))
    tuned = create("holt_winters", period=12, horizon=1, tune_window=300).fit(series[:400])
    alpha, beta, gamma = tuned.smoothing_
    assert alpha in (0.1, 0.3, 0.5, 0.8) and beta in (0.01, 0.05, 0.2) and gamma is not None
    assert tuned._one_step_mae(tuned.smoothing_, series[100:400]) <= tuned._one_step_mae(
        (0.8, 0.2, 0.5), series[100:400])


def test_river_numeric_state_restores_a_fresh_model_exactly(series):
    from river import time_series

    a = create("snarimax", p=3, q=2, horizon=1)._build()
    for v in series[:300]:
        a.learn_one(float(v - 10.0))
    b = create("snarimax", p=3, q=2, horizon=1)._build()
    restore_numeric_state(b, numeric_state(a))
    assert b.forecast(6) == a.forecast(6)
    hw = time_series.HoltWinters(alpha=0.3, beta=0.1, gamma=0.1, seasonality=12)
    for v in series[:100]:
        hw.learn_one(float(v))
    hw2 = time_series.HoltWinters(alpha=0.3, beta=0.1, gamma=0.1, seasonality=12)
    restore_numeric_state(hw2, numeric_state(hw))
    assert hw2.forecast(12) == hw.forecast(12)


def test_peers_run_in_the_backtest_next_to_the_naive_baselines(series):
    models = ["naive", "seasonal_naive", "holt_winters", "snarimax",
              ("ets", {"refit_every": 100, "max_window": 300}),
              ("arima", {"refit_every": 100, "max_window": 300})]
    result = backtest(series, models=models, horizon=3, train_fraction=0.6,
                      transforms=[{"kind": "scale"}], period=12)
    scores = {s.model: s for s in result.scores}
    assert set(scores) == {"naive", "seasonal_naive", "holt_winters", "snarimax", "ets", "arima"}
    for name in ("holt_winters", "ets", "arima"):
        assert scores[name].transforms == [], f"{name} should see raw readings"
        assert scores[name].mase < scores["naive"].mase, name
    assert scores["snarimax"].transforms == [{"kind": "scale"}] and scores["snarimax"].online
    for s in scores.values():
        assert abs(s.coverage["0.8"] - 0.8) < 0.1, (s.model, s.coverage)


def test_bad_parameters_and_missing_packages_are_explained(monkeypatch):
    with pytest.raises(ConfigError, match="trend"):
        create("arima", trend="c", d=1)
    with pytest.raises(ConfigError, match="at least one"):
        create("snarimax", p=0, q=0)
    with pytest.raises(ConfigError, match="alpha"):
        create("holt_winters", alpha=1.5)
    monkeypatch.setitem(sys.modules, "statsmodels", None)
    with pytest.raises(MissingDependencyError, match=r"tsforge\[all\]"):
        create("ets")


def test_backtest_command_line_names_peers_and_interval_levels():
    from tsforge.cli import build_parser, interval_config

    args = build_parser().parse_args(
        ["backtest", "f.csv", "--models", "ets,arima", "--levels", "0.5,0.9",
         "--interval-method", "split"])
    cfg = interval_config(args)
    assert cfg.levels == (0.5, 0.9) and cfg.method == "split"
    assert interval_config(build_parser().parse_args(["backtest", "f.csv", "--levels", "none"])
                           ) is None
    with pytest.raises(ConfigError, match="--levels"):
        interval_config(build_parser().parse_args(["backtest", "f.csv", "--levels", "x"]))
