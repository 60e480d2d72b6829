"""Calendar covariates: phases, which cycles a series gets, and that models use them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tsforge.errors import DataError
from tsforge.models.registry import create
from tsforge.preprocess.calendar import calendar_cycles, calendar_features, calendar_row
from tsforge.report.html import verdict
from tsforge.report.study import calendar_covariates


def hours(start: str, n: int, step_minutes: int = 60) -> np.ndarray:
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(step_minutes, "m")


def test_phases_follow_the_clock_and_the_week():
    t = hours("2024-01-01T00:00", 24 * 21)  # Monday 1 January 2024, three weeks
    X, names = calendar_features(t)
    assert names == ["hour_of_day_sin", "hour_of_day_cos", "day_of_week_sin", "day_of_week_cos"]
    np.testing.assert_allclose(X[6, :2], [1.0, 0.0], atol=1e-12)  # 06:00: a quarter day
    np.testing.assert_allclose(X[24 * 7, :], X[0, :], atol=1e-12)  # next Monday 00:00
    wed = 24 * 2 + 12  # Wednesday noon: 2.5 days into the week
    np.testing.assert_allclose(X[wed, 2:], [np.sin(2 * np.pi * 2.5 / 7),
                                            np.cos(2 * np.pi * 2.5 / 7)], atol=1e-12)
    np.testing.assert_allclose(calendar_row(t[wed], ["day_of_week"]), X[wed, 2:])


def test_only_cycles_the_data_resolves_and_spans_twice():
    assert calendar_cycles(hours("2024-01-01", 24 * 3)) == ["hour_of_day"]  # 3 days
    daily = hours("2024-01-01", 72, step_minutes=60 * 24)
    assert calendar_cycles(daily) == ["day_of_week"]  # no hours in daily readings
    assert calendar_cycles(hours("2024-01-01", 30, step_minutes=1)) == []  # 30 minutes
    with pytest.raises(DataError, match="datetime64"):
        calendar_features(np.arange(10.0))


def test_a_window_model_uses_them_for_a_shift_pattern():
    # load set by the hour of the shift plan, plus noise: a 4-reading window alone
    # cannot know where in the day it is, the covariates tell it
    t = hours("2024-01-01", 24 * 120)
    hour = (t.astype("datetime64[h]").astype(np.int64) % 24).astype(float)
    rng = np.random.default_rng(0)
    y = np.where((hour >= 6) & (hour < 22), 5.0, 1.0) + 2.0 * np.sin(2 * np.pi * hour / 24)
    y = y + rng.normal(0.0, 0.3, y.size)
    X, _ = calendar_features(t)
    n = 24 * 100

    def mae(with_calendar: bool) -> float:
        cov = X if with_calendar else None
        model = create("linear", horizon=6, window=4).fit(
            y[:n], None if cov is None else cov[:n])
        errs = []
        for i in range(n, y.size - 6):
            errs.append(np.abs(model.forecast().mean - y[i : i + 6]).mean())
            model.update(y[i], None if cov is None else cov[i])
        return float(np.mean(errs))

    assert mae(True) < 0.7 * mae(False)


def test_report_gives_them_only_where_the_chain_keeps_the_season():
    t = hours("2024-01-01", 24 * 30)
    X, names = calendar_covariates(t, [{"kind": "difference"}, {"kind": "scale"}])
    assert X.shape == (t.size, 4) and len(names) == 4
    assert calendar_covariates(t, [{"kind": "deseasonalize", "period": 24}]) == (None, [])
    assert calendar_covariates(t, [], enabled=False) == (None, [])


def _study(mine: float, base: float) -> SimpleNamespace:
    scores = [SimpleNamespace(model="mlp", mase=mine, mae=mine * 2),
              SimpleNamespace(model="seasonal_naive", mase=base, mae=base * 2)]
    return SimpleNamespace(pick=SimpleNamespace(family="mlp"),
                           score=lambda m: next(s for s in scores if s.model == m),
                           best_baseline=lambda: scores[1])


@pytest.mark.parametrize(("mine", "base", "word"), [
    (0.720, 0.836, "beats"), (0.9, 0.836, "loses"), (0.8361, 0.8359, "ties")])
def test_verdict_agrees_with_the_mase_column(mine, base, word):
    assert verdict(_study(mine, base)).startswith(word)
