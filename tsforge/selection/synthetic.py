"""Fixed-seed synthetic regimes: the golden streams of drift detection and family selection.

Each generator returns a float64 array of ``n`` readings that depends only on its
seed, so tests can assert the exact indices at which river's detectors fire and
the regret benchmark compares families on the same data every run.  The suite
covers what the selection policy must tell apart:

========================  ================================================================
regime                    process
========================  ================================================================
``white_noise``           i.i.d. N(0, 1)
``ar_short``              AR(2), phi = (0.6, -0.3): dependence of two lags
``ar_long``               fractionally integrated noise, d = 0.4: hyperbolic ACF decay
``seasonal_ar``           AR(1) 0.5 plus y[t-72] feedback 0.6: dependence beyond a window
``trend_season``          linear trend + period-24 sine + AR(1) 0.5 noise
``random_walk``           cumulative sum of N(0, 1)
``abrupt_drift``          AR(1) whose phi and mean jump every 400 readings
``gradual_drift``         AR(1) whose phi follows a slow cosine between 0.9 and -0.7
``variance_change``       AR(1) 0.5 whose noise level triples halfway
========================  ================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _ar1(phi: np.ndarray, e: np.ndarray, mean: np.ndarray | float = 0.0) -> np.ndarray:
    y = np.zeros(len(e))
    mu = np.broadcast_to(np.asarray(mean, dtype=np.float64), y.shape)
    for t in range(1, len(e)):
        y[t] = mu[t] + phi[t] * (y[t - 1] - mu[t - 1]) + e[t]
    return y


def white_noise(n: int = 2000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def ar_short(n: int = 2000, seed: int = 1) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n + 100)
    y = np.zeros(n + 100)
    for t in range(2, n + 100):
        y[t] = 0.6 * y[t - 1] - 0.3 * y[t - 2] + e[t]
    return y[100:]


def ar_long(n: int = 2000, seed: int = 2, d: float = 0.4, lags: int = 1000) -> np.ndarray:
    """ARFIMA(0, d, 0) by its MA(infinity) expansion truncated at ``lags``."""
    e = np.random.default_rng(seed).standard_normal(n + lags)
    k = np.arange(1, lags)
    psi = np.concatenate([[1.0], np.cumprod((k - 1 + d) / k)])
    return np.convolve(e, psi, mode="full")[lags:lags + n]


def seasonal_ar(n: int = 2000, seed: int = 3, lag: int = 72) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n + 3 * lag)
    y = np.zeros(n + 3 * lag)
    for t in range(lag, len(y)):
        y[t] = 0.3 * y[t - 1] + 0.6 * y[t - lag] + e[t]
    return y[3 * lag:]


def trend_season(n: int = 2000, seed: int = 4, period: int = 24) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n)
    t = np.arange(n)
    return 0.01 * t + 2.0 * np.sin(2 * np.pi * t / period) + _ar1(np.full(n, 0.5), e)


def random_walk(n: int = 2000, seed: int = 5) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).standard_normal(n))


def abrupt_drift(n: int = 2000, seed: int = 6, every: int = 400) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n)
    block = np.arange(n) // every
    phi = np.where(block % 2 == 0, 0.9, -0.6)
    mean = np.where(block % 3 == 1, 4.0, 0.0)
    return _ar1(phi, e, mean)


def gradual_drift(n: int = 2000, seed: int = 7, cycle: int = 1500) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n)
    phi = 0.1 + 0.8 * np.cos(2 * np.pi * np.arange(n) / cycle)
    return _ar1(phi, e)


def variance_change(n: int = 2000, seed: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) < n // 2, 1.0, 3.0)
    return _ar1(np.full(n, 0.5), rng.standard_normal(n) * sigma)


#: Regime name -> generator ``(n, seed=...) -> array``.
REGIMES: dict[str, Callable[..., np.ndarray]] = {
    "white_noise": white_noise,
    "ar_short": ar_short,
    "ar_long": ar_long,
    "seasonal_ar": seasonal_ar,
    "trend_season": trend_season,
    "random_walk": random_walk,
    "abrupt_drift": abrupt_drift,
    "gradual_drift": gradual_drift,
    "variance_change": variance_change,
}


def suite(n: int = 2000) -> dict[str, np.ndarray]:
    """Every regime of :data:`REGIMES` with ``n`` readings and its default seed."""
    return {name: gen(n) for name, gen in REGIMES.items()}
