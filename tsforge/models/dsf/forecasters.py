"""DSF-trained recurrent forecasters: ``dsf_rnn``, ``dsf_gru``, ``dsf_lstm``.

Window form of DSF, per layer:

1. the fused PyTorch kernel runs the layer over the window without a graph
   (for the LSTM the cell states are not exposed by the fused kernel, so that
   layer's no-graph forward steps ``nn.LSTM`` one reading at a time);
2. the previous states are shifted in and the cell is recomputed for all B·T
   positions at once, as one batched *local* step whose only graph is that step;
3. :class:`~tsforge.models.dsf.scan.FixedFeedback` replaces the state errors
   reaching that step by ``g_t = e_t + a ⊙ g_{t+1}`` (parallel scan), so the
   parameters and the layer's input (hence lower layers) receive DSF-filtered
   signals.

Feedback ``a``: ``"linspace"`` (evenly spread decay rates in [0, 1), the
reference choice) or ``"logspace"`` (time constants 1 … seq_len spaced
geometrically, ``a = exp(-1/τ)``, which spends more units on long memory).
Inference is the ordinary recurrence, so export and streaming are unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tsforge.errors import ConfigError
from tsforge.models.dsf.scan import FixedFeedback
from tsforge.models.recurrent import KINDS, RecurrentConfig, RecurrentForecaster, nn, torch


def feedback(kind: str, n: int, horizon_len: int) -> torch.Tensor:
    if kind == "linspace":
        return torch.linspace(0.0, 1.0, n + 1)[:-1]
    if kind == "logspace":
        tau = torch.logspace(0.0, math.log10(max(horizon_len, 2)), n)
        return torch.exp(-1.0 / tau)
    raise ConfigError(f"feedback '{kind}' unknown; valid: linspace, logspace")


def local_step(kind: str, x: torch.Tensor, state: Any, rnn: nn.Module) -> Any:
    """One cell step for all positions at once, with the fused module's weights."""
    w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    if kind == "rnn":
        return torch.tanh(x @ w_ih.T + b_ih + state @ w_hh.T + b_hh)
    if kind == "gru":
        i_r, i_z, i_n = (x @ w_ih.T + b_ih).chunk(3, -1)
        h_r, h_z, h_n = (state @ w_hh.T + b_hh).chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        return (1 - z) * torch.tanh(i_n + r * h_n) + z * state
    h, c = state
    i, f, g, o = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, -1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


class DSFCore(nn.Module):
    """Stacked single-layer recurrences (optional residual connections) and an H-step head."""

    def __init__(self, kind: str, n_channels: int, hidden: int, layers: int, horizon: int,
                 a: torch.Tensor, residual: bool) -> None:
        super().__init__()
        self.kind, self.hidden, self.n_layers, self.residual = kind, hidden, layers, residual
        self.rnns = nn.ModuleList(
            KINDS[kind](n_channels if i == 0 else hidden, hidden, batch_first=True)
            for i in range(layers))
        self.head = nn.Linear(hidden, horizon)
        self.register_buffer("a", a)

    @property
    def per_layer(self) -> int:
        return self.hidden * (2 if self.kind == "lstm" else 1)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.n_layers * self.per_layer)

    def _layer_state(self, state: torch.Tensor, i: int) -> Any:
        s = state[:, i * self.per_layer : (i + 1) * self.per_layer]
        if self.kind != "lstm":
            return s[None].contiguous()
        return s[None, :, : self.hidden].contiguous(), s[None, :, self.hidden :].contiguous()

    def forward_sequence(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
        """Ordinary inference: ``x (B, T, C)`` -> forecasts ``(B, T, H)``, final state."""
        finals, inp = [], x
        for i, rnn in enumerate(self.rnns):
            out, last = rnn(inp, self._layer_state(state, i))
            finals.append(torch.cat(last, -1)[0] if self.kind == "lstm" else last[0])
            inp = out + inp if self.residual and i > 0 else out
        return self.head(inp), torch.cat(finals, dim=1)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        y, new_state = self.forward_sequence(x_t[:, None, :], state)
        return y[:, 0], new_state

    def dsf_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Training forward whose backward is DSF: forecasts ``(B, T, H)`` from zero state."""
        B, T, _ = x.shape
        n = self.hidden
        inp = x
        for i, rnn in enumerate(self.rnns):
            with torch.no_grad():
                seq_in = inp.detach()
                if self.kind == "lstm":
                    hs, cs = [], []
                    h = c = torch.zeros(1, B, n, device=x.device)
                    for t in range(T):
                        _, (h, c) = rnn(seq_in[:, t : t + 1], (h, c))
                        hs.append(h[0])
                        cs.append(c[0])
                    h_seq, c_seq = torch.stack(hs, 1), torch.stack(cs, 1)
                else:
                    h_seq, _ = rnn(seq_in)
                zero = torch.zeros(B, 1, n, device=x.device, dtype=h_seq.dtype)
                h_prev = torch.cat([zero, h_seq[:, :-1]], 1)
                if self.kind == "lstm":
                    c_prev = torch.cat([zero, c_seq[:, :-1]], 1)
            flat_in = inp.reshape(B * T, -1)
            if self.kind == "lstm":
                h, c = local_step("lstm", flat_in, (h_prev.reshape(B * T, n),
                                                    c_prev.reshape(B * T, n)), rnn)
                both = torch.cat([h, c], -1).reshape(B, T, 2 * n)
                out = FixedFeedback.apply(both, self.a)[..., :n]
            else:
                local = local_step(self.kind, flat_in, h_prev.reshape(B * T, n), rnn)
                out = FixedFeedback.apply(local.reshape(B, T, n), self.a)
            inp = out + inp if self.residual and i > 0 else out
        return self.head(inp)


@dataclasses.dataclass(frozen=True)
class DSFConfig(RecurrentConfig):
    """Attributes
    ----------
    feedback
        ``"linspace"`` (reference) or ``"logspace"``; see the module docstring.
    residual
        Residual connections between stacked layers.
    """

    feedback: str = "linspace"
    residual: bool = True


class DSFForecaster(RecurrentForecaster):
    """Recurrent forecaster trained with DSF instead of BPTT (``kind`` set by subclasses)."""

    Config = DSFConfig

    def build_core(self, n_channels: int) -> DSFCore:
        c = self.config
        if c.tbptt is not None:
            raise ConfigError("tbptt does not apply to DSF training; leave it unset")
        torch.manual_seed(c.seed)
        n_a = c.hidden * (2 if self.kind == "lstm" else 1)
        return DSFCore(self.kind, n_channels, c.hidden, c.layers, c.horizon,
                       feedback(c.feedback, n_a, c.seq_len), c.residual)

    def loss(self, core: DSFCore, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, target, mask = batch
        burn = x.shape[1] // 4
        pred = core.dsf_sequence(x)
        m = mask[:, burn:].to(pred.dtype)
        return (((pred[:, burn:] - target[:, burn:]) ** 2) * m).sum() / m.sum().clamp(min=1.0)


class DSFRNNForecaster(DSFForecaster):
    """Tanh RNN trained with fixed diagonal state feedback (DSF)."""

    name = "dsf_rnn"
    kind = "rnn"


class DSFGRUForecaster(DSFForecaster):
    """GRU trained with fixed diagonal state feedback (DSF)."""

    name = "dsf_gru"
    kind = "gru"


class DSFLSTMForecaster(DSFForecaster):
    """LSTM (state [h, c], feedback of size 2n) trained with DSF."""

    name = "dsf_lstm"
    kind = "lstm"

