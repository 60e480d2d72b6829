"""Units of the columnar engine against the per-series reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.engine.chain import ChainArrays, ChainSet
from tsforge.engine.conformal import ConformalArrays
from tsforge.engine.latency import LatencyHistogram
from tsforge.engine.shadow import previous_rows
from tsforge.intervals import ConformalIntervals, IntervalConfig
from tsforge.preprocess.transforms import TransformChain


@pytest.mark.parametrize("method,unbounded", [("aci", "window_max"), ("aci", "inf"),
                                              ("split", "window_max")])
def test_conformal_arrays_equal_per_series_trackers(method: str, unbounded: str) -> None:
    cfg = IntervalConfig(levels=(0.5, 0.9), window=12, warmup=3, gamma=0.05, method=method,
                         unbounded=unbounded)
    S, H, T = 6, 3, 80
    rng = np.random.default_rng(3)
    arrays = ConformalArrays(cfg, H, capacity=2)
    arrays.grow(S)
    refs = [ConformalIntervals(cfg, H) for _ in range(S)]
    for t in range(T):
        idx = rng.permutation(S)[: rng.integers(1, S + 1)]  # a subset, in any order
        y = rng.normal(size=idx.size) * (1 + 3 * (t > 40))
        y[rng.random(idx.size) < 0.1] = np.nan
        mean = rng.normal(size=(idx.size, H))
        arrays.observe(idx, y)
        half = arrays.record(idx, mean)
        for j, s in enumerate(idx):
            refs[s].observe(y[j])
            refs[s].record(mean[j])
            np.testing.assert_array_equal(half[j], refs[s].q)
    for s in range(S):
        mine, ref = arrays.state_dict(s), refs[s].state_dict()
        for k in ref:
            np.testing.assert_array_equal(mine[k], ref[k])
    again = ConformalArrays(cfg, H, capacity=S)  # a checkpoint restores the same state
    for s in range(S):
        again.load_state_dict(s, refs[s].state_dict())
    idx, y, mean = np.arange(S), rng.normal(size=S), rng.normal(size=(S, H))
    again.observe(idx, y)
    arrays.observe(idx, y)
    np.testing.assert_array_equal(again.record(idx, mean), arrays.record(idx, mean))


def test_chain_arrays_equal_transform_chain() -> None:
    rng = np.random.default_rng(0)
    spec = [{"kind": "deseasonalize", "period": 4}, {"kind": "difference"}, {"kind": "scale"}]
    hist = [np.cumsum(rng.normal(size=60)) + np.sin(np.arange(60)) for _ in range(3)]
    chains = [TransformChain.from_spec(spec).fit(h) for h in hist]
    arrays = ChainArrays(spec, capacity=3)
    for i, c in enumerate(chains):
        arrays.set_spec(i, c.to_spec())
    idx = np.array([2, 0, 1])
    for _ in range(10):
        y = rng.normal(size=3)
        z = arrays.transform(idx, y, None)
        z_hat = rng.normal(size=(3, 5))
        out = arrays.inverse(idx, z_hat)
        for j, i in enumerate(idx):
            assert z[j] == chains[i].transform_one(y[j])
            np.testing.assert_array_equal(out[j], chains[i].inverse_forecast(z_hat[j]))
    assert arrays.spec(1) == chains[1].to_spec()


def test_chain_set_serves_sensors_of_different_chain_structures() -> None:
    rng = np.random.default_rng(1)
    specs = [[{"kind": "difference"}, {"kind": "scale"}], [{"kind": "scale"}],
             [{"kind": "difference"}, {"kind": "scale"}], [{"kind": "scale"}]]
    chains = [TransformChain.from_spec(sp).fit(np.cumsum(rng.normal(size=80)))
              for sp in specs]
    chain_set = ChainSet(specs[0], capacity=4)
    for i, c in enumerate(chains):
        chain_set.set_spec(i, c.to_spec())
    idx = np.array([3, 0, 2, 1])
    for _ in range(8):
        y = rng.normal(size=4)
        z = chain_set.transform(idx, y, None)
        z_hat = rng.normal(size=(4, 3))
        out = chain_set.inverse(idx, z_hat)
        for j, i in enumerate(idx):
            assert z[j] == chains[i].transform_one(y[j])
            np.testing.assert_array_equal(out[j], chains[i].inverse_forecast(z_hat[j]))


def test_previous_rows_and_latency_histogram() -> None:
    np.testing.assert_array_equal(previous_rows(np.array([3, 1, 3, 3, 1])), [-1, -1, 0, 2, 1])
    hist = LatencyHistogram()
    for s in (1e-5,) * 98 + (1e-3, 1e-3):
        hist.add(s)
    assert hist.count == 100 and 8.5 < hist.percentile_us(50) < 11.5
    assert 850 < hist.percentile_us(99.5) < 1150
