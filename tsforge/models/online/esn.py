"""Echo state network: a fixed random reservoir and a readout learned by recursive least squares.

The readout learns by exponentially weighted RLS with a regulariser that is never
forgotten.  Plain RLS with forgetting factor λ < 1 minimises
``Σ_i λ^(t-i) e_i² + λ^t δ |w|²``: the ridge term decays, and in any direction the
features stop exploring (a stuck sensor: the same feature vector for thousands of
readings) the inverse-correlation matrix ``P`` grows by ``1/λ`` per reading.  It
winds up (trace 5e7 after 2,000 stuck readings at λ = 0.999), loses positive
definiteness to round-off, and the first readings after the sensor recovers get
huge gain and huge errors.

Here every reading also adds one pseudo-observation ``sqrt(r) e_k`` with target 0
on coordinate ``k = step mod m`` (m features), ``r = (1 - λ) δ m``.  Over m readings
the pseudo-observations add ``(1 - λ) δ I`` per reading on average, so the
information matrix stays at least about ``δ I`` in every direction and ``P`` is
bounded by about ``I / δ`` whatever the data do.  It is one more rank-one update
(O(m²), the cost of the data update), it leaves λ = 1 untouched (r = 0), and the
readout is still an exact least-squares solution, of the ridge problem
``Σ_i λ^(t-i) (e_i² + r w_{k_i}²) + λ^t δ |w|²`` (``tests/test_online_learners.py``
checks it against that batch solution).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.models.online.batch import SensorBatch, adopt_residual
from tsforge.models.online.rnn import matvec

#: P is symmetrised every this many readings (round-off drift is slow; a pass over P is not free).
SYMMETRISE_EVERY = 64
#: Bytes of P updated per chunk of sensors (a core's share of cache; 2 MB measured best).
CHUNK_BYTES = 1 << 21


@dataclasses.dataclass(frozen=True)
class ESNConfig(ForecasterConfig):
    """Attributes
    ----------
    reservoir
        Number of reservoir units.
    spectral_radius
        Spectral radius the reservoir matrix is scaled to (< 1 for the echo-state property).
    density
        Share of non-zero reservoir weights (sparse reservoirs are cheaper and work as well).
    leak
        Leak rate: ``h = (1-leak) h + leak tanh(W_in x + W h + b)``.
    input_scale
        Scale of the input weights.
    forgetting
        RLS forgetting factor λ ≤ 1 (1 = remember everything; < 1 tracks drift).
    ridge
        Ridge penalty δ of the batch fit, initial RLS regularisation (P_0 = I / δ) and the
        regulariser RLS keeps with λ < 1 (see the module docstring).
    washout
        Initial reservoir states discarded by the batch fit.
    residual
        Forecast the change from the last reading (``z_t + w·[h_t, 1]``) instead of the level.
    """

    reservoir: int = 100
    spectral_radius: float = 0.9
    density: float = 0.1
    leak: float = 0.5
    input_scale: float = 0.5
    forgetting: float = 0.999
    ridge: float = 1e-2
    washout: int = 50
    residual: bool = True


def reservoir(config: ESNConfig, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed ``W (n, n)``, ``W_in (n, d)``, ``b (n,)`` drawn from ``config.seed``."""
    c, n = config, config.reservoir
    rng = np.random.default_rng(c.seed)
    W = rng.standard_normal((n, n)) * (rng.random((n, n)) < c.density)
    radius = max(np.abs(np.linalg.eigvals(W)).max(), 1e-12)
    W_in = rng.uniform(-c.input_scale, c.input_scale, (n, d))
    return W * (c.spectral_radius / radius), W_in, rng.uniform(-0.1, 0.1, n)


def rls_step(P: np.ndarray, W: np.ndarray, phi: np.ndarray, target: np.ndarray,
             valid: np.ndarray, steps: np.ndarray, lam: float, ridge: float) -> None:
    """One bounded RLS update in place, for sensors ``(C,)`` and heads ``(H,)``.

    ``P (C, H, m, m)``, ``W (C, H, m)``, features ``phi (C, H, m)``, ``target (C, H)``;
    heads not ``valid`` are left alone.  The data update ``P <- (P - g (Pφ)^T) / λ``
    and the regulariser's pseudo-observation ``sqrt(r) e_k`` (target 0) are applied
    together as one rank-2 correction, ``P <- P/λ - [g/λ, g_k] [Pφ, c_k]^T``, where
    ``c_k`` is column k of P after the data update (computed from the old column).
    """
    m = P.shape[-1]
    inv = np.where(valid, 1.0 / lam, 1.0)[..., None]  # (C, H, 1)
    Pphi = matvec(P, phi)  # (C, H, m)
    g = Pphi * (valid / (lam + np.einsum("shm,shm->sh", phi, Pphi)))[..., None]
    W += g * (target - np.einsum("shm,shm->sh", W, phi))[..., None]
    left, right = [inv * g], [Pphi]
    r = (1.0 - lam) * ridge * m
    if r > 0:  # the regulariser's pseudo-observation sqrt(r) e_k, k = step mod m
        k = (steps % m)[:, None, None]  # (C, 1, 1)
        col = np.take_along_axis(P, k[..., None], axis=3)[..., 0]  # old P[:, :, :, k]
        col = inv * (col - g * np.take_along_axis(Pphi, k, axis=2))  # after the data update
        g_k = col * (r * valid[..., None] / (1.0 + r * np.take_along_axis(col, k, axis=2)))
        W -= g_k * np.take_along_axis(W, k, axis=2)
        left.append(g_k)
        right.append(col)
    P *= inv[..., None]
    P -= np.matmul(np.stack(left, axis=-1), np.stack(right, axis=-2))
    due = steps % SYMMETRISE_EVERY == 0
    if np.any(due):
        P[due] = (P[due] + np.swapaxes(P[due], -1, -2)) / 2.0


class ESNBatch(SensorBatch):
    """S sensors' reservoirs and RLS readouts; the k-step head reads ``[h_{t-k}, 1]``."""

    family = "esn"

    def __init__(self, config: ESNConfig, d: int, sensors: int) -> None:
        super().__init__(config, d, sensors)
        c, S = config, sensors
        n, H, m = c.reservoir, c.horizon, c.reservoir + 1
        W, W_in, b = reservoir(c, d)
        self.W = np.repeat(W[None], S, axis=0)
        self.W_in = np.repeat(W_in[None], S, axis=0)
        self.b = np.repeat(b[None], S, axis=0)
        self.h = np.zeros((S, n))
        self.W_out = np.zeros((S, H, m))
        self.P = np.repeat(np.repeat(np.eye(m)[None, None] / c.ridge, H, axis=1), S, axis=0)
        self.past_phi = np.zeros((S, H, m))
        self.past_y = np.zeros((S, H))
        self.n_past = np.zeros(S, dtype=np.int64)
        self.steps = np.zeros(S, dtype=np.int64)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "W_in": self.W_in, "b": self.b, "h": self.h, "W_out": self.W_out,
                "P": self.P, "past_phi": self.past_phi, "past_y": self.past_y,
                "n_past": self.n_past, "steps": self.steps}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        self._shared = None

    def load_sensor_state(self, s: int, state: dict[str, np.ndarray]) -> None:
        super().load_sensor_state(s, state)
        self._shared = None

    def shared_reservoir(self) -> bool:
        """True when every sensor has the same reservoir (one seed and configuration):
        the state update is then one matrix product for all sensors."""
        if getattr(self, "_shared", None) is None:
            self._shared = self.sensors > 1 and all(
                np.array_equal(a, a[:1].repeat(self.sensors, axis=0))
                for a in (self.W, self.W_in, self.b))
        return bool(self._shared)

    def next_state(self, h: np.ndarray, rows: np.ndarray) -> np.ndarray:
        leak = self.config.leak
        if self.shared_reservoir():
            pre = rows @ self.W_in[0].T + h @ self.W[0].T + self.b[0]
        else:
            pre = matvec(self.W_in, rows) + matvec(self.W, h) + self.b
        return (1 - leak) * h + leak * np.tanh(pre)

    def _learn(self, rows: np.ndarray) -> None:
        """Update each head with the reading its stored feature was forecasting.

        Sensors are updated in chunks whose ``P`` fits in a CPU cache, so the passes of
        one update over ``P`` read memory once instead of once per pass.
        """
        c = self.config
        valid = np.arange(c.horizon)[None, :] < self.n_past[:, None]  # (S, H)
        target = rows[:, :1] - self.past_y if c.residual else np.repeat(rows[:, :1], c.horizon, 1)
        chunk = max(1, CHUNK_BYTES // self.P[0].nbytes)
        for lo in range(0, self.sensors, chunk):
            part = slice(lo, lo + chunk)
            rls_step(self.P[part], self.W_out[part], self.past_phi[part], target[part],
                     valid[part], self.steps[part], c.forgetting, c.ridge)

    def _advance(self, rows: np.ndarray) -> None:
        self.h = self.next_state(self.h, rows)
        self.past_phi[:, 1:] = self.past_phi[:, :-1].copy()
        self.past_phi[:, 0, :-1] = self.h
        self.past_phi[:, 0, -1] = 1.0
        self.past_y[:, 1:] = self.past_y[:, :-1].copy()
        self.past_y[:, 0] = rows[:, 0]
        np.minimum(self.n_past + 1, self.config.horizon, out=self.n_past)
        self.steps += 1

    def forecast_many(self) -> np.ndarray:
        out = np.einsum("shm,sm->sh", self.W_out[..., :-1], self.h) + self.W_out[..., -1]
        return out + self.past_y[:, :1] if self.config.residual else out


class EchoStateForecaster(Forecaster):
    """Reservoir computing with an online RLS readout per horizon step.

    The k-step head is a linear readout of the state ``h_{t-k}`` (plus a bias)
    fitted to the reading ``z_t`` (or its change from ``z_{t-k-1}``, ``residual``);
    each head keeps its own inverse-correlation matrix ``P_k`` because its
    features arrive with a different delay.  The state lives in a one-sensor
    :class:`ESNBatch`.
    """

    name = "esn"
    Config = ESNConfig
    online = True
    exportable = True

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"reservoir": 20, "washout": 10}

    # one-sensor views of the batch state
    W_ = property(lambda self: self.batch_.W[0])
    W_in_ = property(lambda self: self.batch_.W_in[0])
    b_ = property(lambda self: self.batch_.b[0])
    h_ = property(lambda self: self.batch_.h[0])
    W_out_ = property(lambda self: self.batch_.W_out[0])
    P_ = property(lambda self: self.batch_.P[0])
    past_phi_ = property(lambda self: self.batch_.past_phi[0])

    def states(self, Z: np.ndarray) -> np.ndarray:
        """Reservoir states ``(T, n)`` driven by inputs ``Z`` ``(T, d)`` from the current state."""
        out = np.empty((Z.shape[0], self.config.reservoir))
        h = self.batch_.h
        for t, x in enumerate(Z):
            h = self.batch_.next_state(h, x[None])
            out[t] = h[0]
        return out

    def fit(self, y: Any, X: Any = None) -> EchoStateForecaster:
        """Run the reservoir over the history and fit every head by ridge regression."""
        y_arr, X_arr = self._check_fit_input(y, X)
        Z = np.column_stack([y_arr, X_arr])
        Z = Z[np.all(np.isfinite(Z), axis=1)]
        c = self.config
        self.batch_ = ESNBatch(c, Z.shape[1], 1)
        if Z.shape[0] < c.washout + c.horizon + 2:
            raise DataError(f"esn needs at least {c.washout + c.horizon + 2} finite readings")
        S = self.states(Z)
        Phi = np.column_stack([S, np.ones(len(S))])
        for k in range(c.horizon):
            # head k: feature at t, target z_{t+1+k} (minus z_t when residual)
            A = Phi[c.washout : len(S) - 1 - k]
            target = Z[c.washout + 1 + k :, 0]
            if c.residual:
                target = target - Z[c.washout : len(S) - 1 - k, 0]
            gram = A.T @ A + c.ridge * np.eye(A.shape[1])
            self.W_out_[k] = np.linalg.solve(gram, A.T @ target)
            self.P_[k] = np.linalg.inv(gram)
        b = self.batch_
        b.h[0] = S[-1]
        for k in range(c.horizon):
            b.past_phi[0, k] = Phi[len(S) - 1 - k]
            b.past_y[0, k] = Z[len(S) - 1 - k, 0]
        b.n_past[0] = c.horizon
        return self

    def _row(self, y: float, x: np.ndarray | None) -> np.ndarray:
        row = np.concatenate(([float(y)], self._check_step_input(x)))
        if not np.all(np.isfinite(row)):
            raise DataError(f"model 'esn' got a non-finite reading {row.tolist()}")
        return row[None]

    def rls_update(self, y: float) -> None:
        """Update each head with the reading ``y`` its stored feature was forecasting."""
        self.batch_._learn(np.array([[float(y)]]))

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        row = self._row(y, x)
        self.batch_._learn(row)
        self.batch_._advance(row)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self.batch_._advance(self._row(y, x))

    def forecast(self) -> Forecast:
        if not hasattr(self, "batch_"):
            raise DataError("model 'esn' is not fitted: call fit() first")
        return Forecast(mean=self.batch_.forecast_many()[0])

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.batch_.sensor_state(0) if hasattr(self, "batch_") else {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        adopt_residual(self, state)
        self.batch_ = ESNBatch(self.config, np.asarray(state["W_in"]).shape[1], 1)
        self.batch_.load_sensor_state(0, state)

    def streaming_core(self) -> Any:
        from tsforge.models.online.export import RNNReadoutCore

        return RNNReadoutCore(self.W_, self.W_in_, self.b_, self.W_out_[:, :-1],
                              self.W_out_[:, -1], leak=self.config.leak,
                              skip=np.ones(self.config.horizon) if self.config.residual else None)

    def stream_state(self) -> np.ndarray:
        return self.h_.copy()
