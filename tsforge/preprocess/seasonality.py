"""Season period detection and STL trend/seasonal strengths.

Two questions are answered here, both on the warm-up window chosen by
:func:`tsforge.preprocess.stationarity.analyze`:

- *Is there a season, and how long is it?*  :func:`detect_period` looks for the
  first strong peak of the autocorrelation function (ACF).  A season makes the
  ACF fall and rise again; a merely persistent series has a smoothly decaying ACF
  with no such peak.  The series is first levelled as the stationarity tests
  suggest (:func:`choose_detrend`, :func:`prepare_for_acf`).
- *How much of the variation is trend and how much is season?*  :func:`decompose`
  runs STL and returns the strengths ``F_T`` and ``F_S`` of Hyndman &
  Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed., §4.3).

statsmodels is imported inside the functions (:func:`tsforge.optional.require`)
so that importing :mod:`tsforge.preprocess` costs numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsforge.errors import ConfigError
from tsforge.optional import require

#: A peak of the ACF must reach this autocorrelation to count as a season.
ACF_THRESHOLD = 0.3
#: ... and rise this much above the lowest ACF value at smaller lags.  This rejects
#: the ripples of a slowly decaying ACF, which are local maxima but not seasons.
MIN_PROMINENCE = 0.1
#: Peaks whose ACF is within this distance of the highest peak count as "strong";
#: the one at the smallest lag wins, so a season is preferred to its multiples.
STRONG_PEAK_TOLERANCE = 0.1

DETRENDS = ("none", "linear", "local")
_LEVELLED = {
    "none": "series",
    "linear": "linearly detrended series",
    "local": "series less its moving average",
}


@dataclass(frozen=True)
class PeriodEstimate:
    """Result of :func:`detect_period`.

    Attributes
    ----------
    period
        Dominant season length in samples, or None when the ACF has no strong peak.
    acf_at_period
        Autocorrelation of the prepared series at ``period`` (None without a season).
    acf
        The ACF itself, lags ``0..len(acf)-1``; kept for plots.
    detrend
        How the series was prepared before the ACF (see :func:`prepare_for_acf`).
    """

    period: int | None
    acf_at_period: float | None
    acf: np.ndarray
    detrend: str


@dataclass(frozen=True)
class Decomposition:
    """Trend + seasonal + residual split of a series and the strengths derived from it.

    ``seasonal`` is all zeros and ``seasonal_strength`` is None when there is no period.
    ``profile_share`` is the fraction of the seasonal variance carried by its mean
    profile (the average at each phase): near 1 for a season that repeats, near 0 for
    a stochastic cycle (an oscillating control loop, an AR(2) process) that STL's
    flexible seasonal follows but a fixed profile cannot remove.
    """

    trend: np.ndarray
    seasonal: np.ndarray
    resid: np.ndarray
    period: int | None
    trend_strength: float
    seasonal_strength: float | None
    profile_share: float | None = None


def prepare_for_acf(y: np.ndarray, detrend: str, *, width: int = 0) -> np.ndarray:
    """Remove what would swamp a season in the ACF.

    A trend or a unit root gives an ACF near 1 at every lag, hiding seasonal peaks.

    - ``"none"`` removes the mean only (stationary series).
    - ``"linear"`` subtracts a least-squares line: right for a series stationary around
      a trend, and it leaves the season untouched.
    - ``"local"`` subtracts a centred moving average of ``width`` points (default and
      minimum: 3): right for a wandering level (unit root, level shifts).  With
      ``width = 2 * max_period + 1`` a season ``m <= max_period`` keeps at least 84 %
      of its amplitude (the average of a sine over ``W`` points is at most
      ``m / (pi * W)`` of it).  First differences, the textbook choice for a unit
      root, are not used: they scale a season's amplitude by ``2 sin(pi / m)``
      (0.02 for a daily season of 5-minute data) while doubling the noise variance,
      which hides every long season.
    """
    y = np.asarray(y, dtype=np.float64)
    if detrend == "none":
        return y - y.mean()
    if detrend == "linear":
        t = np.arange(y.size, dtype=np.float64)
        slope, intercept = np.polyfit(t, y, 1)
        return y - (slope * t + intercept)
    if detrend == "local":
        x = y - _moving_average(y, max(3, width | 1))
        return x - x.mean()
    raise ConfigError(f"unknown detrend {detrend!r}; valid choices: {', '.join(DETRENDS)}")


def autocorrelation(
    y: np.ndarray, *, nlags: int, detrend: str = "none", width: int = 0
) -> np.ndarray:
    """ACF (FFT-based) of ``y`` prepared by :func:`prepare_for_acf`, lags ``0..nlags``.

    ``nlags`` is cut to the series length; a constant series gives ``[1.0]`` (no lag has
    a defined autocorrelation).
    """
    x = prepare_for_acf(y, detrend, width=width)
    if x.size < 2 or np.ptp(x) == 0.0:
        return np.ones(1)
    stattools = require("statsmodels.tsa.stattools", "autocorrelation (season detection)")
    nlags = int(min(nlags, x.size - 1))
    return np.asarray(stattools.acf(x, nlags=nlags, fft=True), dtype=np.float64)


def detect_period(
    y: np.ndarray,
    *,
    max_period: int | None = None,
    threshold: float = ACF_THRESHOLD,
    detrend: str = "none",
) -> PeriodEstimate:
    """Find the dominant season length from the autocorrelation function.

    A lag ``k`` in ``[2, max_period]`` is a candidate when the ACF has a local maximum
    there, reaches ``threshold`` and rises at least :data:`MIN_PROMINENCE` above the
    lowest ACF value at smaller lags.  Among candidates within
    :data:`STRONG_PEAK_TOLERANCE` of the highest one, the smallest lag is tried first:
    the sample ACF of a season of ``m`` also peaks at ``2m, 3m, ...`` and we want ``m``.
    Noise moves a flat ACF peak by a lag or two, so a candidate is refined to the lag
    within ±10 % whose multiples carry the highest mean autocorrelation (a wrong
    period drifts away from the true peaks at its multiples).  Finally the refined lag
    ``p`` must pass the check of classical decomposition: after subtracting a centred
    moving average over exactly ``p`` points (which removes a season of ``p`` but
    nothing else of it), the autocorrelation at lag ``p`` must still reach
    ``threshold``.  This rejects the slow waves in the ACF of a wandering level.

    Parameters
    ----------
    y
        The series (finite values).
    max_period
        Longest season considered; default ``min(n // 3, 1000)`` so that at least
        three cycles support the estimate.
    threshold
        Minimum autocorrelation of a season peak.  0.3 keeps white noise (ACF about
        ``±2/sqrt(n)``) and weak ripples out.
    detrend
        Preparation before the ACF, see :func:`prepare_for_acf`; ``"local"`` uses a
        moving average over ``2 * max_period + 1`` points.

    Returns
    -------
    PeriodEstimate
        The period (None when no season) with its autocorrelation.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(600)
    >>> noise = np.random.default_rng(0).normal(size=600)
    >>> detect_period(np.sin(2 * np.pi * t / 30) + 0.3 * noise).period
    30
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if max_period is None:
        max_period = min(n // 3, 1000)
    if max_period < 2 or n < 8:
        return PeriodEstimate(None, None, np.ones(1), detrend)
    # Lags up to n/2 let the refinement look at several multiples of the period.
    nlags = max(max_period + max_period // 10 + 2, n // 2)
    r = autocorrelation(y, nlags=nlags, detrend=detrend, width=2 * max_period + 1)

    last = min(max_period, r.size - 2)
    k = np.arange(2, last + 1)
    if k.size == 0:
        return PeriodEstimate(None, None, r, detrend)
    running_min = np.minimum.accumulate(r[1:])  # running_min[j] = min(r[1..j+1])
    is_peak = (r[k] > r[k - 1]) & (r[k] >= r[k + 1])
    strong = (r[k] >= threshold) & (r[k] - running_min[k - 2] >= MIN_PROMINENCE)
    candidates = k[is_peak & strong]
    if candidates.size == 0:
        return PeriodEstimate(None, None, r, detrend)
    best = r[candidates].max()
    for lag in candidates[r[candidates] >= best - STRONG_PEAK_TOLERANCE]:
        period = _refine_by_multiples(r, int(lag), max_period, n)
        if _classical_acf(y, period) >= threshold:
            return PeriodEstimate(period, float(r[period]), r, detrend)
    return PeriodEstimate(None, None, r, detrend)


def choose_detrend(decision: str, kpss_trend_pvalue: float, alpha: float) -> str:
    """How to level a series before its ACF is searched for a season.

    As the stationarity tests suggest: the mean of a stationary series, a fitted line
    when KPSS around a trend is not rejected, otherwise a long moving average.
    """
    if decision == "stationary":
        return "none"
    if math.isfinite(kpss_trend_pvalue) and kpss_trend_pvalue >= alpha:
        return "linear"
    return "local"


def find_season(
    y: np.ndarray, *, period: int | None, max_period: int | None, detrend: str
) -> tuple[int | None, float | None, list[str]]:
    """Detect the season of ``y`` (or check a given one) and explain the result.

    Returns the period, its autocorrelation and plain-English notes.  ``max_period``
    defaults to ``min(n // 3, 1000)``; a larger request is cut to ``(n - 1) // 2`` so
    that STL sees two full periods.

    Raises
    ------
    ConfigError
        ``period`` or ``max_period`` cannot be used with ``n`` readings.
    """
    n = np.asarray(y).size
    cap = (n - 1) // 2
    what = _LEVELLED[detrend]
    if period is not None:
        if int(period) != period or not 2 <= period <= cap:
            raise ConfigError(
                f"period must be an integer in [2, {cap}] for a window of {n} points (two "
                f"full periods are needed); got {period}"
            )
        r = autocorrelation(y, nlags=period, detrend=detrend, width=2 * period + 1)
        acf_p = float(r[period]) if r.size > period else None
        return int(period), acf_p, [f"period {period} given by the caller (no detection)"]
    notes = []
    if max_period is None:
        max_period = min(n // 3, 1000)
    elif max_period < 2:
        raise ConfigError(f"max_period must be >= 2, got {max_period}")
    elif max_period > cap:
        notes.append(f"max_period {max_period} cut to {cap}: the window holds {n} points")
        max_period = cap
    est = detect_period(y, max_period=max_period, detrend=detrend)
    if est.period is None:
        notes.append(
            f"no ACF peak >= {ACF_THRESHOLD} in the {what} between lags 2 and {max_period}: "
            "no season"
        )
    else:
        notes.append(
            f"ACF of the {what} peaks at lag {est.period} (r={est.acf_at_period:.2f}): "
            f"season of {est.period} samples"
        )
    return est.period, est.acf_at_period, notes


def _refine_by_multiples(r: np.ndarray, p: int, max_period: int, n: int) -> int:
    """Lag near ``p`` (±10 %) whose multiples have the highest mean ACF."""
    spread = max(1, round(0.1 * p))
    lo, hi = max(2, p - spread), min(max_period, p + spread, r.size - 1)
    horizon = min(r.size - 1, n // 2)
    n_mult = max(1, min(10, horizon // hi))
    best_lag, best_score = p, -np.inf
    for lag in range(lo, hi + 1):
        mult = lag * np.arange(1, n_mult + 1)
        score = r[mult[mult < r.size]].mean()
        # Ties (and near-ties from rounding) keep the candidate closest to p.
        if score > best_score + 1e-12 or (
            abs(score - best_score) <= 1e-12 and abs(lag - p) < abs(best_lag - p)
        ):
            best_lag, best_score = lag, score
    return best_lag


def _classical_acf(y: np.ndarray, p: int) -> float:
    """Lag-``p`` autocorrelation after removing a centred moving average of period ``p``.

    For even ``p`` the average is the usual ``2 x p`` one (weights ``1/2p`` at both
    ends).  Returns +inf (no evidence against ``p``) when the series is too short.
    """
    kernel = np.ones(p + 1 - p % 2)
    kernel[[0, -1]] = 0.5 if p % 2 == 0 else 1.0
    half = kernel.size // 2
    x = (y - np.convolve(y, kernel / p, mode="same"))[half : y.size - half]
    if x.size <= p + 2:
        return np.inf
    x = x - x.mean()
    denom = float(np.dot(x, x))
    return float(np.dot(x[:-p], x[p:]) / denom) if denom > 0.0 else 0.0


def decompose(y: np.ndarray, period: int | None) -> Decomposition:
    """Split ``y`` into trend, season and remainder and measure their strengths.

    With a period, this is robust STL (robust to the outliers sensor data carry).
    STL's LOESS smoothers are evaluated every ``ceil(window / 10)`` points and
    interpolated in between, as recommended by Cleveland et al. (1990): for a daily
    season of 5-minute data (period 288) this is about 30 times faster than
    evaluating at every point, with differences far below the noise.

    Without a period the trend is a centred moving average spanning about a tenth of
    the window (short enough to follow level changes, long enough to leave noise in
    the remainder), and the seasonal component is zero.

    The strengths are those of Hyndman & Athanasopoulos: ``F_T = max(0, 1 -
    Var(R) / Var(T + R))`` and ``F_S = max(0, 1 - Var(R) / Var(S + R))``, both in
    ``[0, 1]``; 0 means the component explains nothing beyond the remainder.

    Parameters
    ----------
    y
        The series (finite values), at least two full periods when ``period`` is given.
    period
        Season length, or None.
    """
    y = np.asarray(y, dtype=np.float64)
    if period is None:
        trend = _moving_average(y, 2 * max(1, y.size // 20) + 1)
        seasonal = np.zeros_like(y)
    else:
        seasonal_mod = require("statsmodels.tsa.seasonal", "STL decomposition")
        fit = seasonal_mod.STL(y, period=period, robust=True, **_stl_jumps(period)).fit()
        trend, seasonal = np.asarray(fit.trend), np.asarray(fit.seasonal)
    resid = y - trend - seasonal
    share = None
    if period is not None and np.var(seasonal) > 0.0:
        phase = np.arange(y.size) % period
        profile = np.bincount(phase, seasonal, period) / np.bincount(phase, minlength=period)
        share = float(min(1.0, np.var(profile[phase]) / np.var(seasonal)))
    return Decomposition(
        trend=trend,
        seasonal=seasonal,
        resid=resid,
        period=period,
        trend_strength=_strength(resid, trend),
        seasonal_strength=None if period is None else _strength(resid, seasonal),
        profile_share=share,
    )


def _stl_jumps(period: int, seasonal: int = 7) -> dict[str, int]:
    """LOESS jumps of ``ceil(window / 10)`` for STL's default windows (statsmodels rules)."""
    trend = math.ceil(1.5 * period / (1.0 - 1.5 / seasonal))
    trend += (trend + 1) % 2  # next odd
    low_pass = period + 1 + period % 2  # smallest odd > period
    return {
        "seasonal_jump": math.ceil(seasonal / 10),
        "trend_jump": math.ceil(trend / 10),
        "low_pass_jump": math.ceil(low_pass / 10),
    }


def _moving_average(y: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average whose window shrinks at the ends (no NaN, no padding)."""
    kernel = np.ones(width)
    sums = np.convolve(y, kernel, mode="same")
    counts = np.convolve(np.ones_like(y), kernel, mode="same")
    return sums / counts


def _strength(resid: np.ndarray, component: np.ndarray) -> float:
    """``max(0, 1 - Var(R) / Var(C + R))``; 0 when ``C + R`` has no variance."""
    total = float(np.var(component + resid))
    if total <= 0.0:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - float(np.var(resid)) / total)))
