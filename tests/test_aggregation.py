"""BOA aggregation of experts: the regret guarantee, drift restarts, delays, state."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from tsforge.aggregation import AggregationConfig, Aggregator, summary


def _experts(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A target and three experts: biased up, biased down, and a noisy one.

    The best fixed convex combination (about half of each biased expert) is far
    better than any single expert, so the test separates the two guarantees.
    """
    rng = np.random.default_rng(seed)
    y = np.sin(np.arange(n) / 20.0) + 0.1 * rng.standard_normal(n)
    x = np.column_stack([y + 0.6 + 0.1 * rng.standard_normal(n),
                         y - 0.5 + 0.1 * rng.standard_normal(n),
                         y + 0.8 * rng.standard_normal(n)])
    return y, x


def _run(agg: Aggregator, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate forecasts (H = 1) and the instantaneous regrets of every step."""
    preds, regrets = np.empty(len(y)), np.empty_like(x)
    for t in range(len(y)):
        preds[t] = agg.combine(x[t][None])[0]
        agg.push(x[t][None])
        regrets[t] = agg.update(y[t])[0]
    return preds, regrets


def _best_convex(y: np.ndarray, x: np.ndarray, step: float = 0.02) -> float:
    """Cumulative absolute loss of the best fixed convex combination (grid search)."""
    best = np.inf
    grid = np.arange(0.0, 1.0 + 1e-9, step)
    for a, b in itertools.product(grid, grid):
        if a + b <= 1 + 1e-9:
            q = np.array([a, b, max(0.0, 1 - a - b)])
            best = min(best, float(np.abs(x @ q - y).sum()))
    return best


def test_fixed_rate_regret_is_within_the_bound_against_experts_and_combinations() -> None:
    y, x = _experts()
    spread = float((x.max(axis=1) - x.min(axis=1)).max())  # bounds |r| (absolute loss)
    eta = 1.0 / (2.0 * spread)
    preds, r = _run(Aggregator(AggregationConfig(n_experts=3, eta=eta)), y, x)
    bound = eta * (r ** 2).sum(axis=0) + np.log(3) / eta  # per expert
    # the linearised regret obeys the bound for every expert ...
    assert np.all(r.sum(axis=0) <= bound), (r.sum(axis=0), bound)
    # ... so does the true cumulative loss against each expert (convexity) ...
    loss = np.abs(preds - y).sum()
    expert_loss = np.abs(x - y[:, None]).sum(axis=0)
    assert np.all(loss - expert_loss <= bound)
    # ... and against the best fixed convex combination
    assert loss - _best_convex(y, x) <= bound.max()
    # the bound is not vacuous here: the aggregate beats the best expert clearly
    assert loss < 0.5 * expert_loss.min()


def test_adaptive_rates_match_the_best_convex_combination_without_tuning() -> None:
    y, x = _experts()
    agg = Aggregator(AggregationConfig(n_experts=3))
    preds, r = _run(agg, y, x)
    loss, best = np.abs(preds - y).sum(), _best_convex(y, x)
    v = (r ** 2).sum(axis=0).max()
    e = np.abs(r).max()
    # BOA's second-order bound, of order sqrt(V log K) + E log K
    assert loss - best <= 4 * np.sqrt(v * np.log(3)) + 4 * e * np.log(3), (loss, best)
    assert loss < 1.15 * best
    assert agg.weights[0, 2] < 0.05  # the noisy expert is dropped


def test_weights_move_to_the_better_expert_after_a_switch_and_restart() -> None:
    n, switch = 4000, 3000
    rng = np.random.default_rng(1)
    y = rng.standard_normal(n)
    good = y + 0.05 * rng.standard_normal(n)
    bad = y + 1.0 + 0.05 * rng.standard_normal(n)
    x = np.column_stack([np.where(np.arange(n) < switch, good, bad),
                         np.where(np.arange(n) < switch, bad, good)])

    def steps_to_follow(restart: bool, share: float = 0.3) -> int:
        agg = Aggregator(AggregationConfig(n_experts=2, share=share))
        for t in range(n):
            agg.push(x[t][None])
            agg.update(y[t])
            if t == switch - 1:
                assert agg.weights[0, 0] > 0.99
            if t == switch + 2 and restart:  # a detector fires just after the change
                agg.restart()
            if t >= switch and agg.weights[0, 1] > 0.9:
                return t - switch
        return n

    with_restart = steps_to_follow(True)
    assert with_restart <= 20, with_restart
    # without the restart BOA takes far longer; without the share floor the dropped
    # expert restarts from a weight of about exp(-30) and needs twice as long
    assert steps_to_follow(False) > 10 * with_restart
    assert steps_to_follow(True, share=0.0) > 1.5 * with_restart


def test_each_horizon_step_learns_its_own_weights_from_delayed_targets() -> None:
    n, h = 1500, 3
    rng = np.random.default_rng(2)
    y = rng.standard_normal(n + h)
    agg = Aggregator(AggregationConfig(n_experts=2, horizon=h))
    for t in range(n):
        truth = y[t + 1:t + 1 + h]
        # expert 0 is right one step ahead only, expert 1 beyond
        f0 = np.where(np.arange(h) == 0, truth, truth + 1.0)
        f1 = np.where(np.arange(h) == 0, truth + 1.0, truth)
        agg.push(np.column_stack([f0, f1]))
        agg.update(y[t + 1])
    w = agg.weights
    assert w[0, 0] > 0.95 and w[1, 1] > 0.95 and w[2, 1] > 0.95


def test_nonfinite_forecasts_and_readings_are_skipped() -> None:
    agg = Aggregator(AggregationConfig(n_experts=2))
    assert agg.combine(np.array([[np.nan, 2.0]]))[0] == 2.0
    assert np.isnan(agg.combine(np.array([[np.nan, np.nan]]))[0])
    for _ in range(50):
        agg.push(np.array([[np.nan, 1.0]]))
        agg.update(1.0)
        agg.push(np.array([[0.0, 1.0]]))
        assert not agg.update(float("nan")).any()
    assert np.all(np.isfinite(agg.weights)) and agg.n_updates == 50


def test_state_round_trips_and_resumes_exactly() -> None:
    y, x = _experts(400)
    agg = Aggregator(AggregationConfig(n_experts=3, horizon=2, share=0.2))
    x2 = np.stack([x, x + 0.1], axis=1)  # (T, H, K)
    for t in range(200):
        agg.push(x2[t])
        agg.update(y[t])
    agg.restart()
    clone = Aggregator.from_state(agg.state_dict())
    for t in range(200, 400):
        for a in (agg, clone):
            a.push(x2[t])
            a.update(y[t])
    np.testing.assert_array_equal(agg.weights, clone.weights)
    with pytest.raises(ValueError, match="config"):
        Aggregator(AggregationConfig(n_experts=3)).load_state_dict(agg.state_dict())


def test_config_is_validated_and_summary_reads_well() -> None:
    with pytest.raises(ValueError, match="loss"):
        AggregationConfig(n_experts=2, loss="pinball")
    with pytest.raises(ValueError, match="scale"):
        AggregationConfig(n_experts=2, scale=0.0)
    assert summary(["esn", "linear", "ets"], np.array([0.12, 0.27, 0.61])) == \
        "ets 0.61, linear 0.27, esn 0.12"


def test_aggregation_imports_without_heavy_dependencies() -> None:
    code = ("import sys, tsforge.aggregation; "
            "print(sorted(m for m in ('torch', 'statsmodels', 'river', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
