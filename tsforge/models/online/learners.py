"""RTRL and UORO forecasters: a recurrent cell with a linear H-step readout, learning per reading.

Online loss.  After reading ``z_t`` the model forecasts ``z_{t+1..t+H}`` from
``h_t`` as ``y_hat = z_t + V h_t + c`` (``residual=True``, the default: a skip
term carries the last reading forward and the readout predicts the change, so a
model that has learned nothing yet forecasts "no change", the naive forecast) or
``V h_t + c`` (``residual=False``: the level).  A learned skip weight was tried
and dropped: it gained 0.004 MASE on ETTh1/OT and let a stuck sensor drag the
weight away (2.3x the error after the stretch).  When
``z_t`` arrives, the k-step head is scored on the forecast it made from
``h_{t-1-k}`` (a ring buffer keeps the last H hidden states and readings).  The
recurrent parameters learn from the one-step error, whose gradient through time
is what RTRL computes exactly and UORO estimates without bias; the longer heads
learn as linear readouts of the stored states (their error is not propagated
through time, a documented simplification that keeps the cost of H heads at
O(H n)).  Parameters change every reading, so, as in the literature, this is
"online RTRL": exact for frozen parameters.

The learning math runs on a :class:`~tsforge.models.online.batch.SensorBatch`
(:class:`RTRLBatch`, :class:`UOROBatch`) with a leading sensor axis; a forecaster
is a batch of one sensor.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.models.online import rnn
from tsforge.models.online.batch import SensorBatch, adopt_residual, one_blas_thread
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
        ``"rnn"`` (tanh) or ``"gru"`` (PyTorch's GRU equations); both numpy with
        analytic Jacobian products.
    residual
        Carry the last reading forward and forecast the change (``z_t + V h_t + c``)
        instead of the level (``V h_t + c``).
    """

    hidden: int = 16
    cell: str = "rnn"
    lr: float = 5e-3
    lr_decay: float = 0.03
    clip: float | None = 1.0
    fit_readings: int = 3000
    spectral_radius: float = 0.9
    residual: bool = True


class RNNBatch(SensorBatch):
    """S sensors' recurrent learners; subclasses provide the influence estimator."""

    def __init__(self, config: OnlineRNNConfig, d: int, sensors: int) -> None:
        super().__init__(config, d, sensors)
        c, S = config, sensors
        n, H = c.hidden, c.horizon
        if c.cell not in CELLS:
            raise ConfigError(f"cell '{c.cell}' unknown; valid: {', '.join(CELLS)}")
        self.cell = CELLS[c.cell](n, d)
        theta = self.cell.init(np.random.default_rng(c.seed), c.spectral_radius)
        self.theta = np.repeat(theta[None], S, axis=0)
        self.readout = np.zeros((S, H * n + H))  # [vec(V), c] per sensor
        self.h = np.zeros((S, n))
        self.past_h = np.zeros((S, H, n))  # past_h[:, k] = h_{t-k}
        self.past_y = np.zeros((S, H))  # past_y[:, k] = z_{t-k}
        self.n_past = np.zeros(S, dtype=np.int64)
        self.steps = np.zeros(S, dtype=np.int64)
        self.opt_rec = OnlineAdam((S, self.theta.shape[1]), c.lr, c.lr_decay, c.clip)
        self.opt_out = OnlineAdam(self.readout.shape, c.lr, c.lr_decay, c.clip)
        self.reset_estimator()

    # -------------------------------------------------------------- estimator hooks
    def reset_estimator(self) -> None:
        raise TypeError(f"{type(self).__name__} must define reset_estimator")

    def recurrent_gradient(self, dl_dh: np.ndarray) -> np.ndarray:
        """``dl/dθ`` per sensor ``(S, p)`` from ``dl/dh_{t-1}`` ``(S, n)``."""
        raise TypeError(f"{type(self).__name__} must define recurrent_gradient")

    def advance_estimator(self, aux: Any) -> None:
        raise TypeError(f"{type(self).__name__} must define advance_estimator")

    def estimator_arrays(self) -> dict[str, np.ndarray]:
        return {}

    # -------------------------------------------------------------- state
    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "theta": self.theta, "readout": self.readout, "h": self.h, "past_h": self.past_h,
            "past_y": self.past_y, "n_past": self.n_past, "steps": self.steps,
            "opt_rec/m": self.opt_rec.m, "opt_rec/v": self.opt_rec.v, "opt_rec/t": self.opt_rec.t,
            "opt_out/m": self.opt_out.m, "opt_out/v": self.opt_out.v, "opt_out/t": self.opt_out.t,
            **{f"est/{k}": v for k, v in self.estimator_arrays().items()},
        }

    def readout_views(self) -> tuple[np.ndarray, np.ndarray]:
        """``V (S, H, n)`` and ``c (S, H)``, views into the readout parameters."""
        H, n = self.config.horizon, self.config.hidden
        return self.readout[:, : H * n].reshape(-1, H, n), self.readout[:, H * n :]

    # -------------------------------------------------------------- learning
    def gradients(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(S, p)``, ``(S, H n + H)`` of the online loss for readings ``y (S,)``."""
        V, c = self.readout_views()
        H = V.shape[1]
        pred = np.einsum("shn,shn->sh", V, self.past_h) + c
        if self.config.residual:
            pred += self.past_y
        valid = np.arange(H)[None, :] < self.n_past[:, None]
        err = np.where(valid, pred - y[:, None], 0.0)  # (S, H)
        g_out = np.concatenate([(err[:, :, None] * self.past_h).reshape(len(y), -1), err],
                               axis=1)
        return self.recurrent_gradient(err[:, :1] * V[:, 0]), g_out

    def _learn(self, rows: np.ndarray) -> None:
        g_rec, g_out = self.gradients(rows[:, 0])
        self.opt_rec.step(self.theta, g_rec)
        self.opt_out.step(self.readout, g_out)

    def _advance(self, rows: np.ndarray) -> None:
        self.h, aux = self.cell.step(self.theta, self.h, rows)
        self.advance_estimator(aux)
        if self.past_h.shape[1] > 1:  # ring buffers, newest first
            self.past_h[:, 1:] = self.past_h[:, :-1].copy()
            self.past_y[:, 1:] = self.past_y[:, :-1].copy()
        self.past_h[:, 0] = self.h
        self.past_y[:, 0] = rows[:, 0]
        np.minimum(self.n_past + 1, self.config.horizon, out=self.n_past)
        self.steps += 1

    def forecast_many(self) -> np.ndarray:
        V, c = self.readout_views()
        out = np.einsum("shn,sn->sh", V, self.h) + c
        return out + self.past_y[:, :1] if self.config.residual else out


class RTRLBatch(RNNBatch):
    """Exact influence matrices ``M (S, n, p)``: one ``(S,n,n) @ (S,n,p)`` product per step."""

    family = "rtrl"

    def reset_estimator(self) -> None:
        self.M = np.zeros((self.sensors, self.config.hidden, self.theta.shape[1]))

    def recurrent_gradient(self, dl_dh: np.ndarray) -> np.ndarray:
        return np.matmul(dl_dh[:, None, :], self.M)[:, 0]

    def advance_estimator(self, aux: Any) -> None:
        self.M = self.cell.rtrl_update(self.M, aux)

    def estimator_arrays(self) -> dict[str, np.ndarray]:
        return {"M": self.M}


class UOROBatch(RNNBatch):
    """Rank-one estimates ``s̃ θ̃^T`` per sensor and draw: ``s̃ (S, k, n)``, ``θ̃ (S, k, p)``."""

    family = "uoro"

    def reset_estimator(self) -> None:
        k, n = self.config.n_draws, self.config.hidden
        self.s_tilde = np.zeros((self.sensors, k, n))
        self.theta_tilde = np.zeros((self.sensors, k, self.theta.shape[1]))

    def recurrent_gradient(self, dl_dh: np.ndarray) -> np.ndarray:
        weights = np.einsum("skn,sn->sk", self.s_tilde, dl_dh)
        if weights.shape[1] == 1:
            return weights[:, :1] * self.theta_tilde[:, 0]
        return np.einsum("sk,skp->sp", weights, self.theta_tilde) / weights.shape[1]

    def advance_estimator(self, aux: Any) -> None:
        c = self.config
        for j in range(c.n_draws):
            nu = rnn.random_signs_many(c.seed, self.steps, j, c.hidden)
            self.s_tilde[:, j], self.theta_tilde[:, j] = rnn.uoro_combine(
                self.cell.jvp_h(aux, self.s_tilde[:, j]), self.theta_tilde[:, j],
                self.cell.vjp_theta(aux, nu), nu)

    def estimator_arrays(self) -> dict[str, np.ndarray]:
        return {"s_tilde": self.s_tilde, "theta_tilde": self.theta_tilde}


class OnlineRNNForecaster(Forecaster):
    """Shared forecaster around a one-sensor :class:`RNNBatch` (``Batch``)."""

    Config: ClassVar[type[ForecasterConfig]] = OnlineRNNConfig
    Batch: ClassVar[type[RNNBatch]] = RNNBatch
    online = True
    exportable = True

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"hidden": 6, "fit_readings": 200}

    # -------------------------------------------------------------- one-sensor views
    @property
    def theta_(self) -> np.ndarray:
        return self.batch_.theta[0]

    @property
    def readout_(self) -> np.ndarray:
        return self.batch_.readout[0]

    @property
    def h_(self) -> np.ndarray:
        return self.batch_.h[0]

    @h_.setter
    def h_(self, value: np.ndarray) -> None:
        self.batch_.h[0] = value

    @property
    def steps_(self) -> int:
        return int(self.batch_.steps[0])

    @steps_.setter
    def steps_(self, value: int) -> None:
        self.batch_.steps[0] = value

    @property
    def cell_(self) -> Any:
        return self.batch_.cell

    def _reset_estimator(self) -> None:
        self.batch_.reset_estimator()

    def _readout(self) -> tuple[np.ndarray, np.ndarray]:
        V, c = self.batch_.readout_views()
        return V[0], c[0]

    # -------------------------------------------------------------- set-up
    def _init_params(self, d: int) -> None:
        self.batch_ = self.Batch(self.config, d, 1)

    def fit(self, y: Any, X: Any = None) -> OnlineRNNForecaster:
        y_arr, X_arr = self._check_fit_input(y, X)
        self._init_params(1 + X_arr.shape[1])
        with one_blas_thread():
            return self._learn_recent(y_arr, X_arr, self.config.fit_readings)

    # -------------------------------------------------------------- streaming
    def _inputs(self, y: float, x: np.ndarray | None) -> np.ndarray:
        x_arr = self._check_step_input(x)
        row = np.concatenate(([float(y)], x_arr))
        if not np.all(np.isfinite(row)):
            raise DataError(f"model '{self.name}' got a non-finite reading {row.tolist()}; "
                            "wrap it in a Pipeline with a nonfinite policy")
        return row[None]

    def gradients(self, y: float) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of the online loss for the reading ``y`` that just arrived.

        Returns ``(recurrent, readout)`` flat gradients; parameters are unchanged.
        """
        g_rec, g_out = self.batch_.gradients(np.array([float(y)]))
        return g_rec[0], g_out[0]

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        rows = self._inputs(y, x)
        self.batch_._learn(rows)
        self.batch_._advance(rows)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self.batch_._advance(self._inputs(y, x))

    def forecast(self) -> Forecast:
        if not hasattr(self, "batch_"):
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        return Forecast(mean=self.batch_.forecast_many()[0])

    # -------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        return self.batch_.sensor_state(0) if hasattr(self, "batch_") else {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        adopt_residual(self, state)
        self._init_params(1 + (self.n_covariates_ or 0))
        self.batch_.load_sensor_state(0, state)

    # -------------------------------------------------------------- export
    def streaming_core(self) -> Any:
        V, c = self._readout()
        skip = np.ones(self.config.horizon) if self.config.residual else None
        return self.cell_.export_core(self.theta_, V, c, skip=skip)

    def stream_state(self) -> np.ndarray:
        return self.h_.copy()


class RTRLForecaster(OnlineRNNForecaster):
    """Real-time recurrent learning: the exact influence matrix ``dh_t/dθ``, O(n^2 p) per step.

    Practical up to about 64 units (``hidden > 64`` is refused, above 32 warned):
    use ``uoro`` for larger states.
    """

    name = "rtrl"
    Batch = RTRLBatch
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

    @property
    def M_(self) -> np.ndarray:
        return self.batch_.M[0]


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
    draw)`` (:func:`rnn.random_signs`, numpy's Philox), so a restarted stream draws
    exactly the same signs as an uninterrupted one.
    """

    name = "uoro"
    Config = UOROConfig
    Batch = UOROBatch

    @property
    def s_tilde_(self) -> np.ndarray:
        return self.batch_.s_tilde[0]

    @property
    def theta_tilde_(self) -> np.ndarray:
        return self.batch_.theta_tilde[0]
