"""P-TNCN forecaster: a recurrent learner trained by local representation alignment.

The Parallel Temporal Neural Coding Network (Ororbia, Mali, Kifer, Giles,
arXiv:1810.07411; MIT-licensed reference code AnkurMali/ContinualPTNCN) learns once
per reading from errors that are local in space and time: no unrolling, no
influence matrix, and no derivative of the activation function.  The math lives in
:mod:`tsforge.models.online.ptncn_core`; this module wraps it in the forecaster
protocol (warm-up fit, ``learn_one``, H-step forecast, state round trip, ONNX core).

Forecasting.  The model's input is the reading row ``x_t = [target, covariates]``;
its output ``mu^0`` forecasts the whole next row.  ``forecast()`` runs the model
ahead on its own predictions: each step corrects the states towards its own
forecast (as if that forecast had been read) and predicts the next row; the
target channel of each prediction is the H-step forecast.  Memory is constant:
the state is the corrected latent states, the previous row and (for the temporal
error rule) the previous state errors.

With ``residual`` (the default) the output forecasts the change of the row,
``mu^0 = x_t - x_{t-1}``, and the run-ahead adds it to the last row; a model that
has learned nothing forecasts "no change".  The state lives in a
:class:`PTNCNBatch` with a leading sensor axis; a forecaster is a batch of one.

Deviations from the paper and the reference code, all deliberate:

- Real-valued output: identity ``f_out`` and squared error instead of softmax over
  one-hot tokens; the input is the previous reading row, no embedding.
- ``inference_steps`` (K) takes effect (the reference ignores its ``K``); see
  :func:`~tsforge.models.online.ptncn_core.infer`.  K = 1 is the reference.
- ``dW^2 = e^1 (z^2)^T`` uses the layer-1 prediction error, as ``dW^1`` uses the
  input's (the paper's rule); the reference code uses the state error ``eps^1``
  there instead.
- Any number of latent layers (two by default, as in the reference), one width.
- Optimiser: Nesterov momentum as in the reference, but 0.9 instead of 0.95 and
  with tsforge's decaying online rate ``lr / (1 + lr_decay sqrt(t))`` (the
  reference trains on mini-batches over 50 epochs; a sensor stream is seen once).
  Adam is offered; it rescales the small noisy local updates to full-size steps
  and learns worse here.  Per-matrix update clipping (``update_radius``) is kept.
- Weight decay, max-norm and the lateral sparsity penalty are off, as in the
  reference release; sequences are never reset (a stream is one sequence).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.models.online import ptncn_core as core
from tsforge.models.online.batch import SensorBatch, adopt_residual, one_blas_thread
from tsforge.models.online.optim import OnlineAdam, OnlineNesterov

OPTIMIZERS = ("nesterov", "adam")


@dataclasses.dataclass(frozen=True)
class PTNCNConfig(ForecasterConfig):
    """Attributes
    ----------
    hidden
        Units per latent layer n.
    layers
        Number of latent layers L (the reference has 2).
    activation
        ``"tanh"`` (reference), ``"hardtanh"``, or the non-differentiable ``"sign"``
        unit (the rule never uses a derivative).
    beta
        Strength of the state correction ``y = f(a - beta d)`` (reference 0.1).
    gamma
        Weight of a layer's own prediction error in its correction (reference 0.001).
    inference_steps
        Correction iterations K per reading (1 = reference).
    error_rule
        ``"transpose"``: error weights E follow the updates of W^T (reference default);
        ``"temporal"``: E learned by the paper's temporal error rule.
    optimizer
        ``"nesterov"`` (momentum ``momentum``, as the reference) or ``"adam"``.
    lr, lr_decay
        Rate ``lr / (1 + lr_decay * sqrt(t))``.
    momentum
        Nesterov momentum (reference 0.95).
    clip
        Each matrix's update is clipped to this Frobenius norm (reference 1.0; None: off).
    init_std
        Standard deviation of the normal initial weights.
    fit_readings
        Most recent readings of the history learned online by ``fit`` (warm-up).
    residual
        The output forecasts the change from the last reading row instead of the row.
    """

    hidden: int = 16
    layers: int = 2
    activation: str = "tanh"
    beta: float = 0.1
    gamma: float = 0.001
    inference_steps: int = 1
    error_rule: str = "transpose"
    optimizer: str = "nesterov"
    lr: float = 0.03
    lr_decay: float = 0.03
    momentum: float = 0.9
    clip: float | None = 1.0
    init_std: float = 0.05
    fit_readings: int = 3000
    residual: bool = True


class PTNCNBatch(SensorBatch):
    """S sensors' P-TNCNs: ``theta (S, p)``, corrected states ``y (S, L, n)``, last rows
    ``x_prev (S, d)`` and state errors ``eps_prev (S, L, n)``."""

    family = "ptncn"

    def __init__(self, config: PTNCNConfig, d: int, sensors: int) -> None:
        super().__init__(config, d, sensors)
        c, S = config, sensors
        n, L = c.hidden, c.layers
        theta = np.random.default_rng(c.seed).normal(0.0, c.init_std, core.n_params(n, d, L))
        self.theta = np.repeat(theta[None], S, axis=0)
        self.P = core.unpack(self.theta, n, d, L)  # views: updated with theta
        self.y = np.zeros((S, L, n))
        self.x_prev = np.zeros((S, d))
        self.eps_prev = np.zeros((S, L, n))
        self.steps = np.zeros(S, dtype=np.int64)
        if c.optimizer == "adam":
            self.opt: OnlineAdam | OnlineNesterov = OnlineAdam(self.theta.shape, c.lr,
                                                               c.lr_decay, clip=None)
        else:
            self.opt = OnlineNesterov(self.theta.shape, c.lr, c.lr_decay, clip=None,
                                      momentum=c.momentum)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Copies and unpickled batches: ``P`` must be views of their own ``theta``
        (a deep copy alone gives ``P`` its own arrays, which learning never updates)."""
        self.__dict__.update(state)
        self.P = core.unpack(self.theta, self.config.hidden, self.d, self.config.layers)

    def _arrays(self) -> dict[str, np.ndarray]:
        opt = {f"opt/{k}": getattr(self.opt, k) for k in ("m", "v", "t") if hasattr(self.opt, k)}
        return {"theta": self.theta, "y": self.y, "x_prev": self.x_prev,
                "eps_prev": self.eps_prev, "steps": self.steps, **opt}

    def infer(self, y_prev: np.ndarray, x_prev: np.ndarray,
              rows: np.ndarray | None) -> core.Inference:
        """Inference for ``rows`` (None: the model's own forecast), sensor axis first."""
        c = self.config
        target = rows - x_prev if rows is not None and c.residual else rows
        return core.infer(self.P, list(np.swapaxes(y_prev, 0, 1)), x_prev, target,
                          beta=c.beta, gamma=c.gamma, steps=c.inference_steps,
                          activation=c.activation)

    def local_updates(self, q: core.Inference) -> np.ndarray:
        c = self.config
        return core.updates(q, list(np.swapaxes(self.eps_prev, 0, 1)), rule=c.error_rule,
                            clip=c.clip)

    def _step(self, rows: np.ndarray, learn: bool) -> None:
        q = self.infer(self.y, self.x_prev, rows)
        if learn:
            self.opt.step(self.theta, self.local_updates(q))
        self.y[...] = np.stack(q.y, axis=1)
        self.eps_prev[...] = np.stack(q.eps, axis=1)
        self.x_prev[...] = rows
        self.steps += 1

    def _learn(self, rows: np.ndarray) -> None:
        self._step(rows, learn=True)

    def learn_many(self, values: Any, covariates: Any = None) -> None:
        """Learn from one reading per sensor (inference, local update, new state)."""
        rows = self.rows(values, covariates)
        with one_blas_thread():
            self._step(rows, learn=True)

    def _advance(self, rows: np.ndarray) -> None:
        self._step(rows, learn=False)

    def forecast_many(self) -> np.ndarray:
        """The next ``horizon`` target values, running the model on its own predictions."""
        out = np.empty((self.sensors, self.config.horizon))
        y_prev, x_prev = self.y, self.x_prev
        for h in range(self.config.horizon):
            q = self.infer(y_prev, x_prev, None)
            x_prev = x_prev + q.mu[0] if self.config.residual else q.mu[0]
            out[:, h] = x_prev[:, 0]
            y_prev = np.stack(q.y, axis=1)
        return out

    def stream_states(self) -> np.ndarray:
        """``[vec(y), x_prev]`` per sensor: the exported core's state."""
        return np.concatenate([self.y.reshape(self.sensors, -1), self.x_prev], axis=1)


class PTNCNForecaster(Forecaster):
    """P-TNCN learning once per reading by local representation alignment.

    Per reading (L >= 2 layers of n units) it costs about ``(5L - 4) n^2``
    multiply-adds for inference and correction (6 n^2 for two layers; the ``E``
    products repeat K times) and about as many for the outer-product updates:
    O(n^2) like UORO, against RTRL's O(n^4).  It keeps about ``(5L - 4) n^2``
    weights (6x a tanh RNN of the same width for two layers): compare at equal size.

    Examples
    --------
    >>> import numpy as np
    >>> from tsforge.models import create
    >>> z = np.sin(np.arange(400) / 5.0)
    >>> model = create("ptncn", horizon=2, fit_readings=300).fit(z[:300])
    >>> for value in z[300:]:
    ...     model.learn_one(value)
    >>> model.forecast().mean.shape
    (2,)
    """

    name = "ptncn"
    Config = PTNCNConfig
    online = True
    exportable = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        c = self.config
        if c.activation not in core.ACTIVATIONS:
            raise ConfigError(f"activation '{c.activation}' unknown; valid: "
                              f"{', '.join(core.ACTIVATIONS)}")
        if c.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer '{c.optimizer}' unknown; valid: {', '.join(OPTIMIZERS)}")
        if c.error_rule not in core.ERROR_RULES:
            raise ConfigError(f"error_rule '{c.error_rule}' unknown; valid: "
                              f"{', '.join(core.ERROR_RULES)}")
        for key in ("hidden", "layers", "inference_steps", "fit_readings"):
            if getattr(c, key) < 1:
                raise ConfigError(f"ptncn {key} must be >= 1, got {getattr(c, key)}")

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"hidden": 6, "fit_readings": 200}

    # one-sensor views of the batch state
    theta_ = property(lambda self: self.batch_.theta[0])
    y_ = property(lambda self: self.batch_.y[0])
    x_prev_ = property(lambda self: self.batch_.x_prev[0])
    eps_prev_ = property(lambda self: self.batch_.eps_prev[0])
    P_ = property(lambda self: {k: v[0] for k, v in self.batch_.P.items()})

    def _init_params(self, d: int) -> None:
        self.batch_ = PTNCNBatch(self.config, d, 1)

    def fit(self, y: Any, X: Any = None) -> PTNCNForecaster:
        """Warm up by learning online over the last ``fit_readings`` finite readings."""
        y_arr, X_arr = self._check_fit_input(y, X)
        self._init_params(1 + X_arr.shape[1])
        with one_blas_thread():
            return self._learn_recent(y_arr, X_arr, self.config.fit_readings)

    # -------------------------------------------------------------- streaming
    def _row(self, y: float, x: np.ndarray | None) -> np.ndarray:
        row = np.concatenate(([float(y)], self._check_step_input(x)))
        if not np.all(np.isfinite(row)):
            raise DataError(f"model 'ptncn' got a non-finite reading {row.tolist()}; "
                            "wrap it in a Pipeline with a nonfinite policy")
        return row[None]

    def _infer(self, y_prev: np.ndarray, x_prev: np.ndarray,
               x: np.ndarray | None) -> core.Inference:
        """One-sensor inference (vectors without the sensor axis) through the batch."""
        q = self.batch_.infer(np.asarray(y_prev)[None], np.asarray(x_prev)[None],
                              None if x is None else np.asarray(x)[None])
        return core.Inference(*([v[0] for v in getattr(q, f.name)]
                                for f in dataclasses.fields(q)))

    def local_updates(self, q: core.Inference) -> np.ndarray:
        """The flat update for the inference ``q`` of the current reading (parameters unchanged)."""
        c = self.config
        return core.updates(q, list(self.eps_prev_), rule=c.error_rule, clip=c.clip)

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        self.batch_._step(self._row(y, x), learn=True)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self.batch_._step(self._row(y, x), learn=False)

    def forecast(self) -> Forecast:
        """The next ``horizon`` target values, running the model on its own predictions."""
        if not hasattr(self, "batch_"):
            raise DataError("model 'ptncn' is not fitted: call fit() first")
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
        from tsforge.models.online.export import PTNCNCore

        c = self.config
        return PTNCNCore(self.P_, c.layers, c.horizon, beta=c.beta, gamma=c.gamma,
                         steps=c.inference_steps, activation=c.activation,
                         residual=c.residual)

    def stream_state(self) -> np.ndarray:
        return np.concatenate([self.y_.ravel(), self.x_prev_])
