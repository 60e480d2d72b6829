"""RTRL and UORO forecasters: a tanh RNN with a linear H-step readout, learning per reading.

Online loss.  After reading ``z_t`` the model forecasts ``z_{t+1..t+H}`` from
``h_t`` with ``y_hat = V h_t + c``.  When ``z_t`` arrives, the k-step head is
scored on the forecast it made from ``h_{t-1-k}`` (a ring buffer keeps the last
H hidden states).  The recurrent parameters learn from the one-step error, whose
gradient through time is what RTRL computes exactly and UORO estimates without
bias; the longer heads learn as linear readouts of the stored states (their
error is not propagated through time, a documented simplification that keeps the
cost of H heads at O(H n)).  Parameters change every reading, so, as in the
literature, this is "online RTRL": exact for frozen parameters.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.models.online import rnn
from tsforge.models.online.cells import CELLS
from tsforge.models.online.optim import OnlineAdam


@dataclasses.dataclass(frozen=True)
class OnlineRNNConfig(ForecasterConfig):
    """Attributes
    ----------
    hidden
        Number of recurrent units n.
    lr, lr_decay
        Adam rate ``lr / (1 + lr_decay * sqrt(t))``.
    clip
        Gradient-norm clipping of each update (None: off).
    fit_readings
        Most recent readings of the history learned online by ``fit`` (warm-up).
    spectral_radius
        Initial spectral radius of the recurrent matrix.
    cell
        ``"rnn"`` (tanh, analytic Jacobians) or ``"gru"`` (Jacobians by torch.func).
    """

    hidden: int = 16
    cell: str = "rnn"
    lr: float = 5e-3
    lr_decay: float = 0.03
    clip: float | None = 1.0
    fit_readings: int = 3000
    spectral_radius: float = 0.9


class OnlineRNNForecaster(Forecaster):
    """Shared machinery; subclasses provide the influence estimator."""

    Config: ClassVar[type[ForecasterConfig]] = OnlineRNNConfig
    online = True
    exportable = True

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"hidden": 6, "fit_readings": 200}

    # -------------------------------------------------------------- estimator hooks
    def _reset_estimator(self) -> None:
        raise TypeError(f"{type(self).__name__} must define _reset_estimator")

    def _recurrent_gradient(self, dl_dh: np.ndarray) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} must define _recurrent_gradient")

    def _advance_estimator(self, aux: Any) -> None:
        raise TypeError(f"{type(self).__name__} must define _advance_estimator")

    def _estimator_state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_estimator_state(self, state: dict[str, np.ndarray]) -> None:
        return None

    # -------------------------------------------------------------- set-up
    def _init_params(self, d: int) -> None:
        c = self.config
        n, H = c.hidden, c.horizon
        if c.cell not in CELLS:
            raise ConfigError(f"cell '{c.cell}' unknown; valid: {', '.join(CELLS)}")
        self.cell_ = CELLS[c.cell](n, d)
        self.theta_ = self.cell_.init(np.random.default_rng(c.seed), c.spectral_radius)
        self.readout_ = np.zeros(H * n + H)  # [vec(V), c]
        self.h_ = np.zeros(n)
        self.past_h_ = np.zeros((H, n))  # past_h_[k] = h_{t-k}
        self.n_past_ = 0
        self.steps_ = 0
        self.opt_rec_ = OnlineAdam(self.theta_.size, c.lr, c.lr_decay, c.clip)
        self.opt_out_ = OnlineAdam(self.readout_.size, c.lr, c.lr_decay, c.clip)
        self._reset_estimator()

    def _readout(self) -> tuple[np.ndarray, np.ndarray]:
        H, n = self.config.horizon, self.config.hidden
        return self.readout_[: H * n].reshape(H, n), self.readout_[H * n :]

    def fit(self, y: Any, X: Any = None) -> OnlineRNNForecaster:
        y_arr, X_arr = self._check_fit_input(y, X)
        self._init_params(1 + X_arr.shape[1])
        return self._learn_recent(y_arr, X_arr, self.config.fit_readings)

    # -------------------------------------------------------------- streaming
    def _inputs(self, y: float, x: np.ndarray | None) -> np.ndarray:
        x_arr = self._check_step_input(x)
        row = np.concatenate(([float(y)], x_arr))
        if not np.all(np.isfinite(row)):
            raise DataError(f"model '{self.name}' got a non-finite reading {row.tolist()}; "
                            "wrap it in a Pipeline with a nonfinite policy")
        return row

    def gradients(self, y: float) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of the online loss for the reading ``y`` that just arrived.

        Returns ``(recurrent, readout)`` flat gradients; parameters are unchanged.
        """
        V, c = self._readout()
        H, n = V.shape
        g_out = np.zeros_like(self.readout_)
        gV = g_out[: H * n].reshape(H, n)
        g_rec = np.zeros_like(self.theta_)
        for k in range(min(H, self.n_past_)):
            feat = self.past_h_[k]  # h_{t-1-k}: the state the k-step forecast came from
            err = float(V[k] @ feat + c[k] - y)
            gV[k] = err * feat
            g_out[H * n + k] = err
            if k == 0:
                g_rec = self._recurrent_gradient(err * V[0])
        return g_rec, g_out

    def _advance(self, x: np.ndarray) -> None:
        self.h_, aux = self.cell_.step(self.theta_, self.h_, x)
        self._advance_estimator(aux)
        self.past_h_ = np.roll(self.past_h_, 1, axis=0)
        self.past_h_[0] = self.h_
        self.n_past_ = min(self.n_past_ + 1, self.config.horizon)
        self.steps_ += 1

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        row = self._inputs(y, x)
        g_rec, g_out = self.gradients(row[0])
        self.opt_rec_.step(self.theta_, g_rec)
        self.opt_out_.step(self.readout_, g_out)
        self._advance(row)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self._advance(self._inputs(y, x))

    def forecast(self) -> Forecast:
        if not hasattr(self, "h_"):
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        V, c = self._readout()
        return Forecast(mean=V @ self.h_ + c)

    # -------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "h_"):
            return {}
        return {
            "theta": self.theta_.copy(), "readout": self.readout_.copy(), "h": self.h_.copy(),
            "past_h": self.past_h_.copy(), "n_past": np.array(self.n_past_),
            "steps": np.array(self.steps_),
            **self.opt_rec_.state_dict("opt_rec/"), **self.opt_out_.state_dict("opt_out/"),
            **{f"est/{k}": v for k, v in self._estimator_state().items()},
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        self._init_params(1 + (self.n_covariates_ or 0))
        self.theta_ = np.array(state["theta"], dtype=np.float64)
        self.readout_ = np.array(state["readout"], dtype=np.float64)
        self.h_ = np.array(state["h"], dtype=np.float64)
        self.past_h_ = np.array(state["past_h"], dtype=np.float64)
        self.n_past_, self.steps_ = int(state["n_past"]), int(state["steps"])
        self.opt_rec_.load_state_dict(state, "opt_rec/")
        self.opt_out_.load_state_dict(state, "opt_out/")
        self._load_estimator_state({k[4:]: v for k, v in state.items() if k.startswith("est/")})

    # -------------------------------------------------------------- export
    def streaming_core(self) -> Any:
        V, c = self._readout()
        return self.cell_.export_core(self.theta_, V, c)

    def stream_state(self) -> np.ndarray:
        return self.h_.copy()


class RTRLForecaster(OnlineRNNForecaster):
    """Real-time recurrent learning: the exact influence matrix ``dh_t/dθ``, O(n^2 p) per step.

    Practical up to about 64 units (``hidden > 64`` is refused, above 32 warned):
    use ``uoro`` for larger states.
    """

    name = "rtrl"
    MAX_HIDDEN: ClassVar[int] = 64
    WARN_HIDDEN: ClassVar[int] = 32

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        n = self.config.hidden
        if n > self.MAX_HIDDEN:
            raise ConfigError(
                f"rtrl with hidden={n} costs O(n^4) = {n**4:.1e} operations per reading; "
                f"the limit is {self.MAX_HIDDEN}. Use model 'uoro' (O(n^2) per reading) instead"
            )
        if n > self.WARN_HIDDEN:
            warnings.warn(f"rtrl with hidden={n} is slow (O(n^4) per reading); consider 'uoro'",
                          stacklevel=2)

    def _reset_estimator(self) -> None:
        self.M_ = np.zeros((self.config.hidden, self.theta_.size))

    def _recurrent_gradient(self, dl_dh: np.ndarray) -> np.ndarray:
        return dl_dh @ self.M_

    def _advance_estimator(self, aux: Any) -> None:
        self.M_ = self.cell_.rtrl_update(self.M_, aux)

    def _estimator_state(self) -> dict[str, np.ndarray]:
        return {"M": self.M_.copy()}

    def _load_estimator_state(self, state: dict[str, np.ndarray]) -> None:
        self.M_ = np.array(state["M"], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class UOROConfig(OnlineRNNConfig):
    """Attributes
    ----------
    n_draws
        Independent sign draws averaged per step (a rank-``n_draws`` estimate at that cost).
    """

    n_draws: int = 1


class UOROForecaster(OnlineRNNForecaster):
    """Unbiased online recurrent optimisation: ``dh/dθ ≈ s̃ θ̃^T``, O(n^2 + p) per step.

    Random ±1 signs come from a counter-based generator keyed by ``(seed, step,
    draw)`` (:func:`rnn.random_signs`), so a restarted stream draws exactly the same
    signs as an uninterrupted one.
    """

    name = "uoro"
    Config = UOROConfig

    def _reset_estimator(self) -> None:
        k, n, p = self.config.n_draws, self.config.hidden, self.theta_.size
        self.s_tilde_ = np.zeros((k, n))
        self.theta_tilde_ = np.zeros((k, p))

    def _recurrent_gradient(self, dl_dh: np.ndarray) -> np.ndarray:
        return ((self.s_tilde_ @ dl_dh)[:, None] * self.theta_tilde_).mean(axis=0)

    def _advance_estimator(self, aux: Any) -> None:
        n = self.config.hidden
        for j in range(self.config.n_draws):
            nu = rnn.random_signs(self.config.seed, self.steps_, j, n)
            self.s_tilde_[j], self.theta_tilde_[j] = rnn.uoro_combine(
                self.cell_.jvp_h(aux, self.s_tilde_[j]), self.theta_tilde_[j],
                self.cell_.vjp_theta(aux, nu), nu)

    def _estimator_state(self) -> dict[str, np.ndarray]:
        return {"s_tilde": self.s_tilde_.copy(), "theta_tilde": self.theta_tilde_.copy()}

    def _load_estimator_state(self, state: dict[str, np.ndarray]) -> None:
        self.s_tilde_ = np.array(state["s_tilde"], dtype=np.float64)
        self.theta_tilde_ = np.array(state["theta_tilde"], dtype=np.float64)
