"""Paired significance tests on the absolute errors of two forecasters (numpy only).

Both tests answer one one-sided question: over the same readings, does model A make
larger absolute errors than model B, by more than a margin?  They take the loss
differential ``d_t = |e_A,t| - c |e_B,t|`` (``c = 1.1`` asks "more than 10 % worse";
``c = 1`` is the plain comparison) and return a p-value; small means "A is worse by
more than the margin, and not by chance".  Testing the margin itself, not only
"worse at all", is what keeps a monitor that looks at every reading from switching
between two equally good models.

- :func:`diebold_mariano` compares the mean of ``d`` with its long-run standard error
  (Newey-West/Bartlett, so autocorrelated forecast errors do not inflate significance);
  the statistic is referred to the normal distribution.
- :func:`sign_test` counts how often A is worse than B; under "no difference" that count is
  Binomial(n, 1/2).  It ignores magnitudes, so a few huge errors cannot decide alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TESTS = ("dm", "sign")


@dataclass(frozen=True)
class TestResult:
    """Outcome of a paired test: statistic, one-sided p-value, number of pairs used."""

    statistic: float
    p_value: float
    n: int


def _normal_sf(z: float) -> float:
    """Upper tail of the standard normal, ``P(Z > z)``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _differential(worse: np.ndarray, better: np.ndarray, factor: float) -> np.ndarray:
    a = np.abs(np.asarray(worse, dtype=np.float64))
    b = np.abs(np.asarray(better, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"paired errors must have the same shape, got {a.shape} and {b.shape}")
    d = a - factor * b
    return d[np.isfinite(d)]


def diebold_mariano(worse: np.ndarray, better: np.ndarray, lags: int | None = None,
                    factor: float = 1.0) -> TestResult:
    """One-sided Diebold-Mariano test that ``worse`` has larger absolute errors than ``better``.

    Parameters
    ----------
    worse, better
        Forecast errors of the two models on the same readings (NaN pairs are dropped).
    lags
        Bartlett lags of the long-run variance; default ``floor(n ** (1/3))``.
    factor
        Margin of the null hypothesis: the test asks whether ``|worse|`` exceeds
        ``factor * |better|`` on average (1.1: "more than 10 % worse").

    Returns
    -------
    TestResult
        ``p_value`` is ``P(Z > DM)``; 1.0 when fewer than 3 pairs or no variation.
    """
    d = _differential(worse, better, factor)
    n = d.size
    if n < 3:
        return TestResult(0.0, 1.0, n)
    mean = float(d.mean())
    c = d - mean
    lags = int(n ** (1.0 / 3.0)) if lags is None else max(0, min(int(lags), n - 1))
    var = float(c @ c) / n
    for k in range(1, lags + 1):
        var += 2.0 * (1.0 - k / (lags + 1.0)) * float(c[k:] @ c[:-k]) / n
    if not var > 0.0:
        if mean > 0.0:
            return TestResult(math.inf, 0.0, n)
        return TestResult(0.0, 1.0, n)
    stat = mean / math.sqrt(var / n)
    return TestResult(stat, _normal_sf(stat), n)


def sign_test(worse: np.ndarray, better: np.ndarray, factor: float = 1.0) -> TestResult:
    """One-sided exact sign test that ``|worse| > factor * |better|`` more often than not.

    Ties are dropped.  ``statistic`` is the fraction of the
    remaining pairs where ``worse`` was worse; ``p_value`` is the exact binomial tail.
    """
    d = _differential(worse, better, factor)
    d = d[d != 0.0]
    n = d.size
    if n == 0:
        return TestResult(0.5, 1.0, 0)
    k = int(np.count_nonzero(d > 0))
    ks = np.arange(k, n + 1)
    log_terms = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                          for i in ks]) - n * math.log(2.0)
    top = float(log_terms.max())
    p = math.exp(top) * float(np.exp(log_terms - top).sum())
    return TestResult(k / n, min(1.0, p), n)


def paired_test(name: str, worse: np.ndarray, better: np.ndarray,
                factor: float = 1.0) -> TestResult:
    """Run the test called ``name`` (one of :data:`TESTS`) with margin ``factor``."""
    if name == "dm":
        return diebold_mariano(worse, better, factor=factor)
    if name == "sign":
        return sign_test(worse, better, factor=factor)
    raise ValueError(f"unknown test '{name}'; valid: {', '.join(TESTS)}")
