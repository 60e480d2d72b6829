"""Feed-forward windowed forecasters: a function of the last ``window`` readings.

The streaming core keeps the window as its state, shifts each new reading in and
applies a head network to it, so the exported ONNX step is self-contained.
Stable recurrent models provably reduce to this family (Miller & Hardt), which
is why tsforge sizes windows with :func:`tsforge.models.stability.window_for`.

A window of 48 readings never reaches one season of 15-minute (96) or 5-minute
(288) data, so given the season ``period`` a windowed model also reads the
*seasonal lags*: the readings one season before each forecast step and their
neighbours (:func:`input_lags`).  The state then holds ``period + 2`` readings and
the head sees only the selected ones (a gather inside the ONNX step).
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
    """Streaming core over a sliding window: state ``(B, window, C)``.

    ``positions`` (optional) are the state rows the head reads, oldest first; by
    default it reads them all.
    """

    def __init__(self, head: nn.Module, window: int, n_channels: int, horizon: int,
                 positions: np.ndarray | None = None) -> None:
        super().__init__()
        self.head = head
        self.window = window
        self.n_channels = n_channels
        self.horizon = horizon
        self.select = positions is not None
        if positions is not None:
            self.register_buffer("positions", torch.as_tensor(positions, dtype=torch.long))

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.window, self.n_channels)

    def head_input(self, window: torch.Tensor) -> torch.Tensor:
        """The rows of a full window ``(B, window, C)`` the head reads."""
        return window.index_select(1, self.positions) if self.select else window

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new_state = torch.cat([state[:, 1:], x_t[:, None, :]], dim=1)  # (B, W, C)
        return self.head(self.head_input(new_state)), new_state


def input_lags(window: int, horizon: int, period: int = 1) -> np.ndarray:
    """Lags a windowed model reads (0 = the newest reading), ascending.

    The last ``window`` readings, plus, when the season ``period`` reaches past the
    window, the readings one season before each forecast step (lags ``period - h``
    for ``h = 1..horizon``) and one neighbour on each side.

    >>> input_lags(4, 2, period=24).tolist()
    [0, 1, 2, 3, 21, 22, 23, 24]
    >>> input_lags(48, 12).tolist() == list(range(48))
    True
    """
    lags = set(range(window))
    if period > 1:
        lags.update(lag for lag in range(period - horizon - 1, period + 1) if lag >= 0)
    return np.array(sorted(lags), dtype=np.int64)


def window_samples(Z: np.ndarray, window: int, horizon: int,
                   positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All (window, target) pairs of ``Z`` (``(T, C)``, target in channel 0) without NaN.

    Returns ``windows`` of shape ``(N, window, C)`` and ``targets`` of shape ``(N, horizon)``,
    where ``targets[i]`` are the ``horizon`` target values following ``windows[i]``.
    With ``positions``, only those rows of each window are kept (and checked for NaN),
    so a season-long window is never copied whole.
    """
    T, C = Z.shape
    n = T - window - horizon + 1
    if n < 1:
        raise DataError(
            f"history of {T} readings is too short for window={window} and horizon={horizon}; "
            f"need at least {window + horizon} readings"
        )
    win = np.lib.stride_tricks.sliding_window_view(Z, (window, C))[:n, 0]  # (n, W, C)
    if positions is not None:
        win = win[:, positions]
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
    period
        Season length in readings (1: none); set by the backtest and pipelines from
        the detected season.
    seasonal_lags
        Also read the readings one season before each forecast step
        (:func:`input_lags`) when the season reaches past the window.
    """

    window: int = 48
    period: int = 1
    seasonal_lags: bool = True


class WindowedForecaster(TorchForecaster):
    """Base of windowed torch forecasters: subclasses implement :meth:`build_head`."""

    Config = WindowedConfig

    def build_head(self, n_channels: int) -> nn.Module:
        """Network mapping the head input ``(B, n_inputs, C)`` to a forecast ``(B, horizon)``."""
        raise TypeError(f"{type(self).__name__} must define build_head()")

    @property
    def lags(self) -> np.ndarray:
        """The lags the head reads (:func:`input_lags`), ascending."""
        c = self.config
        if c.window < 1:
            raise ConfigError(f"window must be >= 1, got {c.window}")
        if c.period < 1:
            raise ConfigError(f"period must be >= 1, got {c.period}")
        return input_lags(c.window, c.horizon, c.period if c.seasonal_lags else 1)

    @property
    def n_inputs(self) -> int:
        """Rows of the window the head reads: ``window`` plus any seasonal lags."""
        return len(self.lags)

    def build_core(self, n_channels: int) -> WindowCore:
        lags = self.lags
        span = int(lags[-1]) + 1
        positions = None if len(lags) == span else span - 1 - lags[::-1]
        return WindowCore(self.build_head(n_channels), span, n_channels, self.horizon,
                          positions)

    def training_windows(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Head inputs ``(N, n_inputs, C)`` and targets ``(N, horizon)`` of the history ``Z``."""
        lags = self.lags
        span = int(lags[-1]) + 1
        return window_samples(Z, span, self.horizon, span - 1 - lags[::-1])

    def fit(self, y: Any, X: Any = None) -> WindowedForecaster:
        from tsforge.training import train

        y_arr, X_arr = self._check_fit_input(y, X)
        Z = np.column_stack([y_arr, X_arr])
        windows, targets = self.training_windows(Z)
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
        return Z[-self.core_.window :]
