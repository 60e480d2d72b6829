"""Invertible transforms: batch round trips, streaming = batch, inverse forecasts."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.errors import ConfigError, DataError
from tsforge.preprocess.transforms import TransformChain

CHAINS = [
    [],
    [{"kind": "scale"}],
    [{"kind": "difference"}, {"kind": "scale"}],
    [{"kind": "deseasonalize", "period": 24}, {"kind": "scale"}],
    [{"kind": "deseasonalize", "period": 24}, {"kind": "difference"}, {"kind": "scale"}],
    [{"kind": "difference"}, {"kind": "deseasonalize", "period": 24}, {"kind": "scale"}],
]


def series(n: int = 1200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.02 * t + 4 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.2, n))


@pytest.mark.parametrize("spec", CHAINS, ids=lambda s: "-".join(d["kind"] for d in s) or "none")
def test_inverse_transform_reproduces_series(spec):
    y = series()
    chain = TransformChain.from_spec(spec).fit(y)
    np.testing.assert_allclose(chain.inverse_transform(chain.transform(y)), y, atol=1e-9)


@pytest.mark.parametrize("spec", CHAINS, ids=lambda s: "-".join(d["kind"] for d in s) or "none")
def test_streaming_transform_continues_batch_transform(spec):
    y = series()
    batch = TransformChain.from_spec(spec).fit(y[:800])
    stream = TransformChain.from_spec(spec).fit(y[:800])
    z_batch = batch.transform(y)[800:]
    z_stream = np.array([stream.transform_one(v) for v in y[800:]])
    np.testing.assert_allclose(z_stream, z_batch, atol=1e-9)


@pytest.mark.parametrize("spec", CHAINS, ids=lambda s: "-".join(d["kind"] for d in s) or "none")
def test_inverse_forecast_of_true_future_gives_true_future(spec):
    """Feeding the transformed truth to inverse_forecast must return the truth itself."""
    y = series()
    chain = TransformChain.from_spec(spec).fit(y[:800])
    z_future = TransformChain.from_spec(spec).fit(y[:800]).transform(y)[800:810]
    np.testing.assert_allclose(chain.inverse_forecast(z_future), y[800:810], atol=1e-9)


def test_spec_round_trip_keeps_state():
    y = series()
    chain = TransformChain.from_spec(CHAINS[4]).fit(y[:900])
    clone = TransformChain.from_spec(chain.to_spec())
    for v in y[900:950]:
        assert chain.transform_one(v) == clone.transform_one(v)


def test_bad_specs_and_inputs_are_explained():
    with pytest.raises(ConfigError, match="valid kinds"):
        TransformChain.from_spec([{"kind": "boxcox"}])
    with pytest.raises(ConfigError, match="period"):
        TransformChain.from_spec([{"kind": "deseasonalize", "period": 1}])
    with pytest.raises(DataError, match="two full periods"):
        TransformChain.from_spec([{"kind": "deseasonalize", "period": 24}]).fit(series(30))
    with pytest.raises(DataError, match="NaN"):
        TransformChain.from_spec([{"kind": "difference"}]).fit(np.array([1.0, np.nan, 2.0]))
