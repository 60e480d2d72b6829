"""The ``auto`` forecaster: pruning at fit, online weights that follow drift, backtest plots."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.backtest import backtest
from tsforge.models import create
from tsforge.selection.synthetic import random_walk


def _season_then_walk(n: int = 1800, change: int = 1200, seed: int = 0) -> np.ndarray:
    """A clean daily season (seasonal naive is right) that turns into a random walk
    without season at ``change`` (naive is right)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    season = 10.0 + 5.0 * np.sin(2 * np.pi * t / 24) + 0.05 * rng.standard_normal(n)
    walk = season[change - 1] + np.cumsum(0.05 * rng.standard_normal(n))
    return np.where(t < change, season, walk)


def test_weights_follow_the_better_family_and_move_after_a_drift_alarm() -> None:
    y = _season_then_walk()
    auto = create("auto", experts="naive,seasonal_naive", period=24, prune=100.0,
                  restart_gap=50)
    auto.fit(y[:800])
    assert auto.expert_names == ["naive", "seasonal_naive"]
    names = auto.expert_names
    for v in y[800:1200]:
        auto.learn_one(v)
    assert auto.weights[0, names.index("seasonal_naive")] > 0.9
    assert auto.restarts == []
    for v in y[1200:1400]:
        auto.learn_one(v)
    assert auto.restarts and 1200 - 800 <= auto.restarts[0]["index"] < 1200 - 800 + 60
    assert auto.weights[0, names.index("naive")] > 0.8
    text = auto.decision.explanation
    assert text.startswith("aggregate of 2 families, weights 1 step ahead: naive 0.")
    assert "weights moved to naive" in text and "after the drift alarm at reading 4" in text
    # the aggregate is as good as the better family over the whole stream
    f = create("auto", experts="naive,seasonal_naive", period=24, prune=100.0).fit(y[:800])
    err = []
    for v in y[800:]:
        err.append(abs(f.forecast().mean[0] - v))
        f.learn_one(v)
    naive = np.abs(np.diff(y[799:])).mean()
    snaive = np.abs(y[800:] - y[776:-24]).mean()
    assert np.mean(err) < min(naive, snaive)


def test_candidates_are_pruned_by_profile_history_and_validation() -> None:
    y = random_walk(700)
    short = create("auto", experts="naive,seasonal_naive,mlp,dsf_gru,nosuch", period=24)
    short.fit(y[:250])
    why = {s["name"]: s["why"] for s in short.screening_ if not s["kept"]}
    assert why["mlp"] == why["dsf_gru"] == "250 readings < min_history 300"
    assert why["nosuch"] == "not registered"
    # seasonal naive on a walk without season: far worse on the validation stream
    assert why["seasonal_naive"].startswith("validation MAE")
    assert short.expert_names == ["naive"]
    long = create("auto", experts="naive,dsf_gru", period=0).fit(y)
    assert next(s for s in long.screening_ if s["name"] == "dsf_gru")["why"].startswith(
        "no long memory")
    assert "pruned at fit: dsf_gru (no long memory" in long.decision.explanation


def test_backtest_records_weights_and_expert_forecasts_and_plots_them(tmp_path) -> None:
    from tsforge.plotting import plot_weights

    y = _season_then_walk(1300, change=1100)
    auto = ("auto", {"experts": "naive,seasonal_naive", "prune": 100.0, "restart_gap": 50})
    result = backtest(y, models=["naive", auto], horizon=2, period=24, train_fraction=0.6)
    names, w = result.weights["auto"]
    assert names == ["naive", "seasonal_naive"] and w.shape == (len(result.actual), 2)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # the experts inside the aggregate forecast exactly what the family does on its own
    np.testing.assert_array_equal(result.experts["auto"]["naive"], result.predictions["naive"])
    score = next(s for s in result.scores if s.model == "auto")
    assert score.coverage["0.8"] == pytest.approx(0.8, abs=0.1)  # conformal on the aggregate
    assert score.family.startswith("naive 0.") and "weights moved to naive" in score.explanation
    assert result.drift["auto"]["switches"]  # restarts are marked on the plots
    png = plot_weights(result, tmp_path / "w.png", title="synthetic")
    assert png.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no weights for 'naive'"):
        plot_weights(result, tmp_path / "x.png", model="naive")


def test_override_fits_one_family_and_bad_settings_are_refused() -> None:
    from tsforge.errors import ConfigError

    auto = create("auto", family="naive").fit(random_walk(300))
    assert auto.expert_names == ["naive"] and auto.family == "naive 1.00"
    with pytest.raises(ConfigError, match="prune"):
        create("auto", prune=0.5)
    with pytest.raises(ValueError, match="loss"):
        create("auto", loss="pinball")
