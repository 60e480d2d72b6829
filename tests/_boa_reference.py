"""Plain per-series BOA: the reference the batched arithmetic of :mod:`tsforge.aggregation`
is tested against (one sensor, Python loop over horizon steps, as first written)."""

from __future__ import annotations

import numpy as np

from tsforge.aggregation import AggregationConfig


class ReferenceAggregator:
    """BOA weights per horizon step over ``K`` experts, one series (reference)."""

    def __init__(self, config: AggregationConfig, prior: np.ndarray | None = None) -> None:
        self.config = config
        k, h = config.n_experts, config.horizon
        p = np.full(k, 1.0 / k) if prior is None else np.asarray(prior, dtype=np.float64)
        if p.shape != (k,) or np.any(p <= 0) or not np.all(np.isfinite(p)):
            raise ValueError(f"prior must be {k} positive finite numbers, got {p}")
        self.prior = np.tile(p / p.sum(), (h, 1))
        self.regret = np.zeros((h, k))  # sum of r: what each expert would have saved
        self.regularized = np.zeros((h, k))  # sum of r - eta r^2 (BOA's R)
        self.sq_sum = np.zeros((h, k))  # sum of r^2
        self.eta = np.zeros((h, k))  # current learning rates (0: none yet)
        self.max_abs = np.zeros(h)  # largest |r| so far
        self.pending = np.full((h, h, k), np.nan)  # pending[j]: forecasts made j+1 readings ago
        self.n_pending = 0
        self.n_updates = 0

    # ------------------------------------------------------------------ weights
    def _rates(self) -> np.ndarray:
        """Learning rates: fixed, or BOA's ``min(1/(2E), sqrt(log(1/pi)/V))``."""
        if self.config.eta > 0:
            return np.full_like(self.eta, self.config.eta)
        cap = np.where(self.max_abs > 0, 1.0 / (2.0 * np.maximum(self.max_abs, 1e-300)), 0.0)
        with np.errstate(divide="ignore"):
            adaptive = np.sqrt(np.log(1.0 / self.prior) / self.sq_sum)
        return np.minimum(cap[:, None], np.where(self.sq_sum > 0, adaptive, np.inf))

    @property
    def weights(self) -> np.ndarray:
        """Current weights ``(H, K)``, each row non-negative and summing to 1."""
        eta = self.eta
        if not np.any(eta > 0):
            return self.prior.copy()
        fixed = self.config.eta > 0
        with np.errstate(divide="ignore"):
            logw = np.log(self.prior) + eta * self.regularized + (0.0 if fixed else np.log(eta))
        # a step whose learning rates are all still 0 keeps its prior
        logw = np.where((eta > 0).any(axis=1, keepdims=True), logw, np.log(self.prior))
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        return w / w.sum(axis=1, keepdims=True)

    def combine(self, experts: np.ndarray) -> np.ndarray:
        """Aggregate forecast ``(H,)`` of the experts' forecasts ``(H, K)``.

        Non-finite expert forecasts get no weight (the others are renormalised).
        """
        x = self._check(experts)
        return _weighted(self.weights, x)

    # ------------------------------------------------------------------ learning
    def push(self, experts: np.ndarray) -> None:
        """Remember the experts' forecasts made now, to score them as targets arrive."""
        x = self._check(experts)
        self.pending = np.roll(self.pending, 1, axis=0)
        self.pending[0] = x
        self.n_pending = min(self.n_pending + 1, self.config.horizon)

    def update(self, y: float) -> np.ndarray:
        """Score the pending forecasts whose target is reading ``y``; update the weights.

        Returns the instantaneous regrets ``r`` ``(H, K)`` of this reading (0 where
        nothing was scored).  A non-finite ``y`` scores nothing: the forecasts age by
        one reading all the same.
        """
        h_max = self.config.horizon
        r = np.zeros((h_max, self.config.n_experts))
        if not np.isfinite(y):
            self._age()
            return r
        w = self.weights
        for j in range(self.n_pending):  # pending[j] targets this reading at step j
            x = self.pending[j, j]
            ok = np.isfinite(x)
            if not ok.any():
                continue
            p = float(_weighted(w[j:j + 1], x[None])[0])
            g = _gradient(p, y, self.config.loss, self.config.scale)
            r[j] = np.where(ok, g * (p - np.where(ok, x, p)), 0.0)
        scored = np.arange(h_max) < self.n_pending
        self.max_abs = np.where(scored, np.maximum(self.max_abs, np.abs(r).max(axis=1)),
                                self.max_abs)
        self.sq_sum += r ** 2
        self.eta = np.where(scored[:, None], self._rates(), self.eta)
        self.regret += r
        self.regularized += r - self.eta * r ** 2
        self.n_updates += 1
        self._age()
        return r

    def _age(self) -> None:
        """Drop the forecast whose last step was just scored."""
        if self.n_pending == self.config.horizon:
            self.pending[-1] = np.nan
            self.n_pending -= 1

    def restart(self, share: float | None = None) -> None:
        """Start afresh from the prior ``(1 - share) w + share / K`` (on a drift alarm)."""
        s = self.config.share if share is None else share
        k = self.config.n_experts
        self.prior = (1.0 - s) * self.weights + s / k
        self.prior /= self.prior.sum(axis=1, keepdims=True)
        for a in (self.regret, self.regularized, self.sq_sum, self.eta):
            a[:] = 0.0

    def _check(self, experts: np.ndarray) -> np.ndarray:
        return np.asarray(experts, dtype=np.float64).reshape(self.config.horizon, -1)


def _gradient(p: float, y: float, loss: str, scale: float) -> float:
    """``d l(p, y) / dp`` of the loss in units of ``scale``."""
    if loss == "absolute":  # l = |p - y| / scale
        return float(np.sign(p - y)) / scale
    return 2.0 * (p - y) / scale ** 2  # l = ((p - y) / scale)^2


def _weighted(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row-wise ``w . x`` over the finite entries of ``x`` (NaN where none is finite)."""
    ok = np.isfinite(x)
    wk = np.where(ok, w, 0.0)
    total = wk.sum(axis=1)
    out = np.full(x.shape[0], np.nan)
    good = total > 0
    out[good] = (wk[good] * np.where(ok, x, 0.0)[good]).sum(axis=1) / total[good]
    return out
