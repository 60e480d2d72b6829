"""Temporal convolutional network: dilated causal convolutions with residual blocks.

WaveNet/TCN style (Bai, Kolter & Koltun 2018): block i convolves with kernel
size K and dilation 2^i, so the receptive field is ``1 + 2 (K - 1)(2^L - 1)``
readings for L blocks of two convolutions each.  As a windowed forecaster the
window defaults to that receptive field, and the head reads the last position's
features.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tsforge.models.windowed import WindowedConfig, WindowedForecaster, nn, torch


@dataclasses.dataclass(frozen=True)
class TCNConfig(WindowedConfig):
    """Attributes
    ----------
    channels
        Feature channels of every block.
    blocks
        Residual blocks; block i has dilation 2**i.
    kernel_size
        Convolution kernel size K.
    dropout
        Dropout inside blocks (training only).
    window
        Input window; 0 (default) means the receptive field.
    seasonal_lags
        Off: the head reads only the last position, whose receptive field is the
        contiguous window; lags beyond it would never reach the output.
    """

    window: int = 0
    seasonal_lags: bool = False
    channels: int = 32
    blocks: int = 4
    kernel_size: int = 3
    dropout: float = 0.0


class CausalConv(nn.Module):
    """1-D convolution padded on the left only, so output t never sees inputs after t."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C', T)
        return self.conv(nn.functional.pad(x, (self.pad, 0)))


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            CausalConv(c_in, c_out, kernel, dilation), nn.GELU(), nn.Dropout(dropout),
            CausalConv(c_out, c_out, kernel, dilation), nn.GELU(), nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.skip(x)


class TCNHead(nn.Module):
    """Window ``(B, W, C)`` -> residual dilated blocks -> last position -> ``(B, H)``."""

    def __init__(self, n_channels: int, horizon: int, c: TCNConfig) -> None:
        super().__init__()
        layers, width = [], n_channels
        for i in range(c.blocks):
            layers.append(ResidualBlock(width, c.channels, c.kernel_size, 2**i, c.dropout))
            width = c.channels
        self.blocks = nn.Sequential(*layers)
        self.out = nn.Linear(c.channels, horizon)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        features = self.blocks(window.transpose(1, 2))  # (B, channels, W)
        return self.out(features[:, :, -1])


def receptive_field(blocks: int, kernel_size: int) -> int:
    """Readings one output depends on: two convolutions per block, dilations 1, 2, 4, …"""
    return 1 + 2 * (kernel_size - 1) * (2**blocks - 1)


class TCNForecaster(WindowedForecaster):
    """Dilated causal convolution network forecasting all horizon steps at once."""

    name = "tcn"
    Config = TCNConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.config.window == 0:
            self.config = dataclasses.replace(self.config, window=self.receptive_field)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.config.blocks, self.config.kernel_size)

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"channels": 8, "blocks": 2, "epochs": 2, "batch_size": 64}

    def build_head(self, n_channels: int) -> nn.Module:
        torch.manual_seed(self.config.seed)
        return TCNHead(n_channels, self.horizon, self.config)
