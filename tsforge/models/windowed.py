"""Feed-forward windowed forecasters: a function of the last ``window`` readings.

The streaming core keeps the window as its state, shifts each new reading in and
applies a head network to it, so the exported ONNX step is self-contained.
Stable recurrent models provably reduce to this family (Miller & Hardt), which
is why tsforge sizes windows with :func:`tsforge.models.stability.window_for`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.torch_base import TorchConfig, TorchForecaster
from tsforge.optional import require

torch = require("torch", "windowed neural forecasters")
nn = torch.nn


class WindowCore(nn.Module):
    """Streaming core over a sliding window: state ``(B, window, C)``."""

    def __init__(self, head: nn.Module, window: int, n_channels: int, horizon: int) -> None:
        super().__init__()
        self.head = head
        self.window = window
        self.n_channels = n_channels
        self.horizon = horizon

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.window, self.n_channels)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new_state = torch.cat([state[:, 1:], x_t[:, None, :]], dim=1)  # (B, W, C)
        return self.head(new_state), new_state


def window_samples(Z: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All (window, target) pairs of ``Z`` (``(T, C)``, target in channel 0) without NaN.

    Returns ``windows`` of shape ``(N, window, C)`` and ``targets`` of shape ``(N, horizon)``,
    where ``targets[i]`` are the ``horizon`` target values following ``windows[i]``.
    """
    T, C = Z.shape
    n = T - window - horizon + 1
    if n < 1:
        raise DataError(
            f"history of {T} readings is too short for window={window} and horizon={horizon}; "
            f"need at least {window + horizon} readings"
        )
    win = np.lib.stride_tricks.sliding_window_view(Z, (window, C))[:n, 0]  # (n, W, C)
    tgt = np.lib.stride_tricks.sliding_window_view(Z[window:, 0], horizon)[:n]  # (n, H)
    ok = np.all(np.isfinite(win), axis=(1, 2)) & np.all(np.isfinite(tgt), axis=1)
    return np.ascontiguousarray(win[ok]), np.ascontiguousarray(tgt[ok])


@dataclasses.dataclass(frozen=True)
class WindowedConfig(TorchConfig):
    """A windowed model's hyper-parameters.

    Attributes
    ----------
    window
        Number of past readings the model sees (k).
    """

    window: int = 48


class WindowedForecaster(TorchForecaster):
    """Base of windowed torch forecasters: subclasses implement :meth:`build_head`."""

    Config = WindowedConfig

    def build_head(self, n_channels: int) -> nn.Module:
        """Network mapping a window ``(B, window, C)`` to a forecast ``(B, horizon)``."""
        raise TypeError(f"{type(self).__name__} must define build_head()")

    def build_core(self, n_channels: int) -> WindowCore:
        if self.config.window < 1:
            raise ConfigError(f"window must be >= 1, got {self.config.window}")
        return WindowCore(self.build_head(n_channels), self.config.window, n_channels,
                          self.horizon)

    def fit(self, y: Any, X: Any = None) -> WindowedForecaster:
        from tsforge.training import train

        y_arr, X_arr = self._check_fit_input(y, X)
        Z = np.column_stack([y_arr, X_arr])
        windows, targets = window_samples(Z, self.config.window, self.horizon)
        self.core_ = self.build_core(Z.shape[1])
        tensors = (torch.as_tensor(windows, dtype=torch.float32),
                   torch.as_tensor(targets, dtype=torch.float32))

        def loss_fn(core: WindowCore, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            w, t = batch
            return torch.nn.functional.mse_loss(core.head(w), t)

        self.train_result_ = train(self.core_, tensors, loss_fn, self.config.train_config(),
                                   desc=f"fit {self.name}")
        self._start_stream(Z)
        return self

    def _warmup_rows(self, Z: np.ndarray) -> np.ndarray:
        return Z[-self.config.window :]
