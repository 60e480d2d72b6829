"""Echo state network: a fixed random reservoir and a readout learned by recursive least squares."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig


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
        Ridge penalty of the batch fit and initial RLS regularisation (P_0 = I / ridge).
    washout
        Initial reservoir states discarded by the batch fit.
    """

    reservoir: int = 100
    spectral_radius: float = 0.9
    density: float = 0.1
    leak: float = 0.5
    input_scale: float = 0.5
    forgetting: float = 0.999
    ridge: float = 1e-2
    washout: int = 50


class EchoStateForecaster(Forecaster):
    """Reservoir computing with an online RLS readout per horizon step.

    The k-step head is a linear readout of the state ``h_{t-k}`` (plus a bias)
    fitted to the reading ``z_t``; each head keeps its own inverse-correlation
    matrix ``P_k`` because its features arrive with a different delay.
    """

    name = "esn"
    Config = ESNConfig
    online = True
    exportable = True

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"reservoir": 20, "washout": 10}

    def _init_reservoir(self, d: int) -> None:
        c = self.config
        n = c.reservoir
        rng = np.random.default_rng(c.seed)
        W = rng.standard_normal((n, n)) * (rng.random((n, n)) < c.density)
        radius = max(np.abs(np.linalg.eigvals(W)).max(), 1e-12)
        self.W_ = W * (c.spectral_radius / radius)
        self.W_in_ = rng.uniform(-c.input_scale, c.input_scale, (n, d))
        self.b_ = rng.uniform(-0.1, 0.1, n)
        self.h_ = np.zeros(n)
        H = c.horizon
        self.W_out_ = np.zeros((H, n + 1))
        self.P_ = np.repeat(np.eye(n + 1)[None] / c.ridge, H, axis=0)
        self.past_phi_ = np.zeros((H, n + 1))
        self.n_past_ = 0

    def _next_state(self, h: np.ndarray, x: np.ndarray) -> np.ndarray:
        leak = self.config.leak
        return (1 - leak) * h + leak * np.tanh(self.W_in_ @ x + self.W_ @ h + self.b_)

    def states(self, Z: np.ndarray) -> np.ndarray:
        """Reservoir states ``(T, n)`` driven by inputs ``Z`` ``(T, d)`` from the current state."""
        out = np.empty((Z.shape[0], self.config.reservoir))
        h = self.h_
        for t, x in enumerate(Z):
            h = self._next_state(h, x)
            out[t] = h
        return out

    def fit(self, y: Any, X: Any = None) -> EchoStateForecaster:
        """Run the reservoir over the history and fit every head by ridge regression."""
        y_arr, X_arr = self._check_fit_input(y, X)
        Z = np.column_stack([y_arr, X_arr])
        Z = Z[np.all(np.isfinite(Z), axis=1)]
        self._init_reservoir(Z.shape[1])
        c = self.config
        if Z.shape[0] < c.washout + c.horizon + 2:
            raise DataError(f"esn needs at least {c.washout + c.horizon + 2} finite readings")
        S = self.states(Z)
        Phi = np.column_stack([S, np.ones(len(S))])
        for k in range(c.horizon):
            # head k: feature at t, target z_{t+1+k}
            A = Phi[c.washout : len(S) - 1 - k]
            target = Z[c.washout + 1 + k :, 0]
            gram = A.T @ A + c.ridge * np.eye(A.shape[1])
            self.W_out_[k] = np.linalg.solve(gram, A.T @ target)
            self.P_[k] = np.linalg.inv(gram)
        self.h_ = S[-1]
        for k in range(c.horizon):
            self.past_phi_[k] = Phi[len(S) - 1 - k]
        self.n_past_ = c.horizon
        return self

    def _row(self, y: float, x: np.ndarray | None) -> np.ndarray:
        row = np.concatenate(([float(y)], self._check_step_input(x)))
        if not np.all(np.isfinite(row)):
            raise DataError(f"model 'esn' got a non-finite reading {row.tolist()}")
        return row

    def rls_update(self, y: float) -> None:
        """Update each head with the reading ``y`` its stored feature was forecasting."""
        lam = self.config.forgetting
        for k in range(min(self.config.horizon, self.n_past_)):
            phi = self.past_phi_[k]
            P = self.P_[k]
            Pphi = P @ phi
            gain = Pphi / (lam + phi @ Pphi)
            err = y - self.W_out_[k] @ phi
            self.W_out_[k] += gain * err
            P = (P - np.outer(gain, Pphi)) / lam
            self.P_[k] = (P + P.T) / 2.0  # keep P symmetric against round-off drift

    def _advance(self, row: np.ndarray) -> None:
        self.h_ = self._next_state(self.h_, row)
        self.past_phi_ = np.roll(self.past_phi_, 1, axis=0)
        self.past_phi_[0] = np.append(self.h_, 1.0)
        self.n_past_ = min(self.n_past_ + 1, self.config.horizon)

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        row = self._row(y, x)
        self.rls_update(row[0])
        self._advance(row)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self._advance(self._row(y, x))

    def forecast(self) -> Forecast:
        if not hasattr(self, "h_"):
            raise DataError("model 'esn' is not fitted: call fit() first")
        return Forecast(mean=self.W_out_ @ np.append(self.h_, 1.0))

    def state_dict(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "h_"):
            return {}
        return {"W": self.W_, "W_in": self.W_in_, "b": self.b_, "h": self.h_,
                "W_out": self.W_out_, "P": self.P_, "past_phi": self.past_phi_,
                "n_past": np.array(self.n_past_)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        self.W_, self.W_in_ = np.array(state["W"]), np.array(state["W_in"])
        self.b_, self.h_ = np.array(state["b"]), np.array(state["h"])
        self.W_out_, self.P_ = np.array(state["W_out"]), np.array(state["P"])
        self.past_phi_, self.n_past_ = np.array(state["past_phi"]), int(state["n_past"])

    def streaming_core(self) -> Any:
        from tsforge.models.online.export import RNNReadoutCore

        return RNNReadoutCore(self.W_, self.W_in_, self.b_, self.W_out_[:, :-1],
                              self.W_out_[:, -1], leak=self.config.leak)

    def stream_state(self) -> np.ndarray:
        return self.h_.copy()
