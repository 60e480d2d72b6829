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

Batches.  :class:`BatchAggregator` holds the state of ``S`` series in arrays with a
leading series axis (weights state ``(S, H, K)``, pending forecasts
``(S, H, H, K)``) and runs ``combine``/``push``/``update``/``restart`` for any
subset of them with array operations, no Python loop over series: the serving
engine (:mod:`tsforge.engine.aggregate`) aggregates every sensor of a model group
in one call per time step.  :class:`Aggregator` is the one-series view the
library's ``auto`` uses (``S = 1``); both run the same arithmetic, and the test
suite checks a batch against independent series of a plain per-series
reference to 1e-12.

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


class BatchAggregator:
    """BOA weights of ``capacity`` series with the same config (see the module docstring).

    Every method takes ``sel``, the series to work on: an index array (distinct
    positions) or a slice.  Arrays of expert forecasts are ``(n, H, K)``.
    """

    _ARRAYS = ("prior", "regret", "regularized", "sq_sum", "eta", "max_abs", "pending",
               "n_pending", "n_updates")

    def __init__(self, config: AggregationConfig, capacity: int = 1,
                 prior: np.ndarray | None = None) -> None:
        self.config = config
        k, h = config.n_experts, config.horizon
        p = np.full(k, 1.0 / k) if prior is None else np.asarray(prior, dtype=np.float64)
        if p.shape != (k,) or np.any(p <= 0) or not np.all(np.isfinite(p)):
            raise ValueError(f"prior must be {k} positive finite numbers, got {p}")
        self.initial_prior = np.tile(p / p.sum(), (h, 1))  # (H, K): a new series starts here
        self.capacity = 0
        self.prior = np.zeros((0, h, k))
        self.regret = np.zeros((0, h, k))  # sum of r: what each expert would have saved
        self.regularized = np.zeros((0, h, k))  # sum of r - eta r^2 (BOA's R)
        self.sq_sum = np.zeros((0, h, k))  # sum of r^2
        self.eta = np.zeros((0, h, k))  # current learning rates (0: none yet)
        self.max_abs = np.zeros((0, h))  # largest |r| so far
        self.pending = np.zeros((0, h, h, k))  # pending[s, j]: forecasts made j+1 readings ago
        self.n_pending = np.zeros(0, dtype=np.int64)
        self.n_updates = np.zeros(0, dtype=np.int64)
        # weights as last computed, valid until the series learns or restarts: the
        # weights that combine a step's forecasts score them at the next reading
        self._w = np.zeros((0, h, k))
        self._w_ok = np.zeros(0, dtype=bool)
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        """Room for ``capacity`` series; the new ones start from the initial prior."""
        old = self.capacity
        if capacity <= old:
            return
        for name in (*self._ARRAYS, "_w", "_w_ok"):
            a = getattr(self, name)
            out = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
            out[:old] = a
            setattr(self, name, out)
        self.capacity = capacity
        self.reset(slice(old, capacity))

    def reset(self, sel: Any, prior: np.ndarray | None = None) -> None:
        """Series ``sel`` as new: ``prior`` ``(H, K)`` (default: the initial one)."""
        self.prior[sel] = self.initial_prior if prior is None else prior
        for a in (self.regret, self.regularized, self.sq_sum, self.eta, self.max_abs):
            a[sel] = 0.0
        self.pending[sel] = np.nan
        self.n_pending[sel] = 0
        self.n_updates[sel] = 0
        self._w_ok[sel] = False

    # ------------------------------------------------------------------ weights
    def _rates(self, sel: Any) -> np.ndarray:
        """Learning rates: fixed, or BOA's ``min(1/(2E), sqrt(log(1/pi)/V))``."""
        if self.config.eta > 0:
            return np.full_like(self.eta[sel], self.config.eta)
        max_abs, sq_sum = self.max_abs[sel], self.sq_sum[sel]
        cap = 1.0 / (2.0 * np.maximum(max_abs, 1e-300))
        if (sq_sum > 0).all() and (max_abs > 0).all():  # usual: no mask selects anything
            return np.minimum(cap[..., None], np.sqrt(np.log(1.0 / self.prior[sel]) / sq_sum))
        cap = np.where(max_abs > 0, cap, 0.0)
        with np.errstate(divide="ignore"):
            adaptive = np.sqrt(np.log(1.0 / self.prior[sel]) / sq_sum)
        return np.minimum(cap[..., None], np.where(sq_sum > 0, adaptive, np.inf))

    def weights(self, sel: Any) -> np.ndarray:
        """Current weights ``(n, H, K)``, each row non-negative and summing to 1."""
        return np.array(self._current(sel))

    def _current(self, sel: Any) -> np.ndarray:
        """The cached weights of ``sel``, recomputed where stale (not to be written to)."""
        if not self._w_ok[sel].all():
            self._w[sel] = self._weights(sel)
            self._w_ok[sel] = True
        return self._w[sel]

    def _weights(self, sel: Any) -> np.ndarray:
        eta, prior = self.eta[sel], self.prior[sel]
        learned = eta > 0
        if not learned.any():
            return prior.copy()
        fixed = self.config.eta > 0
        everywhere = learned.all()  # the usual case: no log(0), the masks below select all
        if everywhere:
            logw = np.log(prior) + eta * self.regularized[sel] + (0.0 if fixed else np.log(eta))
        else:
            with np.errstate(divide="ignore"):
                logw = np.log(prior) + eta * self.regularized[sel] + (0.0 if fixed else
                                                                      np.log(eta))
            # a step whose learning rates are all still 0 keeps its prior
            logw = np.where(learned.any(axis=-1, keepdims=True), logw, np.log(prior))
        logw -= logw.max(axis=-1, keepdims=True)
        w = np.exp(logw)
        w /= w.sum(axis=-1, keepdims=True)
        # a series that has learned nothing yet keeps its prior exactly
        return w if everywhere else np.where(learned.any(axis=(-2, -1))[:, None, None], w,
                                             prior)

    def combine(self, sel: Any, experts: np.ndarray) -> np.ndarray:
        """Aggregate forecasts ``(n, H)`` of the experts' forecasts ``(n, H, K)``.

        Non-finite expert forecasts get no weight (the others are renormalised).
        """
        return weighted(self._current(sel), experts)

    # ------------------------------------------------------------------ learning
    def push(self, sel: Any, experts: np.ndarray) -> None:
        """Remember the experts' forecasts made now, to score them as targets arrive."""
        if self.config.horizon > 1:  # age the older ones by one reading
            self.pending[sel, 1:] = self.pending[sel, :-1]
        self.pending[sel, 0] = experts
        self.n_pending[sel] = np.minimum(self.n_pending[sel] + 1, self.config.horizon)

    def update(self, sel: Any, y: np.ndarray) -> np.ndarray:
        """Score the pending forecasts whose targets are readings ``y`` ``(n,)``.

        Returns the instantaneous regrets ``r`` ``(n, H, K)`` (0 where nothing was
        scored).  A non-finite reading scores nothing; its series' forecasts age by
        one reading all the same.
        """
        y = np.asarray(y, dtype=np.float64)
        h, k = self.config.horizon, self.config.n_experts
        fin = np.isfinite(y)
        if fin.all():
            r = self._learn(sel, y)
            self._age(sel)
            return r
        r = np.zeros((y.shape[0], h, k))
        if fin.any():
            ix = np.arange(self.capacity)[sel][fin]
            r[fin] = self._learn(ix, y[fin])
        self._age(sel)
        return r

    def _learn(self, sel: Any, y: np.ndarray) -> np.ndarray:
        """The BOA update of series ``sel`` on finite readings ``y``."""
        cfg, h = self.config, self.config.horizon
        steps = np.arange(h)
        x = self.pending[sel][:, steps, steps]  # (n, H, K): pending[j, j] targets y at step j
        ok = np.isfinite(x)
        p = weighted(self._current(sel), x)  # (n, H)
        g = gradient(p, y[:, None], cfg.loss, cfg.scale)
        scored = steps[None, :] < self.n_pending[sel][:, None]  # (n, H)
        # the usual case, every step scored and every forecast finite, skips the masks
        # (they would select the same numbers)
        every = bool(scored.all())
        if every and ok.all():
            r = g[..., None] * (p[..., None] - x)
        else:
            r = np.where(ok & scored[..., None], g[..., None] * (p[..., None] - np.where(
                ok, x, p[..., None])), 0.0)
        r_sq = r ** 2
        biggest = np.maximum(self.max_abs[sel], np.abs(r).max(axis=-1))
        self.max_abs[sel] = biggest if every else np.where(scored, biggest, self.max_abs[sel])
        self.sq_sum[sel] += r_sq
        eta = self._rates(sel)
        if not every:
            eta = np.where(scored[..., None], eta, self.eta[sel])
        self.eta[sel] = eta
        self.regret[sel] += r
        self.regularized[sel] += r - eta * r_sq
        self.n_updates[sel] += 1
        self._w_ok[sel] = False
        return r

    def _age(self, sel: Any) -> None:
        """Drop the forecasts whose last step was just scored."""
        full = self.n_pending[sel] == self.config.horizon
        if full.all():  # the usual case once the first H readings are in
            self.pending[sel, -1] = np.nan
            self.n_pending[sel] = self.config.horizon - 1
        elif full.any():
            pending = self.pending[sel]
            pending[full, -1] = np.nan
            self.pending[sel] = pending
            self.n_pending[sel] -= full

    def restart(self, sel: Any, share: float | None = None) -> None:
        """Start series ``sel`` afresh from the prior ``(1 - share) w + share / K`` (drift)."""
        s = self.config.share if share is None else share
        prior = (1.0 - s) * self._current(sel) + s / self.config.n_experts
        prior /= prior.sum(axis=-1, keepdims=True)
        self.prior[sel] = prior
        for a in (self.regret, self.regularized, self.sq_sum, self.eta):
            a[sel] = 0.0
        self._w_ok[sel] = False

    # ------------------------------------------------------------------ state
    def state_dict(self, i: int) -> dict[str, np.ndarray]:
        """Series ``i``'s state as numpy arrays (with the config): :class:`Aggregator`'s format."""
        state = {k: np.array(getattr(self, k)[i], dtype=np.float64, copy=True)
                 for k in _STATE_KEYS}
        # no NaN in a saved state: empty or failed pending forecasts are a mask
        state["pending_mask"] = np.isfinite(state["pending"]).astype(np.float64)
        state["pending"] = np.nan_to_num(state["pending"], nan=0.0)
        state["config"] = config_array(self.config)
        return state

    def load_state_dict(self, i: int, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` into series ``i`` (the config must match)."""
        mine = config_array(self.config)
        if not np.array_equal(np.asarray(state["config"], dtype=np.float64), mine):
            raise ValueError(f"aggregator state was saved with config {state['config']}, "
                             f"this aggregator has {mine}")
        for k in _STATE_KEYS:
            getattr(self, k)[i] = np.asarray(state[k], dtype=np.float64)
        self.pending[i] = np.where(np.asarray(state["pending_mask"]) > 0, self.pending[i],
                                   np.nan)
        self._w_ok[i] = False


class Aggregator:
    """BOA weights per horizon step over ``K`` experts, one series (see the module docstring).

    Per reading: :meth:`combine` the experts' forecasts ``(H, K)`` into the
    aggregate ``(H,)``, :meth:`push` them, then :meth:`update` with the reading.
    A :class:`BatchAggregator` of one series underneath (:attr:`batch`).

    >>> agg = Aggregator(AggregationConfig(n_experts=2, horizon=1))
    >>> for t in range(200):
    ...     experts = np.array([[0.0, 1.0]])      # expert 1 is always right
    ...     agg.push(experts)
    ...     agg.update(1.0)
    >>> bool(agg.weights[0, 1] > 0.95)
    True
    """

    _ONE = slice(0, 1)

    def __init__(self, config: AggregationConfig, prior: np.ndarray | None = None) -> None:
        self.config = config
        self.batch = BatchAggregator(config, 1, prior)

    def __getattr__(self, name: str) -> Any:
        """``prior``, ``regret``, ``eta``, ``pending``, ...: the one series' arrays."""
        if name in BatchAggregator._ARRAYS and "batch" in self.__dict__:
            value = getattr(self.batch, name)[0]
            return int(value) if value.ndim == 0 else value
        raise AttributeError(name)

    @property
    def weights(self) -> np.ndarray:
        """Current weights ``(H, K)``, each row non-negative and summing to 1."""
        return self.batch.weights(self._ONE)[0]

    def combine(self, experts: np.ndarray) -> np.ndarray:
        """Aggregate forecast ``(H,)`` of the experts' forecasts ``(H, K)``.

        Non-finite expert forecasts get no weight (the others are renormalised).
        """
        return self.batch.combine(self._ONE, self._check(experts)[None])[0]

    def push(self, experts: np.ndarray) -> None:
        """Remember the experts' forecasts made now, to score them as targets arrive."""
        self.batch.push(self._ONE, self._check(experts)[None])

    def update(self, y: float) -> np.ndarray:
        """Score the pending forecasts whose target is reading ``y``; update the weights.

        Returns the instantaneous regrets ``r`` ``(H, K)`` of this reading (0 where
        nothing was scored).  A non-finite ``y`` scores nothing: the forecasts age by
        one reading all the same.
        """
        return self.batch.update(self._ONE, np.array([y], dtype=np.float64))[0]

    def restart(self, share: float | None = None) -> None:
        """Start afresh from the prior ``(1 - share) w + share / K`` (on a drift alarm)."""
        self.batch.restart(self._ONE, share)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything learned so far, as numpy arrays (with the config)."""
        return self.batch.state_dict(0)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` (the config must match this aggregator's)."""
        self.batch.load_state_dict(0, state)

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Aggregator:
        """A new aggregator holding ``state`` (the config is read from it)."""
        agg = cls(config_from_array(state["config"]))
        agg.load_state_dict(state)
        return agg

    def _check(self, experts: np.ndarray) -> np.ndarray:
        x = np.asarray(experts, dtype=np.float64)
        want = (self.config.horizon, self.config.n_experts)
        if x.shape != want:
            raise ValueError(f"expert forecasts must have shape {want}, got {x.shape}")
        return x


def config_array(config: AggregationConfig) -> np.ndarray:
    """The config as the float array saved in every state."""
    return np.array([config.n_experts, config.horizon, LOSSES.index(config.loss),
                     config.scale, config.eta, config.share], dtype=np.float64)


def config_from_array(values: np.ndarray) -> AggregationConfig:
    """Inverse of :func:`config_array`."""
    n, h, loss, scale, eta, share = np.asarray(values, dtype=np.float64)
    return AggregationConfig(int(n), int(h), LOSSES[int(loss)], float(scale), float(eta),
                             float(share))


def gradient(p: np.ndarray, y: np.ndarray, loss: str, scale: float) -> np.ndarray:
    """``d l(p, y) / dp`` of the loss in units of ``scale`` (element-wise)."""
    if loss == "absolute":  # l = |p - y| / scale
        return np.sign(p - y) / scale
    return 2.0 * (p - y) / scale ** 2  # l = ((p - y) / scale)^2


def weighted(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``w . x`` over the last axis, finite entries of ``x`` only (NaN where none is)."""
    ok = np.isfinite(x)
    if ok.all():  # the usual case, in fewer array calls (the same arithmetic)
        total = w.sum(axis=-1)
        if (total > 0).all():  # weights as served: no division by 0 to mask
            return (w * x).sum(axis=-1) / total
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w * x).sum(axis=-1) / total, np.nan)
    wk = np.where(ok, w, 0.0)
    total = wk.sum(axis=-1)
    good = total > 0
    out = np.full(total.shape, np.nan)
    out[good] = (wk[good] * np.where(ok, x, 0.0)[good]).sum(axis=-1) / total[good]
    return out


def summary(names: list[str], weights: np.ndarray, top: int = 3) -> str:
    """``"esn 0.61, linear 0.27, ets 0.12"``: the largest weights, largest first."""
    order = np.argsort(-weights)[:top]
    return ", ".join(f"{names[i]} {weights[i]:.2f}" for i in order if weights[i] >= 0.005)


def as_dict(agg: Aggregator) -> dict[str, Any]:
    """Config and current weights, JSON-ready (for logs and reports)."""
    return {"config": dataclasses.asdict(agg.config), "weights": agg.weights.tolist(),
            "n_updates": agg.n_updates}
