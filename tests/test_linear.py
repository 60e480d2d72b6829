"""The linear windowed family: closed-form ridge, decomposition folding, seasonal lags."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.models.registry import create
from tsforge.models.windowed import input_lags


def ar2(n: int = 3000, seed: int = 0) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 1.5 * y[t - 1] - 0.7 * y[t - 2] + e[t]
    return y


def seasonal(n: int = 4000, period: int = 48, seed: int = 0) -> np.ndarray:
    """A fixed random daily profile plus noise: only the reading a season ago helps."""
    rng = np.random.default_rng(seed)
    profile = rng.normal(0.0, 1.0, period)
    return profile[np.arange(n) % period] + rng.normal(0.0, 0.2, n)


def test_recovers_ar2_coefficients():
    model = create("linear", horizon=1, window=2, ridge=1e-9).fit(ar2())
    w = model.core_.head.linear.weight.detach().numpy()[0]  # oldest lag first
    np.testing.assert_allclose(w, [-0.7, 1.5], atol=0.04)
    assert abs(float(model.core_.head.linear.bias)) < 0.1


def test_multi_step_outputs_are_the_ar2_forecasts():
    y = ar2()
    model = create("linear", horizon=3, window=2, ridge=1e-9).fit(y)
    a, b = y[-1], y[-2]
    expected = []
    for _ in range(3):  # iterate the true recursion: the conditional mean h steps ahead
        a, b = 1.5 * a - 0.7 * b, a
        expected.append(a)
    np.testing.assert_allclose(model.forecast().mean, expected, atol=0.1 * np.std(y))


def test_decomposition_folds_into_the_same_linear_map():
    # trend + remainder span the same space as the plain lags, so with a tiny penalty
    # both fits make the same forecasts; a wrong fold (e.g. dropping the remainder
    # weights) would not
    y = ar2()
    plain = create("linear", horizon=4, window=12, ridge=1e-8).fit(y)
    split = create("linear", horizon=4, window=12, ridge=1e-8, decompose=5).fit(y)
    np.testing.assert_allclose(split.forecast().mean, plain.forecast().mean, atol=0.02)
    for v in y[-50:]:
        plain.update(v)
        split.update(v)
    np.testing.assert_allclose(split.forecast().mean, plain.forecast().mean, atol=0.02)


def test_seasonal_lags_reach_a_season_the_window_does_not():
    y = seasonal()
    fit, test = y[:3000], y[3000:]

    def mae(**params) -> float:
        model = create("linear", horizon=6, window=8, **params).fit(fit)
        errs = []
        for i, v in enumerate(test[:-6]):
            errs.append(np.abs(model.forecast().mean - test[i : i + 6]).mean())
            model.update(v)
        return float(np.mean(errs))

    with_lags, without = mae(period=48), mae(period=48, seasonal_lags=False)
    assert with_lags < 0.25 < 0.6 < without  # noise 0.2 against the profile's spread 1


def test_input_lags_cover_each_step_one_season_back():
    lags = input_lags(8, 6, period=96)
    assert set(range(8)) <= set(lags)
    assert {96 - h for h in range(1, 7)} <= set(lags) and lags.max() == 96
    assert input_lags(48, 12, period=24).tolist() == list(range(48))  # window covers it


def test_ridge_is_picked_on_the_validation_split():
    model = create("linear", horizon=2, window=24).fit(ar2(400))
    assert model.ridge_ is not None and np.isfinite(model.val_mse_)
    with pytest.raises(Exception, match="ridge"):
        create("linear", ridge=-1.0)
