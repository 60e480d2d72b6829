"""Batched BOA: a batch of S series equals S independent per-series references."""

from __future__ import annotations

import numpy as np
import pytest
from _boa_reference import ReferenceAggregator

from tsforge.aggregation import AggregationConfig, Aggregator, BatchAggregator


def _stream(s: int, t: int, h: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Readings ``(T, S)`` and expert forecasts ``(T, S, H, K)`` with NaN holes in both."""
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.standard_normal((t, s)), axis=0)
    bias = rng.standard_normal((s, 1, k))
    x = y[:, :, None, None] + bias + 0.5 * rng.standard_normal((t, s, h, k))
    x[rng.random(x.shape) < 0.05] = np.nan  # an expert fails now and then
    x[rng.random((t, s)) < 0.02] = np.nan  # every expert of a series fails at once
    y[rng.random(y.shape) < 0.05] = np.nan  # lost readings
    return y, x


@pytest.mark.parametrize(("h", "loss", "eta"), [(1, "absolute", 0.0), (3, "absolute", 0.0),
                                                (4, "square", 0.0), (2, "absolute", 0.7)])
def test_a_batch_equals_independent_reference_series(h: int, loss: str, eta: float) -> None:
    s, t, k = 5, 400, 3
    y, x = _stream(s, t, h, k, seed=h)
    cfg = AggregationConfig(n_experts=k, horizon=h, loss=loss, scale=0.8, eta=eta, share=0.25)
    prior = np.array([0.5, 0.3, 0.2])
    refs = [ReferenceAggregator(cfg, prior) for _ in range(s)]
    batch = BatchAggregator(cfg, capacity=2, prior=prior)
    batch.grow(s)  # series added after the start begin at the same prior
    rng = np.random.default_rng(99)
    everyone = np.arange(s)
    for step in range(t):
        # a subset of series served at each step (the others wait), in shuffled order
        sel = rng.permutation(s)[: rng.integers(1, s + 1)] if step % 3 else everyone
        got = batch.combine(sel, x[step, sel])
        want = np.stack([refs[i].combine(x[step, i]) for i in sel])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)
        batch.push(sel, x[step, sel])
        r = batch.update(sel, y[step, sel])
        for j, i in enumerate(sel):
            refs[i].push(x[step, i])
            np.testing.assert_allclose(r[j], refs[i].update(y[step, i]), rtol=0, atol=1e-12)
        if step % 97 == 50:  # a drift restart of some of the series
            who = sel[:2]
            batch.restart(who)
            for i in who:
                refs[i].restart()
    for i in range(s):
        w = batch.weights(np.array([i]))[0]
        np.testing.assert_allclose(w, refs[i].weights, rtol=0, atol=1e-12)
        np.testing.assert_allclose(batch.regret[i], refs[i].regret, rtol=0, atol=1e-12)
        assert batch.n_updates[i] == refs[i].n_updates
        assert batch.n_pending[i] == refs[i].n_pending


def test_the_single_series_aggregator_is_the_reference_bit_for_bit() -> None:
    """``auto`` in the library (one series) gives exactly what it gave before batching."""
    y, x = _stream(1, 600, 3, 4, seed=7)
    cfg = AggregationConfig(n_experts=4, horizon=3, scale=1.3)
    agg, ref = Aggregator(cfg), ReferenceAggregator(cfg)
    for step in range(600):
        assert np.array_equal(agg.combine(x[step, 0]), ref.combine(x[step, 0]), equal_nan=True)
        agg.push(x[step, 0])
        ref.push(x[step, 0])
        assert np.array_equal(agg.update(y[step, 0]), ref.update(y[step, 0]))
        if step == 300:
            agg.restart()
            ref.restart()
    assert np.array_equal(agg.weights, ref.weights)
    assert np.array_equal(agg.regularized, ref.regularized)


def test_series_state_round_trips_between_a_batch_and_a_single_aggregator() -> None:
    y, x = _stream(3, 200, 2, 3, seed=3)
    cfg = AggregationConfig(n_experts=3, horizon=2)
    batch = BatchAggregator(cfg, capacity=3)
    for step in range(200):
        batch.push(slice(0, 3), x[step])
        batch.update(slice(0, 3), y[step])
    single = Aggregator.from_state(batch.state_dict(1))
    np.testing.assert_array_equal(single.weights, batch.weights(np.array([1]))[0])
    other = BatchAggregator(cfg, capacity=4)
    other.load_state_dict(3, single.state_dict())
    np.testing.assert_array_equal(other.weights(np.array([3]))[0], single.weights)
    np.testing.assert_array_equal(other.pending[3], batch.pending[1])
