"""DSF-trained forecasters: ``dsf_rnn``, ``dsf_gru``, ``dsf_lstm`` and ``diag_ssm``.

``fit`` trains on windows of history with the window form of DSF
(:class:`~tsforge.models.dsf.core.DSFCore`).  On the stream, ``learn_one`` keeps
learning with the trace form (:class:`~tsforge.models.dsf.trace.TraceForm`): the
same DSF gradient computed one reading at a time with memory that does not grow
with the stream (``online_lr=0`` freezes the model after ``fit``).

Online loss, as for the other online learners: after reading ``z_t`` the model
forecasts ``z_{t+1..t+H}`` from its top output ``y_t``.  When ``z_t`` arrives, the
k-step head is scored on the forecast it made from ``y_{t-1-k}`` (a ring buffer
keeps the last H outputs); the recurrent stack learns from the one-step error
through the traces, the longer heads as linear readouts of the stored outputs.
Parameters change every reading and the traces are carried across those changes
(the usual online approximation); the traces start from zero at ``fit``'s end.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError
from tsforge.models.dsf.cells import FEEDBACKS, feedback
from tsforge.models.dsf.core import DSFCore
from tsforge.models.dsf.trace import TraceForm
from tsforge.models.online.optim import OnlineAdam
from tsforge.models.recurrent import RecurrentConfig, RecurrentForecaster, torch


@dataclasses.dataclass(frozen=True)
class DSFConfig(RecurrentConfig):
    """Attributes
    ----------
    feedback
        Initial decay rates of the fixed feedback: ``"linspace"`` (evenly spread in
        [0, 1), the reference choice), ``"logspace"`` (time constants 1 … seq_len) or
        ``"zero"`` (fully truncated BPTT); see :func:`~tsforge.models.dsf.cells.feedback`.
    residual, layer_norm
        Residual connections between stacked layers; layer norm on each upper layer's input.
    online_lr, online_lr_decay
        Adam rate ``online_lr / (1 + online_lr_decay * sqrt(t))`` of ``learn_one``
        (0 freezes the model after ``fit``).  Gradients are clipped at ``grad_clip``.
    """

    feedback: str = "linspace"
    residual: bool = True
    layer_norm: bool = False
    online_lr: float = 1e-4
    online_lr_decay: float = 0.03


class DSFForecaster(RecurrentForecaster):
    """Recurrent forecaster trained with DSF instead of BPTT (``kind`` set by subclasses)."""

    Config = DSFConfig

    @property
    def online(self) -> bool:  # type: ignore[override]
        """True when ``learn_one`` updates the parameters (``online_lr > 0``)."""
        return self.config.online_lr > 0

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"hidden": 8, "layers": 2, "seq_len": 32, "epochs": 2, "batch_size": 32}

    def build_core(self, n_channels: int) -> DSFCore:
        c = self.config
        if c.tbptt is not None:
            raise ConfigError("tbptt does not apply to DSF training; leave it unset "
                              "(feedback='zero' gives fully truncated BPTT)")
        if c.feedback not in FEEDBACKS:
            raise ConfigError(f"feedback '{c.feedback}' unknown; valid: {', '.join(FEEDBACKS)}")
        if c.online_lr < 0:
            raise ConfigError(f"online_lr must be >= 0, got {c.online_lr}")
        torch.manual_seed(c.seed)
        return DSFCore(self.kind, n_channels, c.hidden, c.layers, c.horizon,
                       feedback(c.feedback, c.hidden, c.seq_len), c.residual, c.layer_norm)

    def loss(self, core: DSFCore, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, target, mask = batch
        burn = x.shape[1] // 4
        pred = core.dsf_sequence(x)
        m = mask[:, burn:].to(pred.dtype)
        return (((pred[:, burn:] - target[:, burn:]) ** 2) * m).sum() / m.sum().clamp(min=1.0)

    # ------------------------------------------------------------------ streaming
    def _start_stream(self, Z: np.ndarray) -> None:
        super()._start_stream(Z)
        self._reset_online()

    def _reset_online(self) -> None:
        H, n = self.config.horizon, self.config.hidden
        self.trace_ = TraceForm(self.core_, batch=1)
        self.past_y_ = np.zeros((H, n))  # past_y_[k] = top output y_{t-k}
        self.n_past_ = 0
        size = sum(p.numel() for p in self.core_.parameters())
        self.opt_ = OnlineAdam(size, self.config.online_lr, self.config.online_lr_decay,
                               self.config.grad_clip)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        if not self.online:
            super().update(y, x)
            return
        row, before = self._inputs(y, x), self.state_
        super().update(y, x)  # checks the reading; the fused step gives state and forecast
        with torch.no_grad():
            top, _ = self.trace_.step(torch.as_tensor(row, dtype=torch.float64)[None], before)
        self.past_y_ = np.roll(self.past_y_, 1, axis=0)
        self.past_y_[0] = top[0].numpy()
        self.n_past_ = min(self.n_past_ + 1, self.config.horizon)

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        if not self.online:
            self.update(y, x)
            return
        if np.all(np.isfinite(self._inputs(y, x))):  # bad readings: update() raises
            self._learn(float(y))
        self.update(y, x)

    def _learn(self, y: float) -> None:
        """One optimiser step from the errors of the forecasts ``y`` settles."""
        core = self.core_
        V = core.head.weight.detach().double().numpy()
        c = core.head.bias.detach().double().numpy()
        grads = {name: np.zeros(p.shape) for name, p in core.named_parameters()}
        for k in range(self.n_past_):
            feat = self.past_y_[k]  # y_{t-1-k}: the output the k-step forecast came from
            err = float(V[k] @ feat + c[k] - y)
            grads["head.weight"][k] = err * feat
            grads["head.bias"][k] = err
            if k == 0:
                e = torch.as_tensor(err * V[0])[None]
                for name, g in self.trace_.gradient(e).items():
                    grads[name] = g.numpy()
        flat_g = np.concatenate([g.ravel() for g in grads.values()])
        params = [p for _, p in core.named_parameters()]
        flat = torch.nn.utils.parameters_to_vector(params).detach().double().numpy()
        self.opt_.step(flat, flat_g)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.as_tensor(flat, dtype=torch.float32),
                                                params)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        state = super().state_dict()
        if state and self.online:
            state.update({f"trace/{k}": v.numpy() for k, v in self.trace_.state_dict().items()})
            state.update(self.opt_.state_dict("opt/"))
            state["past_y"] = self.past_y_.copy()
            state["n_past"] = np.array(self.n_past_)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        if not state or not self.online:
            return
        self._reset_online()
        self.trace_.load_state_dict({k[len("trace/"):]: v for k, v in state.items()
                                     if k.startswith("trace/")})
        self.opt_.load_state_dict(state, "opt/")
        self.past_y_ = np.array(state["past_y"], dtype=np.float64)
        self.n_past_ = int(state["n_past"])


class DSFRNNForecaster(DSFForecaster):
    """Tanh RNN trained with fixed diagonal state feedback (DSF)."""

    name = "dsf_rnn"
    kind = "rnn"


class DSFGRUForecaster(DSFForecaster):
    """GRU trained with fixed diagonal state feedback (DSF)."""

    name = "dsf_gru"
    kind = "gru"


class DSFLSTMForecaster(DSFForecaster):
    """LSTM (state [h, c]) trained with DSF; only the ``h`` half of the feedback acts."""

    name = "dsf_lstm"
    kind = "lstm"


class DiagSSMForecaster(DSFForecaster):
    """Stacked diagonal state-space cells ``h_t = a ⊙ h_{t-1} + (1-a) ⊙ tanh(W x_t + b)``.

    The feedback of each layer is its own (trained) transition ``a``, so DSF
    training is exactly BPTT here, at the cost of a parallel scan.  ``feedback``
    sets the initial rates.
    """

    name = "diag_ssm"
    kind = "diag"
