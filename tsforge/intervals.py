"""Online conformal prediction intervals for any H-step forecaster (numpy only).

The library (:class:`~tsforge.models.transformed.TransformedForecaster`), the
backtest and the torch-free edge runtime all use :class:`ConformalIntervals`, so
an interval served on the edge box is the interval the library computes.

How it works, per horizon step ``h`` and nominal level ``1 - a``:

- the absolute residual ``|y_{t+h} - yhat_{t+h|t}|`` of an h-step forecast is only
  known ``h`` readings after it was issued, so the last ``H`` forecasts (and the
  half-widths issued with them) wait in a ring of *pending* forecasts;
- each resolved residual enters a sliding window of the last ``window``
  residuals of that step;
- the half-width issued at time ``t`` is the conformal quantile of that window at
  level ``1 - a_t``: the ``ceil((n + 1)(1 - a_t))``-th smallest of ``n`` residuals,
  unbounded when that rank exceeds ``n`` (see the deviations below);
- adaptive conformal inference (ACI; Gibbs & Candès 2021, "Adaptive Conformal
  Inference Under Distribution Shift") moves the working level after every
  resolved forecast, ``a_{t+1} = a_t + gamma (a - err_t)`` with ``err_t = 1`` when the
  reading fell outside the interval issued for it.  Misses shrink ``a_t`` (wider
  intervals), hits grow it; the long-run miss rate tends to ``a`` whatever the
  drift.  In the paper ``a_t`` below ``1 / (n + 1)`` gives an infinite interval.

Deviations from the paper, and why:

- one ``a_t`` per (level, step) pair rather than one per model, because h-step
  errors differ in scale and in how they drift;
- no interval (and no update of ``a_t``) while a step's window holds fewer than
  ``warmup`` residuals, so that the first readings after a fit are not scored
  against intervals estimated from almost nothing;
- ``unbounded="window_max"`` (the default) replaces the paper's infinite interval
  by the largest residual in the window.  Multi-step errors miss in long runs
  after a shift, and a 95 % interval recovers from a run of ``k`` misses only
  after about ``19 k`` hits, so the uncapped rule served infinite 95 % intervals
  on 4-10 % of readings of NAB and ETTh1 (``benchmarks/RESULTS_intervals.md``):
  useless to an operator, and not valid JSON.  The cap bounds widths by what the
  window has seen, at a cost of a few hundredths of a point of coverage there;
- ``a_t`` is kept in ``[-gamma, 1 + gamma]``, the range the paper proves for
  one-step feedback.  An h-step forecast is scored h readings after it was
  issued, so up to h misses already in flight would otherwise drive ``a_t`` down
  to about ``-h gamma`` and lengthen the recovery h-fold.  With the clip about
  3 % of 95 % intervals are saturated and coverage is 0.1-0.4 point under nominal.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tsforge.errors import ConfigError

METHODS = ("aci", "split")
UNBOUNDED = ("window_max", "inf")


@dataclass(frozen=True)
class IntervalConfig:
    """Settings of the online conformal intervals.

    Attributes
    ----------
    levels
        Nominal coverages, each in (0, 1), e.g. ``(0.8, 0.95)``.
    gamma
        ACI step size: how fast the working level reacts to misses (0.005 in
        Gibbs & Candès; 0 disables adaptation).
    window
        Residuals kept per horizon step (the calibration window).
    warmup
        Residuals a step needs before intervals are issued for it.
    method
        ``"aci"`` (adaptive, sliding window) or ``"split"`` (frozen calibration set).
    unbounded
        Half-width served when the conformal rank exceeds the window:
        ``"window_max"`` (the largest residual in the window) or ``"inf"`` (the
        paper's infinite interval).
    """

    levels: tuple[float, ...] = (0.8, 0.95)
    gamma: float = 0.005
    window: int = 500
    warmup: int = 20
    method: str = "aci"
    unbounded: str = "window_max"

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        if not self.levels or any(not 0.0 < v < 1.0 for v in self.levels):
            raise ConfigError(f"interval levels must lie in (0, 1), got {list(self.levels)}")
        if len(set(self.levels)) != len(self.levels):
            raise ConfigError(f"interval levels must be distinct, got {list(self.levels)}")
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"gamma must be in [0, 1), got {self.gamma}")
        if self.window < 2:
            raise ConfigError(f"interval window must be >= 2, got {self.window}")
        if not 1 <= self.warmup <= self.window:
            raise ConfigError(f"warmup must be in [1, window={self.window}], got {self.warmup}")
        if self.method not in METHODS:
            raise ConfigError(f"interval method '{self.method}' unknown; valid: {METHODS}")
        if self.unbounded not in UNBOUNDED:
            raise ConfigError(f"unbounded='{self.unbounded}' unknown; valid: {UNBOUNDED}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = list(self.levels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalConfig:
        return cls(**{**d, "levels": tuple(d["levels"])})


#: Intervals every wrapped forecaster gets unless told otherwise.
DEFAULT_INTERVALS = IntervalConfig()

#: Arrays of the tracker's state, in :meth:`ConformalIntervals.state_dict` order.
STATE_KEYS = ("alpha", "residuals", "count", "pending_mean", "pending_q", "pending_ok", "q")


class ConformalIntervals:
    """Streaming conformal intervals around the forecasts of one series.

    Call :meth:`record` with each forecast as it is issued and :meth:`observe`
    with each new reading, alternating: ``record(f_0)``, ``observe(y_1)``,
    ``record(f_1)``, ...  The intervals of the latest forecast come from
    :meth:`intervals`.

    >>> import numpy as np
    >>> ci = ConformalIntervals(IntervalConfig(levels=(0.9,), warmup=5), horizon=1)
    >>> rng = np.random.default_rng(0)
    >>> for y in rng.normal(size=50):
    ...     ci.record(np.zeros(1))
    ...     ci.observe(y)
    >>> ci.record(np.zeros(1))
    >>> lo, hi = ci.intervals(np.zeros(1))[0.9]
    >>> bool(lo[0] < 0.0 < hi[0])
    True
    """

    def __init__(self, config: IntervalConfig, horizon: int) -> None:
        self.config = config
        self.horizon = int(horizon)
        L, H, W = len(config.levels), self.horizon, config.window
        self.miscoverage = 1.0 - np.asarray(config.levels)  # (L,) nominal a
        self.alpha = np.repeat(self.miscoverage[:, None], H, axis=1)  # (L, H) working a_t
        self.residuals = np.zeros((H, W))  # ring of |residual| per step
        self.count = np.zeros(H, dtype=np.int64)  # residuals received per step
        self.pending_mean = np.zeros((H, H))  # row k: forecast issued k readings ago
        self.pending_q = np.full((L, H, H), np.nan)  # half-widths issued with it (NaN: none)
        self.pending_ok = np.zeros(H, dtype=bool)  # row k holds a forecast
        self.q = np.full((L, H), np.nan)  # half-widths of the latest forecast
        self._steps = np.arange(H)
        self._ordered = np.full((H, W), np.inf)  # each window sorted, empty slots last
        self.saturated = np.zeros((L, H), dtype=bool)  # latest half-widths the window can't bound

    # ------------------------------------------------------------------ streaming
    def observe(self, y: float) -> None:
        """Score the pending forecasts of reading ``y`` and adapt.

        A non-finite ``y`` (a missing or imputed reading) scores nothing: the
        forecasts that targeted it are simply never resolved; nor does a
        non-finite forecast.
        """
        y = float(y)
        if not math.isfinite(y):
            return
        steps = np.flatnonzero(self.pending_ok)  # lag k resolves step k
        r = np.abs(y - self.pending_mean[steps, steps])  # (n,)
        steps, r = steps[np.isfinite(r)], r[np.isfinite(r)]
        if steps.size == 0:
            return
        issued_q = self.pending_q[:, steps, steps]  # (L, n)
        W = self.config.window
        if self.config.method == "split":
            keep = self.count[steps] < W  # the calibration set is frozen once full
            steps, r = steps[keep], r[keep]
        else:
            err = (r[None, :] > issued_q).astype(np.float64)
            issued = ~np.isnan(issued_q)
            g = self.config.gamma
            step = g * (self.miscoverage[:, None] - err)
            self.alpha[:, steps] = np.clip(self.alpha[:, steps] + np.where(issued, step, 0.0),
                                           -g, 1.0 + g)
        slot = self.count[steps] % W
        old = np.where(self.count[steps] >= W, self.residuals[steps, slot], np.inf)
        self.residuals[steps, slot] = r
        self.count[steps] += 1
        # Keep the sorted copy current: swap the evicted value (inf for an empty slot)
        # for the new one, then re-sort rows that are sorted but for one element.
        rows = self._ordered[steps]
        rows[np.arange(steps.size), (rows < old[:, None]).sum(axis=1)] = r
        self._ordered[steps] = np.sort(rows, axis=1, kind="stable")

    def record(self, mean: np.ndarray) -> None:
        """Register the forecast just issued (shape ``(H,)``) and its half-widths."""
        self.q, self.saturated = self._half_widths()
        # Age every pending forecast by one reading; the oldest (lag H) falls off.
        self.pending_mean[1:] = self.pending_mean[:-1]
        self.pending_mean[0] = mean
        self.pending_q[:, 1:] = self.pending_q[:, :-1]
        self.pending_q[:, 0] = self.q
        self.pending_ok[1:] = self.pending_ok[:-1]
        self.pending_ok[0] = True

    def half_widths(self) -> np.ndarray:
        """Conformal half-widths ``(L, H)`` from the current windows and levels.

        NaN for steps still warming up; where the rank exceeds the window, ``inf`` or
        the window's largest residual (``config.unbounded``).
        """
        return self._half_widths()[0]

    def _half_widths(self) -> tuple[np.ndarray, np.ndarray]:
        """Half-widths ``(L, H)`` and where the window could not bound them."""
        W = self.config.window
        n = np.minimum(self.count, W)  # (H,)
        rank = np.ceil((n + 1) * (1.0 - self.alpha) - 1e-9)  # (L, H), 1-based
        idx = np.clip(rank, 1, W).astype(np.intp) - 1
        q = self._ordered[self._steps, idx]  # (L, H)
        over = rank > n
        if self.config.unbounded == "inf":
            q[over] = np.inf
        else:
            q[over] = self._ordered[self._steps, np.maximum(n - 1, 0)][np.nonzero(over)[1]]
        q[rank < 1] = 0.0
        q[:, n < self.config.warmup] = np.nan
        return q, over & (n[None, :] >= self.config.warmup)

    def intervals(self, mean: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """``{level: (lower, upper)}`` around ``mean``; empty while any step warms up."""
        if np.isnan(self.q).any():
            return {}
        mean = np.asarray(mean, dtype=np.float64)
        return {lvl: (mean - self.q[i], mean + self.q[i])
                for i, lvl in enumerate(self.config.levels)}

    @property
    def ready(self) -> bool:
        """True once every step has enough residuals for intervals to be issued."""
        return not np.isnan(self.q).any()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        """The whole streaming state as plain numpy arrays (copies)."""
        return {k: np.array(getattr(self, k)) for k in STATE_KEYS}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for key in STATE_KEYS:
            ref = getattr(self, key)
            arr = np.asarray(state[key], dtype=ref.dtype)
            if arr.shape != ref.shape:
                raise ConfigError(
                    f"interval state '{key}' has shape {arr.shape}, expected {ref.shape} for "
                    f"horizon {self.horizon} and {len(self.config.levels)} level(s)"
                )
            setattr(self, key, arr.copy())
        self._sort_windows()

    def _sort_windows(self) -> None:
        W = self.config.window
        filled = np.arange(W)[None, :] < np.minimum(self.count, W)[:, None]
        self._ordered = np.sort(np.where(filled, self.residuals, np.inf), axis=1)

    def to_json(self) -> dict[str, Any]:
        """Config and state as JSON-ready lists (what export manifests carry)."""
        return {"config": self.config.to_dict(), "horizon": self.horizon,
                "state": {k: v.tolist() for k, v in self.state_dict().items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any], *, with_state: bool = True) -> ConformalIntervals:
        """Rebuild from :meth:`to_json`; ``with_state=False`` gives a fresh tracker."""
        tracker = cls(IntervalConfig.from_dict(d["config"]), d["horizon"])
        if with_state and "state" in d:
            tracker.load_state_dict({k: np.asarray(v) for k, v in d["state"].items()})
        return tracker


def replay(
    predictions: np.ndarray,
    actual: np.ndarray,
    config: IntervalConfig,
    *,
    saturated: dict[float, np.ndarray] | None = None,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Intervals a tracker would have issued along a backtest.

    ``predictions[i]`` (``(n, H)``) is the forecast made just before ``actual[i]``.
    Returns ``{level: (lower, upper)}`` with arrays ``(n, H)``, NaN where no
    interval was issued.  Lets several interval methods be compared on the same
    forecasts without re-running the models.  A ``saturated`` dict is filled with
    ``{level: (n, H) bool}``: where the window could not bound the interval
    (infinite, or capped at the window maximum).
    """
    n, H = predictions.shape
    tracker = ConformalIntervals(config, H)
    out = {lvl: (np.full((n, H), np.nan), np.full((n, H), np.nan)) for lvl in config.levels}
    flags = {lvl: np.zeros((n, H), dtype=bool) for lvl in config.levels}
    for i in range(n):
        tracker.record(predictions[i])
        for lvl, (lo, hi) in tracker.intervals(predictions[i]).items():
            out[lvl][0][i], out[lvl][1][i] = lo, hi
        for j, lvl in enumerate(config.levels):
            flags[lvl][i] = tracker.saturated[j]
        tracker.observe(actual[i])
    if saturated is not None:
        saturated.update(flags)
    return out
