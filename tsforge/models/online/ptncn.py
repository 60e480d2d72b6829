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

    # -------------------------------------------------------------- set-up
    def _init_params(self, d: int) -> None:
        c = self.config
        n, L = c.hidden, c.layers
        rng = np.random.default_rng(c.seed)
        self.theta_ = rng.normal(0.0, c.init_std, core.n_params(n, d, L))
        self.P_ = core.unpack(self.theta_, n, d, L)  # views: updated with theta_
        self.y_ = np.zeros((L, n))  # corrected states after the last reading
        self.x_prev_ = np.zeros(d)  # last reading row
        self.eps_prev_ = np.zeros((L, n))  # state errors of the last reading
        self.steps_ = 0
        if c.optimizer == "adam":
            self.opt_: OnlineAdam | OnlineNesterov = OnlineAdam(self.theta_.size, c.lr,
                                                                c.lr_decay, clip=None)
        else:
            self.opt_ = OnlineNesterov(self.theta_.size, c.lr, c.lr_decay, clip=None,
                                       momentum=c.momentum)

    def fit(self, y: Any, X: Any = None) -> PTNCNForecaster:
        """Warm up by learning online over the last ``fit_readings`` finite readings."""
        y_arr, X_arr = self._check_fit_input(y, X)
        self._init_params(1 + X_arr.shape[1])
        return self._learn_recent(y_arr, X_arr, self.config.fit_readings)

    # -------------------------------------------------------------- streaming
    def _row(self, y: float, x: np.ndarray | None) -> np.ndarray:
        row = np.concatenate(([float(y)], self._check_step_input(x)))
        if not np.all(np.isfinite(row)):
            raise DataError(f"model 'ptncn' got a non-finite reading {row.tolist()}; "
                            "wrap it in a Pipeline with a nonfinite policy")
        return row

    def _infer(self, y_prev: np.ndarray, x_prev: np.ndarray,
               x: np.ndarray | None) -> core.Inference:
        c = self.config
        return core.infer(self.P_, list(y_prev), x_prev, x, beta=c.beta, gamma=c.gamma,
                          steps=c.inference_steps, activation=c.activation)

    def local_updates(self, q: core.Inference) -> np.ndarray:
        """The flat update for the inference ``q`` of the current reading (parameters unchanged)."""
        c = self.config
        return core.updates(q, list(self.eps_prev_), rule=c.error_rule, clip=c.clip)

    def _advance(self, row: np.ndarray, learn: bool) -> None:
        q = self._infer(self.y_, self.x_prev_, row)
        if learn:
            self.opt_.step(self.theta_, self.local_updates(q))
        self.y_ = np.array(q.y)
        self.eps_prev_ = np.array(q.eps)
        self.x_prev_ = row
        self.steps_ += 1

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        self._advance(self._row(y, x), learn=True)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self._advance(self._row(y, x), learn=False)

    def forecast(self) -> Forecast:
        """The next ``horizon`` target values, running the model on its own predictions."""
        if not hasattr(self, "theta_"):
            raise DataError("model 'ptncn' is not fitted: call fit() first")
        out = np.empty(self.config.horizon)
        y_prev, x_prev = self.y_, self.x_prev_
        for h in range(self.config.horizon):
            q = self._infer(y_prev, x_prev, None)
            out[h] = q.mu[0][0]
            y_prev, x_prev = q.y, q.mu[0]
        return Forecast(mean=out)

    # -------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "theta_"):
            return {}
        return {"theta": self.theta_.copy(), "y": self.y_.copy(),
                "x_prev": self.x_prev_.copy(), "eps_prev": self.eps_prev_.copy(),
                "steps": np.array(self.steps_), **self.opt_.state_dict("opt/")}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        self._init_params(1 + (self.n_covariates_ or 0))
        self.theta_[:] = np.asarray(state["theta"], dtype=np.float64)  # keeps the views
        self.y_ = np.array(state["y"], dtype=np.float64)
        self.x_prev_ = np.array(state["x_prev"], dtype=np.float64)
        self.eps_prev_ = np.array(state["eps_prev"], dtype=np.float64)
        self.steps_ = int(state["steps"])
        self.opt_.load_state_dict(state, "opt/")

    # -------------------------------------------------------------- export
    def streaming_core(self) -> Any:
        from tsforge.models.online.export import PTNCNCore

        c = self.config
        return PTNCNCore(self.P_, c.layers, c.horizon, beta=c.beta, gamma=c.gamma,
                         steps=c.inference_steps, activation=c.activation)

    def stream_state(self) -> np.ndarray:
        return np.concatenate([self.y_.ravel(), self.x_prev_])
