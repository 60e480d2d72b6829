"""Online aggregation of expert forecasts: BOA with the gradient trick, restarts on drift.

``K`` experts each forecast the next ``H`` readings; :class:`Aggregator` combines
them per horizon step with convex weights ``w[h]`` and learns those weights from
the losses once each target is observed.  The rule is BOA, *Bernstein Online
Aggregation* (Wintenberger 2017), with one learning rate per expert and the
gradient trick, as in the expert-aggregation literature for electricity load:

- the aggregate forecast of step ``h`` is ``p = w[h] . x`` (``x``: the experts'
  forecasts of one target);
- once ``y`` arrives, the loss ``l(p, y)`` (absolute or squared, divided by
  ``scale``) is linearised at ``p``: ``g = dl/dp``, and expert ``k``'s
  *instantaneous regret* is ``r_k = g (p - x_k)`` (how much the aggregate would
  gain, to first order, by moving onto expert ``k``);
- ``R_k += r_k - eta_k r_k**2`` (the second-order term is BOA's), and
  ``w_k ∝ eta_k pi_k exp(eta_k R_k)``, ``pi`` the prior.

Guarantee (the test suite checks it on synthetic experts).  With a fixed
learning rate ``eta`` and ``eta |r_k| <= 1/2`` for every step, the weights satisfy
``sum_t r_k,t <= eta sum_t r_k,t**2 + log(1 / pi_k) / eta`` for *every* expert
``k`` (the potential ``sum_k pi_k exp(eta R_k)`` never exceeds 1 because
``sum_k w_k r_k = 0`` and ``exp(x - x**2) <= 1 + x`` for ``x >= -1/2``).  The loss
being convex, ``l(p_t) - l(x_k,t) <= r_k,t``: the cumulative loss of the
aggregate exceeds the best expert's by at most that bound, and, since ``r`` is
linear in ``x``, the loss of the best *fixed convex combination* of the experts
by at most the largest of those bounds.  The default learning rates are adaptive,
``eta_k = min(1 / (2 E), sqrt(log(1 / pi_k) / V_k))`` with ``E`` the largest
``|r|`` so far and ``V_k = sum_t r_k,t**2`` (BOA's multiple learning rates:
regret of order ``sqrt(V_k log K) + E log K`` without tuning).

Drift.  Exponential weights that learned over thousands of readings take as long
to move away from an expert that stopped being good.  :meth:`Aggregator.restart`
(called by ``auto`` when a river drift detector fires on the aggregate's
residuals) starts BOA afresh from the prior ``(1 - share) w + share / K``: the
current weights are kept as knowledge, every expert gets at least ``share / K``
(the fixed-share floor), and the regret sums and learning rates start over, so
the bound above holds again from the restart on, with ``pi_k >= share / K``.

Delayed feedback.  The forecast of step ``h`` made at reading ``t`` is scored at
reading ``t + h``; the aggregator keeps the experts' pending forecasts and
updates the weights of step ``h`` when its target arrives (recomputing ``p`` with
the current weights, which keeps ``sum_k w_k r_k = 0`` exact).

The module depends on numpy only, and its whole state is a dict of arrays
(:meth:`Aggregator.state_dict`), so the Kafka service and the edge box can run
the combination step next to the experts' own streaming steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

LOSSES = ("absolute", "square")
_STATE_KEYS = ("prior", "regret", "regularized", "sq_sum", "eta", "max_abs", "pending",
               "n_pending", "n_updates")


@dataclass(frozen=True)
class AggregationConfig:
    """Attributes
    ----------
    n_experts
        Number of experts ``K`` (>= 1).
    horizon
        Forecast steps ``H``; each step has its own weights.
    loss
        ``"absolute"`` (the MAE/MASE the benchmarks score) or ``"square"``.
    scale
        Loss unit: errors are divided by it so learning rates do not depend on the
        sensor's units (``auto`` passes the naive forecast's MAE on the history).
    eta
        Fixed learning rate; 0 (default) for BOA's adaptive rate per expert.
    share
        Share of the prior that goes uniformly to every expert at a restart.
    """

    n_experts: int
    horizon: int = 1
    loss: str = "absolute"
    scale: float = 1.0
    eta: float = 0.0
    share: float = 0.3

    def __post_init__(self) -> None:
        if self.n_experts < 1 or self.horizon < 1:
            raise ValueError(f"need n_experts >= 1 and horizon >= 1, got {self.n_experts}, "
                             f"{self.horizon}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss '{self.loss}' unknown; valid: {', '.join(LOSSES)}")
        if not (self.scale > 0 and np.isfinite(self.scale)):
            raise ValueError(f"scale must be a positive finite number, got {self.scale}")
        if self.eta < 0 or not 0 <= self.share <= 1:
            raise ValueError(f"need eta >= 0 and 0 <= share <= 1, got eta={self.eta}, "
                             f"share={self.share}")


class Aggregator:
    """BOA weights per horizon step over ``K`` experts (see the module docstring).

    Per reading: :meth:`combine` the experts' forecasts ``(H, K)`` into the
    aggregate ``(H,)``, :meth:`push` them, then :meth:`update` with the reading.

    >>> agg = Aggregator(AggregationConfig(n_experts=2, horizon=1))
    >>> for t in range(200):
    ...     experts = np.array([[0.0, 1.0]])      # expert 1 is always right
    ...     agg.push(experts)
    ...     agg.update(1.0)
    >>> bool(agg.weights[0, 1] > 0.95)
    True
    """

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

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything learned so far, as numpy arrays (with the config)."""
        state = {k: np.array(getattr(self, k), dtype=np.float64, copy=True)
                 for k in _STATE_KEYS}
        # no NaN in a saved state: empty or failed pending forecasts are a mask
        state["pending_mask"] = np.isfinite(state["pending"]).astype(np.float64)
        state["pending"] = np.nan_to_num(state["pending"], nan=0.0)
        cfg = dataclasses.asdict(self.config)
        state["config"] = np.array([cfg["n_experts"], cfg["horizon"], LOSSES.index(cfg["loss"]),
                                    cfg["scale"], cfg["eta"], cfg["share"]], dtype=np.float64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` (the config must match this aggregator's)."""
        mine = self.state_dict()["config"]
        if not np.array_equal(np.asarray(state["config"], dtype=np.float64), mine):
            raise ValueError(f"aggregator state was saved with config {state['config']}, "
                             f"this aggregator has {mine}")
        for k in _STATE_KEYS:
            value = np.asarray(state[k], dtype=np.float64).copy()
            setattr(self, k, int(value) if k in ("n_pending", "n_updates") else value)
        self.pending = np.where(np.asarray(state["pending_mask"]) > 0, self.pending, np.nan)

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Aggregator:
        """A new aggregator holding ``state`` (the config is read from it)."""
        n, h, loss, scale, eta, share = np.asarray(state["config"], dtype=np.float64)
        agg = cls(AggregationConfig(int(n), int(h), LOSSES[int(loss)], float(scale),
                                    float(eta), float(share)))
        agg.load_state_dict(state)
        return agg

    def _check(self, experts: np.ndarray) -> np.ndarray:
        x = np.asarray(experts, dtype=np.float64)
        want = (self.config.horizon, self.config.n_experts)
        if x.shape != want:
            raise ValueError(f"expert forecasts must have shape {want}, got {x.shape}")
        return x


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


def summary(names: list[str], weights: np.ndarray, top: int = 3) -> str:
    """``"esn 0.61, linear 0.27, ets 0.12"``: the largest weights, largest first."""
    order = np.argsort(-weights)[:top]
    return ", ".join(f"{names[i]} {weights[i]:.2f}" for i in order if weights[i] >= 0.005)


def as_dict(agg: Aggregator) -> dict[str, Any]:
    """Config and current weights, JSON-ready (for logs and reports)."""
    return {"config": dataclasses.asdict(agg.config), "weights": agg.weights.tolist(),
            "n_updates": agg.n_updates}
