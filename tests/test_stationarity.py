"""Stationarity analysis on golden streams: fixed seeds, exact expected decisions.

Each stream is a textbook case whose right answer is known (white noise is
stationary, a random walk has a unit root, ...).  The seeds are fixed so the
expected decisions are exact; a change in any of them means the analysis changed.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tsforge.errors import ConfigError, DataError
from tsforge.preprocess import (
    StationarityReport,
    TransformChain,
    analyze,
    plot_decomposition,
    seasonality,
    stationarity,
)
from tsforge.preprocess.stationarity import decide

pytest.importorskip("statsmodels")

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAB_MACHINE = DATASETS / "nab" / "realKnownCause" / "machine_temperature_system_failure.csv"


# --- golden streams -----------------------------------------------------------------


def white_noise(seed: int = 1, n: int = 1000) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n)


def random_walk(seed: int = 1, n: int = 1000) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def ar1(seed: int = 1, phi: float = 0.5, n: int = 1000) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n)
    y = np.empty(n)
    y[0] = e[0]
    for t in range(1, n):
        y[t] = phi * y[t - 1] + e[t]
    return y


def trend_season(seed: int = 1, n: int = 960, period: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 0.02 * t + 2.0 * np.sin(2 * np.pi * t / period) + rng.normal(0.0, 0.5, n)


def sine(seed: int = 1, n: int = 1000, period: int = 50) -> np.ndarray:
    t = np.arange(n)
    return 2.0 * np.sin(2 * np.pi * t / period) + np.random.default_rng(seed).normal(size=n)


def daily_on_wandering_level(seed: int = 2, n: int = 3000, period: int = 144) -> np.ndarray:
    """Sensor-like: a long season on a slowly wandering level, plus measurement noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = np.cumsum(rng.normal(0.0, 0.05, n))
    return 50.0 + 3.0 * np.sin(2 * np.pi * t / period) + level + rng.normal(0.0, 1.0, n)


def oscillating_loop(seed: int = 0, n: int = 3000) -> np.ndarray:
    """AR(2) with complex roots: a cycle of about 10 samples whose phase drifts."""
    e = np.random.default_rng(seed).normal(size=n)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 1.5 * y[t - 1] - 0.9 * y[t - 2] + e[t]
    return y


def kinds(report: StationarityReport) -> list[str]:
    return [step["kind"] for step in report.transforms]


# --- decisions on golden streams ----------------------------------------------------


def test_white_noise_is_stationary_without_season() -> None:
    report = analyze(white_noise(), name="white_noise")
    assert report.decision == "stationary"
    assert report.period is None and report.season_acf is None
    assert report.seasonal_strength is None
    assert report.transforms == [{"kind": "scale"}]
    assert report.after["decision"] == "stationary"


def test_random_walk_is_difference_stationary() -> None:
    report = analyze(random_walk())
    assert report.decision == "difference-stationary"
    assert report.adf_pvalue > 0.05 and report.kpss_pvalue < 0.05
    assert report.period is None
    assert kinds(report) == ["difference", "scale"]
    assert report.after["decision"] == "stationary"
    assert report.trend_strength > 0.9


def test_trend_plus_season_24_is_deseasonalized_then_differenced() -> None:
    report = analyze(trend_season())
    assert report.period == 24
    assert report.season_acf > 0.8
    assert report.seasonal_strength > 0.8 and report.trend_strength > 0.9
    assert report.transforms == [
        {"kind": "deseasonalize", "period": 24},
        {"kind": "difference"},
        {"kind": "scale"},
    ]
    assert report.after["decision"] == "stationary"


def test_ar1_is_stationary() -> None:
    report = analyze(ar1())
    assert report.decision == "stationary"
    assert report.period is None
    assert kinds(report) == ["scale"]


def test_sine_period_50_is_detected() -> None:
    report = analyze(sine())
    assert report.decision == "stationary"
    assert report.period == 50
    assert kinds(report) == ["deseasonalize", "scale"]


def test_long_season_on_wandering_level_is_detected() -> None:
    # First differences would hide this season (amplitude x 2 sin(pi/144) = 0.04).
    report = analyze(daily_on_wandering_level())
    assert report.decision == "non-stationary"
    assert report.period == 144
    assert kinds(report) == ["deseasonalize", "difference", "scale"]
    assert report.after["decision"] == "stationary"


def season_on_slow_wander(seed: int = 1, n: int = 3000, period: int = 24) -> np.ndarray:
    """A daily season on a mean-reverting but slow AR(1) level (phi 0.98): no unit root."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.3, n)
    level = np.zeros(n)
    for t in range(1, n):
        level[t] = 0.98 * level[t - 1] + e[t]
    return 10.0 + 2.0 * np.sin(2 * np.pi * np.arange(n) / period) + level + rng.normal(0, 0.5, n)


def test_deseasonalized_slow_wander_is_not_differenced() -> None:
    # ADF rejects a unit root, KPSS rejects level stationarity: before this rule the
    # chain differenced it (deseasonalize -> difference -> scale), which costs accuracy
    # on the ETTh1 loads (docs/accuracy.md); only a unit root calls for a difference.
    report = analyze(season_on_slow_wander())
    assert report.decision == "non-stationary" and report.period == 24
    assert kinds(report) == ["deseasonalize", "scale"]
    assert report.after["adf_pvalue"] < 0.05
    assert any("not differenced" in r for r in report.reasons)
    assert not any("did not pass both tests" in r for r in report.reasons)


def test_ett_loads_are_deseasonalized_not_differenced() -> None:
    # The factory example's ETTh1 training part (70 %): HUFL has ADF p < 0.001 and
    # KPSS p = 0.042 after deseasonalizing; it used to be differenced.
    path = Path(__file__).resolve().parents[1] / "examples" / "data" / "factory" / "ETTh1.csv"
    if not path.exists():
        pytest.skip("examples/data/factory/ETTh1.csv not present")
    import csv

    with path.open() as fh:
        y = np.array([float(row["HUFL"]) for row in csv.DictReader(fh)])
    report = analyze(y[: int(len(y) * 0.7)])
    assert kinds(report) == ["deseasonalize", "scale"]


def test_drifting_cycle_is_seen_but_not_subtracted() -> None:
    # A fixed seasonal profile cannot remove a cycle whose phase wanders.
    report = analyze(oscillating_loop())
    assert report.decision == "stationary"
    assert report.period == 10 and report.seasonal_strength > 0.3
    assert kinds(report) == ["scale"]
    assert any("cycle that drifts" in r for r in report.reasons)


def test_analysis_emits_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyze(random_walk())
        analyze(trend_season())


def test_random_walk_slow_waves_are_not_a_season() -> None:
    for seed in range(3):
        est = seasonality.detect_period(random_walk(seed, n=5000), detrend="local")
        assert est.period is None, f"seed {seed}: spurious period {est.period}"


@pytest.mark.parametrize(
    ("adf_p", "kpss_p", "kpss_trend_p", "expected"),
    [
        (0.001, 0.10, 0.10, "stationary"),
        (0.41, 0.01, 0.01, "difference-stationary"),
        (0.41, 0.10, 0.10, "difference-stationary"),  # inconclusive
        (0.001, 0.01, 0.10, "trend-stationary"),
        (0.001, 0.01, 0.01, "non-stationary"),
    ],
)
def test_decision_table(adf_p: float, kpss_p: float, kpss_trend_p: float, expected: str) -> None:
    decision, reason = decide(adf_p, kpss_p, kpss_trend_p, alpha=0.05)
    assert decision == expected
    assert "ADF" in reason and "KPSS" in reason


# --- report contents ----------------------------------------------------------------


def test_report_is_json_and_readable() -> None:
    report = analyze(trend_season(), name="line_7_temp")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["name"] == "line_7_temp" and data["period"] == 24
    assert data["transforms"][0] == {"kind": "deseasonalize", "period": 24}
    text = report.summary()
    assert "line_7_temp" in text and "deseasonalize(24)" in text
    assert any("unit root" in r for r in report.reasons)


def test_recommended_chain_round_trips() -> None:
    y = trend_season()
    chain = TransformChain.from_spec(analyze(y).transforms).fit(y)
    np.testing.assert_allclose(chain.inverse_transform(chain.transform(y)), y, atol=1e-9)


def test_long_series_runs_on_the_warm_up_window() -> None:
    y = random_walk(n=3000)
    report = analyze(y, max_points=1000)
    assert report.n == 3000 and report.window == 1000
    assert "most recent 1000 of 3000" in report.reasons[0]
    same = analyze(y[-1000:])
    assert report.adf_pvalue == same.adf_pvalue


def test_given_period_skips_detection() -> None:
    report = analyze(trend_season(), period=24)
    assert report.period == 24 and report.season_acf > 0.8
    assert any("given by the caller" in r for r in report.reasons)


def test_constant_series_is_reported_not_raised() -> None:
    report = analyze(np.full(200, 7.0))
    assert report.decision == "stationary" and report.transforms == [{"kind": "scale"}]
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("y", "kwargs", "error", "match"),
    [
        (np.r_[np.ones(50), np.nan], {}, DataError, "non-finite"),
        (np.ones(10), {}, DataError, "at least 20"),
        (np.ones((30, 2)), {}, DataError, "1-D"),
        (white_noise(), {"alpha": 1.5}, ConfigError, "alpha"),
        (white_noise(), {"max_points": 5}, ConfigError, "max_points"),
        (white_noise(), {"period": 600}, ConfigError, "period"),
        (white_noise(), {"max_period": 1}, ConfigError, "max_period"),
    ],
)
def test_bad_input_says_what_to_fix(y, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        analyze(y, **kwargs)


def test_docstring_examples_run() -> None:
    for module in (stationarity, seasonality):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


# --- plot, import weight, real data -------------------------------------------------


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    y = trend_season()
    path = plot_decomposition(y, analyze(y), tmp_path / "plots" / "ts.png", title="golden")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_rejects_a_series_of_another_length(tmp_path: Path) -> None:
    report = analyze(white_noise())
    with pytest.raises(DataError, match="describes 1000 readings"):
        plot_decomposition(white_noise(n=500), report, tmp_path / "x.png")


def test_import_needs_numpy_only() -> None:
    code = (
        "import sys, tsforge.preprocess; "
        "heavy = [m for m in ('statsmodels', 'matplotlib', 'pandas', 'scipy') "
        "if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not NAB_MACHINE.exists(), reason=f"{NAB_MACHINE} not present")
def test_nab_machine_temperature() -> None:
    values = np.genfromtxt(NAB_MACHINE, delimiter=",", skip_header=1, usecols=1)
    assert values.size == 22695
    report = analyze(values, name="machine_temperature")
    assert np.isfinite([report.adf_pvalue, report.kpss_pvalue]).all()
    assert np.isfinite([report.after["adf_pvalue"], report.after["kpss_pvalue"]]).all()
    assert report.window == 5000
    assert report.decision == "difference-stationary"
    assert report.period is None
    assert kinds(report) == ["difference", "scale"]
