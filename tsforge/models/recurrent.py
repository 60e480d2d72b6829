"""Recurrent forecasters trained with backpropagation through time: tanh RNN, GRU, LSTM.

They are the references every BPTT-free method is measured against.  Training
uses PyTorch's fused multi-layer kernels on windows of ``seq_len`` readings with
a multi-horizon linear head on every hidden state (the first ``seq_len // 4``
positions are a burn-in and are not scored).  ``tbptt=k`` truncates
backpropagation to chunks of k steps (the state is carried forward, its
gradient is cut).  The streaming core steps the same module one reading at a
time; its state is one tensor ``(B, layers * n)`` (``(B, 2 * layers * n)`` for
the LSTM, hidden states then cell states).

A bidirectional encoder is not offered for forecasting: it reads readings after
the time it would forecast from, so it is only valid for filling gaps in past
data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.torch_base import TorchConfig, TorchForecaster
from tsforge.optional import require

torch = require("torch", "recurrent forecasters")
nn = torch.nn

KINDS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentCore(nn.Module):
    """A stacked RNN/GRU/LSTM with a linear H-step head; streaming and sequence forms."""

    def __init__(self, kind: str, n_channels: int, hidden: int, layers: int, horizon: int,
                 dropout: float) -> None:
        super().__init__()
        self.kind, self.hidden, self.layers = kind, hidden, layers
        self.rnn = KINDS[kind](n_channels, hidden, num_layers=layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon)
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight_hh"):
                for block in param.data.chunk(param.shape[0] // hidden):
                    nn.init.orthogonal_(block)
            elif name.startswith("weight_ih"):
                nn.init.xavier_uniform_(param)
            else:
                nn.init.zeros_(param)

    @property
    def state_size(self) -> int:
        return self.layers * self.hidden * (2 if self.kind == "lstm" else 1)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.state_size)

    def _unpack(self, state: torch.Tensor) -> Any:
        B = state.shape[0]
        L, n = self.layers, self.hidden
        h = state[:, : L * n].reshape(B, L, n).transpose(0, 1).contiguous()  # (L, B, n)
        if self.kind != "lstm":
            return h
        c = state[:, L * n :].reshape(B, L, n).transpose(0, 1).contiguous()
        return (h, c)

    def _pack(self, hidden: Any) -> torch.Tensor:
        parts = hidden if self.kind == "lstm" else (hidden,)
        return torch.cat([p.transpose(0, 1).reshape(p.shape[1], -1) for p in parts], dim=1)

    def forward_sequence(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
        """``x (B, T, C)`` -> forecasts ``(B, T, H)`` at every position and the final state."""
        out, hidden = self.rnn(x, self._unpack(state))
        return self.head(out), self._pack(hidden)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        y, new_state = self.forward_sequence(x_t[:, None, :], state)
        return y[:, 0], new_state


def sequence_samples(Z: np.ndarray, seq_len: int, horizon: int,
                     stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``(N, seq_len, C)``, targets ``(N, seq_len, H)`` and a mask of valid targets."""
    T = Z.shape[0]
    if seq_len + 1 > T:
        raise DataError(f"history of {T} readings is shorter than seq_len={seq_len} + 1")
    future = np.full((T, horizon), np.nan)
    for h in range(horizon):
        future[: T - 1 - h, h] = Z[1 + h :, 0]
    starts = np.arange(0, T - seq_len + 1, stride)
    idx = starts[:, None] + np.arange(seq_len)
    windows, targets = Z[idx], future[idx]
    keep = np.all(np.isfinite(windows), axis=(1, 2))
    windows, targets = windows[keep], targets[keep]
    mask = np.isfinite(targets)
    return windows, np.nan_to_num(targets), mask


@dataclasses.dataclass(frozen=True)
class RecurrentConfig(TorchConfig):
    """Attributes
    ----------
    hidden, layers, dropout
        Units per layer, stacked layers, dropout between layers.
    seq_len
        Training window length (T); ``stride`` between windows defaults to T // 2.
    tbptt
        Truncated BPTT length k (None = full BPTT over the window).
    """

    hidden: int = 32
    layers: int = 1
    dropout: float = 0.0
    seq_len: int = 128
    stride: int | None = None
    tbptt: int | None = None


class RecurrentForecaster(TorchForecaster):
    """Base of the BPTT-trained recurrent families (``kind`` set by subclasses)."""

    Config = RecurrentConfig
    kind = "gru"

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"hidden": 8, "seq_len": 32, "epochs": 2, "batch_size": 32}

    def build_core(self, n_channels: int) -> RecurrentCore:
        c = self.config
        torch.manual_seed(c.seed)
        return RecurrentCore(self.kind, n_channels, c.hidden, c.layers, c.horizon, c.dropout)

    def after_step(self, core: RecurrentCore) -> None:
        """Hook run after every optimiser step (stable models project here)."""

    def finish_training(self, core: RecurrentCore) -> None:
        """Hook run once on the best weights, before the stream starts."""

    def loss(self, core: RecurrentCore, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, target, mask = batch
        burn = x.shape[1] // 4
        k = self.config.tbptt
        state = core.initial_state(x.shape[0]).to(x.device)
        if not k:
            pred, _ = core.forward_sequence(x, state)
        else:
            chunks = []
            for start in range(0, x.shape[1], k):
                out, state = core.forward_sequence(x[:, start : start + k], state)
                state = state.detach()  # truncation: no gradient across chunk borders
                chunks.append(out)
            pred = torch.cat(chunks, dim=1)
        m = mask[:, burn:].to(pred.dtype)
        err = (pred[:, burn:] - target[:, burn:]) ** 2 * m
        return err.sum() / m.sum().clamp(min=1.0)

    def fit(self, y: Any, X: Any = None) -> RecurrentForecaster:
        from tsforge.training import train

        c = self.config
        if c.tbptt is not None and c.tbptt < 1:
            raise ConfigError(f"tbptt must be >= 1 or None, got {c.tbptt}")
        y_arr, X_arr = self._check_fit_input(y, X)
        Z = np.column_stack([y_arr, X_arr])
        windows, targets, mask = sequence_samples(Z, c.seq_len, c.horizon,
                                                  c.stride or max(1, c.seq_len // 2))
        self.core_ = self.build_core(Z.shape[1])
        tensors = (torch.as_tensor(windows, dtype=torch.float32),
                   torch.as_tensor(targets, dtype=torch.float32),
                   torch.as_tensor(mask))
        self.train_result_ = train(self.core_, tensors, self.loss, c.train_config(),
                                   after_step=self.after_step, desc=f"fit {self.name}")
        self.finish_training(self.core_)
        self._start_stream(Z)
        return self

    def _start_stream(self, Z: np.ndarray) -> None:
        """Run the whole finite history through the fused kernel (no Python loop)."""
        rows = Z[np.all(np.isfinite(Z), axis=1)]
        self.core_.eval()
        with torch.no_grad():
            x = torch.as_tensor(rows, dtype=torch.float32)[None]
            out, state = self.core_.forward_sequence(x, self.core_.initial_state(1))
        self.state_ = state
        self.last_forecast_ = out[0, -1].double().numpy()


class RNNForecaster(RecurrentForecaster):
    """Tanh RNN trained with (truncated) BPTT."""

    name = "rnn"
    kind = "rnn"


class GRUForecaster(RecurrentForecaster):
    """GRU trained with (truncated) BPTT."""

    name = "gru"
    kind = "gru"


class LSTMForecaster(RecurrentForecaster):
    """LSTM trained with (truncated) BPTT; state packs hidden and cell states."""

    name = "lstm"
    kind = "lstm"
