"""The monitor's rule: significance tests, rollback, promotion, hysteresis, state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tsforge.errors import ConfigError
from tsforge.monitor import Monitor, MonitorConfig, diebold_mariano, sign_test

FAST = MonitorConfig(window=100, min_readings=30, patience=5, cooldown=50, alpha=0.01)


def errors(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    return rng.laplace(0.0, scale, n)


def feed(mon: Monitor, streams: dict[str, np.ndarray], **kw) -> list:
    return mon.observe_batch(streams, **kw)


# ---------------------------------------------------------------- statistics
def test_sign_test_exact_binomial_tail():
    worse, better = np.full(10, 2.0), np.ones(10)
    res = sign_test(worse, better)
    assert res.n == 10 and res.p_value == pytest.approx(1 / 1024)
    worse[:2] = 0.5  # 8 of 10 worse: P(X >= 8) = (45 + 10 + 1) / 1024
    assert sign_test(worse, better).p_value == pytest.approx(56 / 1024)


def test_diebold_mariano_detects_worse_and_not_equal_models():
    rng = np.random.default_rng(0)
    base = errors(rng, 400, 1.0)
    assert diebold_mariano(base * 1.3, base + 0.01 * rng.standard_normal(400)).p_value < 1e-6
    p_null = [diebold_mariano(errors(rng, 200, 1.0), errors(rng, 200, 1.0)).p_value
              for _ in range(200)]
    assert 0.02 < np.mean(np.asarray(p_null) < 0.05) < 0.10  # size near the nominal 5 %
    assert diebold_mariano(base, base * 1.3).p_value > 0.99  # one-sided


def test_tests_ignore_nan_pairs():
    a, b = np.array([2.0, np.nan, 3.0, 4.0, 5.0]), np.array([1.0, 1.0, np.nan, 1.0, 1.0])
    assert diebold_mariano(a, b).n == 3 and sign_test(a, b).n == 3


# ---------------------------------------------------------------- rollback
def test_rollback_when_champion_clearly_worse():
    rng = np.random.default_rng(1)
    mon = Monitor("v2", previous="v1", config=FAST)
    events = feed(mon, {"v2": errors(rng, 300, 1.4), "v1": errors(rng, 300, 1.0)},
                  timestamps=np.arange(300) * 300.0)
    kinds = [e.kind for e in events]
    assert "rollback" in kinds and kinds.index("alarm") < kinds.index("rollback")
    rb = next(e for e in events if e.kind == "rollback")
    assert (rb.from_version, rb.to_version) == ("v2", "v1") and mon.champion == "v1"
    assert rb.readings_since_alarm >= FAST.patience - 1 and rb.seconds_since_alarm >= 0
    assert rb.metrics["p_value"] < FAST.alpha and rb.metrics["ratio_champion_previous"] > 1.1
    assert "dm test p <" in rb.reason and rb.timestamp == 300.0 * (rb.step - 1)
    assert json.loads(rb.to_json())["kind"] == "rollback"
    assert mon.rejected == {"v2"} and mon.previous is None
    with pytest.raises(ConfigError, match="rolled back"):
        mon.set_challenger("v2")


def test_equal_models_never_switch_over_a_long_stream():
    # Models on one stream share most of their error (the reading's own surprise); the
    # default rule tests the margin itself, so equally good models are not switched.
    rng = np.random.default_rng(2)
    mon = Monitor("v2", previous="v1", challenger="v3")
    n = 20000
    common = errors(rng, n, 0.7)
    events = feed(mon, {v: common + errors(rng, n, 0.3) for v in ("v1", "v2", "v3")})
    assert not [e for e in events if e.switches]
    assert mon.champion == "v2"


def test_insignificant_excess_is_held_not_rolled_back():
    # 20 % worse on average but with a few readings only: the test cannot confirm it.
    rng = np.random.default_rng(3)
    cfg = MonitorConfig(window=40, min_readings=10, patience=3, alpha=1e-6, cooldown=0)
    mon = Monitor("v2", previous="v1", config=cfg)
    events = feed(mon, {"v2": errors(rng, 40, 1.5), "v1": errors(rng, 40, 1.0)})
    holds = [e for e in events if e.kind == "hold"]
    assert holds and "test p=" in holds[0].reason and mon.champion == "v2"
    assert len(holds) == 1  # reported once per alarm episode, not at every reading


def test_hysteresis_alarm_clears_only_below_the_exit_level():
    cfg = MonitorConfig(window=20, min_readings=20, patience=1000, rollback_margin=0.10,
                        clear_fraction=0.5)
    mon = Monitor("v2", previous="v1", config=cfg)
    ones = np.ones(20)
    ev = feed(mon, {"v2": 1.2 * ones, "v1": ones})  # 20 % worse: alarm
    assert [e.kind for e in ev] == ["alarm"]
    ev = feed(mon, {"v2": np.full(40, 1.08), "v1": np.ones(40)})  # inside the band: kept
    assert ev == [] and mon._alarm is not None
    ev = feed(mon, {"v2": np.full(40, 1.02), "v1": np.ones(40)})  # below 1 + 0.05: cleared
    assert [e.kind for e in ev] == ["hold"] and "cleared" in ev[0].reason


# ---------------------------------------------------------------- promotion
def test_better_challenger_promoted_then_cooldown_then_rollback():
    rng = np.random.default_rng(4)
    mon = Monitor("v1", challenger="v2", config=FAST)
    ev = feed(mon, {"v1": errors(rng, 200, 1.0), "v2": errors(rng, 200, 0.6)})
    promo = [e for e in ev if e.kind == "promote"]
    assert len(promo) == 1 and mon.champion == "v2" and mon.previous == "v1"
    assert mon.challenger is None
    # v2 now degrades: no switch within the cooldown, rollback after it.
    ev = feed(mon, {"v2": errors(rng, 400, 2.0), "v1": errors(rng, 400, 1.0)})
    rb = [e for e in ev if e.kind == "rollback"]
    assert len(rb) == 1 and rb[0].step - promo[0].step > FAST.cooldown
    assert mon.champion == "v1"


def test_drift_alarm_and_low_coverage_raise_alarms_without_switching():
    rng = np.random.default_rng(5)
    cfg = MonitorConfig(window=60, min_readings=30, patience=5, coverage_level=0.9)
    mon = Monitor("v2", previous="v1", config=cfg)
    e1, e2 = errors(rng, 100, 1.0), errors(rng, 100, 1.0)
    drift = np.zeros(100, bool)
    drift[10] = True
    ev = feed(mon, {"v2": e2, "v1": e1}, drift=drift, covered=np.ones(100))
    assert [e.kind for e in ev][:2] == ["alarm", "hold"] and "drift" in ev[0].reason
    mon2 = Monitor("v2", previous="v1", config=cfg)
    ev = feed(mon2, {"v2": e2, "v1": e1}, covered=(np.arange(100) % 2 == 0).astype(float))
    assert ev and ev[0].kind == "alarm" and "coverage" in ev[0].reason
    assert not [e for e in ev if e.switches]


def test_bad_values_are_gaps_not_crashes():
    mon = Monitor("v2", previous="v1", config=FAST)
    assert mon.observe({"v2": float("nan"), "v1": "garbage", "other": 1.0}) == []
    assert mon.observe({}) == []
    m = mon.metrics()
    assert m["mae_champion"] is None and m["pairs_previous"] == 0


def test_state_dict_round_trip_gives_identical_decisions():
    rng = np.random.default_rng(6)
    streams = {"v2": errors(rng, 400, 1.3), "v1": errors(rng, 400, 1.0)}
    full = Monitor("v2", previous="v1", config=FAST)
    ev_full = feed(full, streams)
    part = Monitor("v2", previous="v1", config=FAST)
    feed(part, {k: v[:37] for k, v in streams.items()})
    resumed = Monitor("x", config=FAST)
    resumed.load_state_dict(part.state_dict())
    ev_res = feed(resumed, {k: v[37:] for k, v in streams.items()})
    key = [(e.kind, e.step, e.to_version) for e in ev_full if e.step > 37]
    assert [(e.kind, e.step, e.to_version) for e in ev_res] == key


def test_config_validation_names_the_problem():
    with pytest.raises(ConfigError, match="min_readings"):
        MonitorConfig(window=10, min_readings=20)
    with pytest.raises(ConfigError, match="valid: dm, sign"):
        MonitorConfig(test="t")
    with pytest.raises(ConfigError, match="unknown monitor setting"):
        MonitorConfig.from_dict({"windw": 3})
    with pytest.raises(ConfigError, match="must differ"):
        Monitor("v1", previous="v1")
    assert math.isclose(MonitorConfig.from_dict({"alpha": 0.05}).alpha, 0.05)
