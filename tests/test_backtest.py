"""Walk-forward backtest: protocol of streaming, metrics and the JSON contract."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.backtest import backtest
from tsforge.checks import synthetic_series
from tsforge.errors import ConfigError
from tsforge.metrics import forecast_errors, seasonal_naive_scale

JSON_KEYS = {"model", "mae", "rmse", "mase", "fit_seconds", "predict_us_per_step", "horizon",
             "n_train", "n_test", "online", "transforms", "transform_chain", "mae_by_step",
             "coverage", "interval_width"}
# added by the family selection (auto): which family forecast and why
JSON_KEYS |= {"family", "explanation", "switches", "n_alarms"}


def test_naive_scores_match_hand_computation():
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0, 12.0, 10.0, 11.0, 14.0, 13.0])
    result = backtest(y, models=["naive"], horizon=2, train_fraction=0.72, transforms=[],
                      period=1)
    n_train = int(len(y) * 0.72)
    test = y[n_train:]
    # forecast made before reading i is the previous reading, for both steps
    prev = y[n_train - 1 : -1]
    errors = np.concatenate([test - prev, (test[1:] - prev[:-1])])
    score = result.scores[0]
    assert score.mae == pytest.approx(np.abs(errors).mean())
    assert score.rmse == pytest.approx(np.sqrt((errors**2).mean()))
    scale = np.abs(np.diff(y[:n_train])).mean()
    assert score.mase == pytest.approx(np.abs(errors).mean() / scale)
    assert set(score.to_dict()) == JSON_KEYS


def test_forecast_errors_align_steps_with_future_readings():
    preds = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    actual = np.array([10.0, 20.0, 30.0])
    errors = forecast_errors(preds, actual)
    np.testing.assert_array_equal(errors[:, 0], [9.0, 17.0, 25.0])
    np.testing.assert_array_equal(errors[:2, 1], [18.0, 26.0])
    assert np.isnan(errors[2, 1])


def test_seasonal_scale_uses_period():
    y = np.tile([0.0, 1.0, 2.0], 10)
    assert seasonal_naive_scale(y, 3) == 1.0  # no exact zero: falls back to 1
    assert seasonal_naive_scale(y, 1) == pytest.approx(np.abs(np.diff(y)).mean())


def test_mlp_beats_naive_on_a_predictable_series_and_online_flag_reported():
    y, X = synthetic_series(n=900, n_covariates=1)
    result = backtest(y, X, models=["naive", ("mlp", {"window": 24, "epochs": 8})], horizon=3,
                      transforms=[{"kind": "scale"}], period=12)
    scores = {s.model: s for s in result.scores}
    assert scores["mlp"].mase < scores["naive"].mase
    assert not scores["mlp"].online
    assert result.predictions["mlp"].shape == (len(result.actual), 3)
    assert "mlp" in result.table()


def test_bad_arguments_are_explained():
    y = np.arange(100.0)
    with pytest.raises(ConfigError, match="train_fraction"):
        backtest(y, models=["naive"], train_fraction=1.5, transforms=[], period=1)
    with pytest.raises(ConfigError, match="valid names"):
        backtest(y, models=["prophet"], transforms=[], period=1)
    with pytest.raises(ConfigError, match="valid parameters"):
        backtest(y, models=[("mlp", {"windw": 3})], transforms=[], period=1)
