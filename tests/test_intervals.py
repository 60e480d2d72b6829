"""Online conformal intervals: finite-sample quantile, coverage under drift, and the
library, backtest and edge runtime agreeing on the same intervals."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tsforge.backtest import backtest
from tsforge.checks import synthetic_series
from tsforge.errors import ConfigError
from tsforge.intervals import ConformalIntervals, IntervalConfig, replay
from tsforge.metrics import interval_coverage, interval_width
from tsforge.models import create
from tsforge.models.transformed import TransformedForecaster

H = 3
PHI = 0.7


def ar_stream(n: int, seed: int, change_at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) readings and the oracle H-step forecasts made just before each reading.

    With ``change_at``, the innovation standard deviation triples from that reading on.
    """
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    if change_at is not None:
        e[change_at:] *= 3.0
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = PHI * y[t - 1] + e[t]
    last = np.r_[0.0, y[:-1]]
    preds = np.stack([PHI ** (h + 1) * last for h in range(H)], axis=1)  # (n, H)
    return y, preds


def coverages(bands, y, segment=slice(None)):
    return {lvl: interval_coverage(lo[segment], hi[segment], y[segment])
            for lvl, (lo, hi) in bands.items()}


@pytest.mark.parametrize("unbounded,top", [("inf", np.inf), ("window_max", 9.0)])
def test_half_width_is_the_finite_sample_conformal_quantile(unbounded, top):
    cfg = IntervalConfig(levels=(0.5, 0.9, 0.99), window=9, warmup=9, gamma=0.0,
                         unbounded=unbounded)
    ci = ConformalIntervals(cfg, horizon=1)
    for r in (3, 1, 4, 9, 5, 2, 6, 8, 7):  # residuals 1..9, in no order
        ci.record(np.zeros(1))
        ci.observe(float(r))
    q = ci.half_widths()[:, 0]
    # rank ceil((n + 1)(1 - a)) of n = 9: 5th, 9th, and 10th (> n: unbounded)
    np.testing.assert_array_equal(q, [5.0, 9.0, top])


def test_working_level_stays_in_the_range_the_paper_proves():
    cfg = IntervalConfig(levels=(0.95,), gamma=0.05, window=20, warmup=5)
    ci = ConformalIntervals(cfg, horizon=1)
    for t in range(200):  # residuals grow forever: every capped interval misses
        ci.record(np.zeros(1))
        ci.observe(float(t))
    assert ci.alpha[0, 0] == pytest.approx(-0.05)
    assert np.isfinite(ci.half_widths()).all()


def test_no_interval_before_warmup_and_imputed_readings_score_nothing():
    cfg = IntervalConfig(levels=(0.8,), warmup=5, window=10)
    ci = ConformalIntervals(cfg, horizon=2)
    for t in range(6):
        ci.record(np.zeros(2))
        assert ci.intervals(np.zeros(2)) == {}, f"interval issued after {t} readings"
        ci.observe(1.0 if t != 2 else float("nan"))
    # step 1 scored readings 0,1,3,4,5 (5); step 2 only 1,3,4,5 (4, and reading 2 lost)
    np.testing.assert_array_equal(ci.count, [5, 4])
    ci.record(np.zeros(2))
    assert not ci.ready
    ci.observe(1.0)
    ci.record(np.zeros(2))
    lo, hi = ci.intervals(np.full(2, 10.0))[0.8]
    np.testing.assert_array_equal(hi - 10.0, [1.0, 1.0])
    np.testing.assert_array_equal(lo, [9.0, 9.0])
    ci.record(np.full(2, np.nan))  # a non-finite forecast is never scored
    ci.observe(1.0)
    np.testing.assert_array_equal(ci.count, [6, 6])  # only the older step-2 forecast


def test_aci_adapts_the_level_where_misses_happen():
    cfg = IntervalConfig(levels=(0.9,), gamma=0.01, window=20, warmup=5)
    ci = ConformalIntervals(cfg, horizon=1)
    for _ in range(10):
        ci.record(np.zeros(1))
        ci.observe(1.0)
    before = ci.alpha.copy()
    ci.record(np.zeros(1))
    ci.observe(100.0)  # a miss: the working miscoverage drops by gamma * (1 - a)
    np.testing.assert_allclose(ci.alpha - before, [[0.01 * (0.1 - 1.0)]])


@pytest.mark.parametrize("seed", [0, 1])
def test_coverage_is_nominal_on_a_stationary_ar_stream(seed):
    y, preds = ar_stream(5000, seed)
    cov = coverages(replay(preds, y, IntervalConfig()), y)
    for lvl, c in cov.items():
        assert abs(c - lvl) < 0.02, f"level {lvl}: coverage {c:.3f}"


def test_aci_keeps_coverage_through_a_variance_change_split_conformal_does_not():
    y, preds = ar_stream(6000, seed=3, change_at=3000)
    after = slice(3000, None)
    aci = coverages(replay(preds, y, IntervalConfig(method="aci")), y, after)
    split = coverages(replay(preds, y, IntervalConfig(method="split")), y, after)
    for lvl in (0.8, 0.95):
        assert abs(aci[lvl] - lvl) < 0.02, f"ACI at {lvl}: {aci[lvl]:.3f}"
        assert split[lvl] < lvl - 0.25, f"split conformal at {lvl}: {split[lvl]:.3f}"


def test_state_round_trips_through_arrays_and_json():
    y, preds = ar_stream(400, seed=5)
    cfg = IntervalConfig(window=50)
    a = ConformalIntervals(cfg, H)
    for t in range(200):
        a.record(preds[t])
        a.observe(y[t])
    b = ConformalIntervals(cfg, H)
    b.load_state_dict(a.state_dict())
    c = ConformalIntervals.from_json(json.loads(json.dumps(a.to_json())))
    for t in range(200, 400):
        for ci in (a, b, c):
            ci.record(preds[t])
        ref = a.intervals(preds[t])
        for other in (b, c):
            got = other.intervals(preds[t])
            for lvl in cfg.levels:
                np.testing.assert_array_equal(got[lvl][0], ref[lvl][0])
                np.testing.assert_array_equal(got[lvl][1], ref[lvl][1])
        for ci in (a, b, c):
            ci.observe(y[t])
    with pytest.raises(ConfigError, match="shape"):
        ConformalIntervals(cfg, H + 1).load_state_dict(a.state_dict())


def test_bad_interval_settings_are_explained():
    with pytest.raises(ConfigError, match="levels"):
        IntervalConfig(levels=(0.8, 1.2))
    with pytest.raises(ConfigError, match="method"):
        IntervalConfig(method="bootstrap")
    with pytest.raises(ConfigError, match="warmup"):
        IntervalConfig(window=10, warmup=20)


def test_backtest_scores_the_intervals_the_wrapper_issues():
    y, _ = synthetic_series(n=900)
    cfg = IntervalConfig(window=100)
    result = backtest(y, models=["naive"], horizon=H, transforms=[], period=12, intervals=cfg)
    score = result.scores[0]
    assert set(score.coverage) == {"0.8", "0.95"} == set(score.interval_width)
    expected = replay(result.predictions["naive"], result.actual, cfg)
    for lvl, (lo, hi) in expected.items():
        got_lo, got_hi = result.intervals["naive"][lvl]
        np.testing.assert_array_equal(got_lo, lo)
        np.testing.assert_array_equal(got_hi, hi)
        assert score.coverage[f"{lvl:g}"] == interval_coverage(lo, hi, result.actual)
        assert score.interval_width[f"{lvl:g}"] == interval_width(lo, hi)
        assert abs(score.coverage[f"{lvl:g}"] - lvl) < 0.06
    assert score.interval_width["0.95"] > score.interval_width["0.8"] > 0
    off = backtest(y, models=["naive"], horizon=H, transforms=[], period=12, intervals=None)
    assert off.scores[0].coverage == {} and off.scores[0].mae == score.mae


def test_wrapped_forecast_carries_intervals_in_engineering_units():
    y, X = synthetic_series(n=700, n_covariates=1)
    chain = [{"kind": "difference"}, {"kind": "scale"}]
    model = TransformedForecaster(create("naive", horizon=H), chain,
                                  intervals=IntervalConfig(warmup=10))
    model.fit(y[:400] * 100.0, X[:400])
    assert model.forecast().intervals == {}
    for t in range(400, 450):
        model.learn_one(y[t] * 100.0, X[t])
    f = model.forecast()
    lo, hi = f.intervals[0.95]
    assert np.all(lo < f.mean) and np.all(f.mean < hi)
    # residuals are in engineering units: about 100x the unscaled series' spread
    assert 30.0 < float(np.mean(hi - lo)) < 3000.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tsforge.export import export_onnx

    y, X = synthetic_series(n=900, n_covariates=1)
    cfg = IntervalConfig(window=60, warmup=10, gamma=0.02)
    model = TransformedForecaster(
        create("mlp", horizon=H, window=8, hidden=16, epochs=2),
        [{"kind": "difference"}, {"kind": "scale"}], intervals=cfg)
    model.fit(y[:500], X[:500])
    for t in range(500, 600):  # residuals accumulated before export travel with it
        model.learn_one(y[t], X[t])
    path = tmp_path_factory.mktemp("artifact") / "mlp.onnx"
    export_onnx(model, path, sensor="line-1", parity_steps=50)
    return model, path, y, X


def test_manifest_records_interval_config_and_residual_state(exported):
    from tsforge.runtime import load_artifact

    model, path, _, _ = exported
    meta = load_artifact(path).meta["intervals"]
    assert meta["config"] == model.interval_config.to_dict()
    assert meta["config"]["gamma"] == 0.02 and meta["config"]["levels"] == [0.8, 0.95]
    np.testing.assert_array_equal(meta["state"]["count"], model.conformal_.count)
    np.testing.assert_array_equal(meta["state"]["alpha"], model.conformal_.alpha)


def test_runtime_intervals_equal_library_intervals(exported):
    from tsforge.runtime import StreamingRuntime

    model, path, y, X = exported
    model = copy.deepcopy(model)  # the fixture is shared: stream a copy
    runtime = StreamingRuntime(path)
    for t in range(600, 800):
        served = runtime.push_with_intervals("line-1", y[t], X[t])
        model.learn_one(y[t], X[t])
        ref = model.forecast()
        np.testing.assert_allclose(served.mean, ref.mean, rtol=1e-5, atol=1e-4)
        assert set(served.intervals) == set(ref.intervals) == {0.8, 0.95}
        for lvl, (lo, hi) in ref.intervals.items():
            np.testing.assert_allclose(served.intervals[lvl][0], lo, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(served.intervals[lvl][1], hi, rtol=1e-5, atol=1e-4)
    # a sensor the model has never seen warms up its own residual windows
    assert runtime.push_with_intervals("new", y[600], X[600]).intervals == {}
    assert StreamingRuntime(path, intervals=False).push_with_intervals(
        "line-1", y[600], X[600]).intervals == {}


def test_edge_cli_writes_interval_columns(exported):
    import io

    from tsforge.runtime import StreamingRuntime
    from tsforge.runtime.cli import run_stream

    _, path, y, X = exported
    source = io.StringIO("".join(f"{t},line-1,{float(y[t])!r},{float(X[t, 0])!r}\n"
                                 for t in range(600, 640))
                         + "640,fresh,1.0,1.0\n")
    sink, dead = io.StringIO(), io.StringIO()
    assert run_stream(str(path), source, sink, dead, intervals=True) == 0
    header, *rows = [r.split(",") for r in sink.getvalue().strip().splitlines()]
    assert header[2:5] == ["step_1", "step_2", "step_3"]
    assert header[5:8] == ["lower_0.8_step_1", "lower_0.8_step_2", "lower_0.8_step_3"]
    assert len(header) == 2 + 3 * 5
    runtime = StreamingRuntime(path)
    for t in range(600, 640):
        ref = runtime.push_with_intervals("line-1", y[t], X[t])
    last = np.array(rows[39][2:], dtype=float)
    np.testing.assert_allclose(last[:3], ref.mean, rtol=1e-5)
    np.testing.assert_allclose(last[-3:], ref.intervals[0.95][1], rtol=1e-5)
    assert rows[40][5:] == [""] * 12  # a new sensor warms up first
