"""The adaptive conformal intervals of :mod:`tsforge.intervals` for many sensors at once.

:class:`~tsforge.intervals.ConformalIntervals` tracks one series; the engine
keeps the same state for every sensor of a model group in arrays with a leading
sensor axis and runs ``observe``/``record`` for a batch of sensors with array
operations.  The rule and the arithmetic are those of ``ConformalIntervals``
(same windows, same ACI update, same ranks), so the half-widths are identical;
a test compares them.  One storage change: the forecasts waiting to be scored
sit in a ring per sensor (slot ``issued % H``) instead of being shifted by one
row at every reading, which would copy ``H x H`` values per sensor and step.
:meth:`state_dict`/:meth:`load_state_dict` convert to and from the per-series
layout, so checkpoints and bundle manifests keep their format.
"""

from __future__ import annotations

import numpy as np

from tsforge.engine.chain import grown
from tsforge.intervals import STATE_KEYS, IntervalConfig


class ConformalArrays:
    """Interval state of up to ``capacity`` sensors with horizon ``horizon``."""

    def __init__(self, config: IntervalConfig, horizon: int, capacity: int = 16) -> None:
        self.config = config
        self.H, self.L, self.W = int(horizon), len(config.levels), config.window
        self.miscoverage = 1.0 - np.asarray(config.levels)  # (L,)
        self._k = np.arange(self.H)
        self.capacity = 0
        H, L, W = self.H, self.L, self.W
        self.alpha = np.zeros((0, H, L))  # working levels a_t, (sensor, step, level)
        self.residuals = np.zeros((0, H, W))  # ring of |residual| per step
        self.ordered = np.zeros((0, H, W))  # each window sorted, empty slots inf
        self.count = np.zeros((0, H), dtype=np.int64)
        self.pending_mean = np.zeros((0, H, H))  # (sensor, slot, step)
        self.pending_q = np.zeros((0, H, H, L))  # (sensor, slot, step, level)
        self.pending_ok = np.zeros((0, H), dtype=bool)
        self.head = np.zeros(0, dtype=np.int64)  # forecasts recorded so far, mod H
        self.q = np.zeros((0, H, L))  # half-widths of the latest forecast
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        if capacity <= self.capacity:
            return
        old = self.capacity
        self.alpha = grown(self.alpha, capacity, 0.0)
        self.alpha[old:] = self.miscoverage
        self.residuals = grown(self.residuals, capacity, 0.0)
        self.ordered = grown(self.ordered, capacity, np.inf)
        self.count = grown(self.count, capacity, 0)
        self.pending_mean = grown(self.pending_mean, capacity, 0.0)
        self.pending_q = grown(self.pending_q, capacity, np.nan)
        self.pending_ok = grown(self.pending_ok, capacity, False)
        self.head = grown(self.head, capacity, 0)
        self.q = grown(self.q, capacity, np.nan)
        self.capacity = capacity

    def reset(self, i: int) -> None:
        """Empty sensor ``i``'s state (a sensor served for the first time)."""
        self.alpha[i] = self.miscoverage
        self.residuals[i] = 0.0
        self.ordered[i] = np.inf
        self.count[i] = 0
        self.pending_mean[i] = 0.0
        self.pending_q[i] = np.nan
        self.pending_ok[i] = False
        self.head[i] = 0
        self.q[i] = np.nan

    # ------------------------------------------------------------------ streaming
    def observe(self, idx: np.ndarray, y: np.ndarray, contiguous: bool = False) -> None:
        """Score the pending forecasts of sensors ``idx`` (distinct) on readings ``y``.

        Non-finite readings score nothing, as in ``ConformalIntervals.observe``.
        ``contiguous``: ``idx`` is ``0..n-1``, so the windows are updated in place.
        """
        H, W, k = self.H, self.W, self._k
        slots = (self.head[idx, None] - 1 - k) % H  # (n, H): slot of lag k
        rows = idx[:, None]
        r = np.abs(y[:, None] - self.pending_mean[rows, slots, k])  # (n, H)
        valid = self.pending_ok[rows, slots] & np.isfinite(r)
        if not valid.any():
            return
        if self.config.method == "split":
            valid &= self.count[idx] < W  # the calibration set is frozen once full
        else:
            issued_q = self.pending_q[rows, slots, k]  # (n, H, L)
            err = (r[:, :, None] > issued_q).astype(np.float64)
            g = self.config.gamma
            step = np.where(np.isnan(issued_q), 0.0, g * (self.miscoverage - err))
            alpha = self.alpha[idx]
            self.alpha[idx] = np.where(valid[:, :, None],
                                       np.clip(alpha + step, -g, 1.0 + g), alpha)
        si, sk = np.nonzero(valid)
        s, rv = idx[si], r[si, sk]
        cnt = self.count[s, sk]
        slot = cnt % W
        old = np.where(cnt >= W, self.residuals[s, sk, slot], np.inf)
        self.residuals[s, sk, slot] = rv
        self.count[s, sk] = cnt + 1
        # Swap the evicted value (inf for an empty slot) for the new one and re-sort
        # the rows, which are sorted but for that one element.
        in_place = contiguous and s.size == valid.size
        win = (self.ordered[:idx.size].reshape(-1, W) if in_place else self.ordered[s, sk])
        win[np.arange(s.size), np.count_nonzero(win < old[:, None], axis=1)] = rv
        win.sort(axis=1, kind="stable")
        if not in_place:
            self.ordered[s, sk] = win

    def record(self, idx: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Register the forecasts ``(n, H)`` just issued; return their half-widths ``(n, L, H)``."""
        q = self.half_widths(idx)
        slot = self.head[idx] % self.H
        self.pending_mean[idx, slot] = mean
        self.pending_q[idx, slot] = q
        self.pending_ok[idx, slot] = True
        self.head[idx] = slot + 1
        self.q[idx] = q
        return q.transpose(0, 2, 1)

    def half_widths(self, idx: np.ndarray) -> np.ndarray:
        """Half-widths ``(n, H, L)`` of sensors ``idx`` from their windows and levels."""
        W, k = self.W, self._k
        n = np.minimum(self.count[idx], W)  # (n, H)
        rank = np.ceil((n + 1)[:, :, None] * (1.0 - self.alpha[idx]) - 1e-9)  # (n, H, L)
        pos = np.clip(rank, 1, W).astype(np.intp) - 1
        rows = idx[:, None, None]
        q = self.ordered[rows, k[None, :, None], pos]
        over = rank > n[:, :, None]
        if over.any():
            if self.config.unbounded == "inf":
                q[over] = np.inf
            else:
                top = self.ordered[idx[:, None], k, np.maximum(n - 1, 0)]  # (n, H)
                q = np.where(over, top[:, :, None], q)
        q[rank < 1] = 0.0
        q[n < self.config.warmup] = np.nan
        return q

    # ------------------------------------------------------------------ persistence
    def state_dict(self, i: int) -> dict[str, np.ndarray]:
        """Sensor ``i``'s state in the layout of ``ConformalIntervals.state_dict``."""
        slots = (self.head[i] - 1 - self._k) % self.H  # row k: forecast issued k ago
        return {
            "alpha": self.alpha[i].T.copy(),
            "residuals": self.residuals[i].copy(),
            "count": self.count[i].copy(),
            "pending_mean": self.pending_mean[i, slots].copy(),
            "pending_q": self.pending_q[i, slots].transpose(2, 0, 1).copy(),
            "pending_ok": self.pending_ok[i, slots].copy(),
            "q": self.q[i].T.copy(),
        }

    def load_state_dict(self, i: int, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` (or ``ConformalIntervals.state_dict``) gave."""
        from tsforge.intervals import ConformalIntervals

        check = ConformalIntervals(self.config, self.H)
        check.load_state_dict({k: state[k] for k in STATE_KEYS})  # validates shapes
        slots = (-1 - self._k) % self.H
        self.head[i] = 0
        self.alpha[i] = check.alpha.T
        self.residuals[i] = check.residuals
        self.count[i] = check.count
        self.ordered[i] = check._ordered
        self.pending_mean[i, slots] = check.pending_mean
        self.pending_q[i, slots] = check.pending_q.transpose(1, 2, 0)
        self.pending_ok[i, slots] = check.pending_ok
        self.q[i] = check.q.T
