"""Lag-window MLP: a feed-forward network on the last ``window`` readings."""

from __future__ import annotations

import dataclasses

from tsforge.models.windowed import WindowedConfig, WindowedForecaster, nn, torch


@dataclasses.dataclass(frozen=True)
class MLPConfig(WindowedConfig):
    """Hyper-parameters of :class:`LagMLP`.

    Attributes
    ----------
    hidden
        Width of each hidden layer.
    layers
        Number of hidden layers.
    dropout
        Dropout probability after each hidden layer (training only).
    """

    hidden: int = 64
    layers: int = 2
    dropout: float = 0.0


class MLPHead(nn.Module):
    """Flattened window -> hidden layers -> horizon, plus a linear skip path.

    The skip path lets the network start from the best linear autoregression and
    spend its hidden units on what is non-linear.
    """

    def __init__(self, window: int, n_channels: int, horizon: int, hidden: int, layers: int,
                 dropout: float) -> None:
        super().__init__()
        n_in = window * n_channels
        blocks: list[nn.Module] = []
        width = n_in
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, horizon))
        self.mlp = nn.Sequential(*blocks)
        self.skip = nn.Linear(n_in, horizon)

    def forward(self, window: torch.Tensor) -> torch.Tensor:  # (B, W, C) -> (B, H)
        flat = window.reshape(window.shape[0], -1)
        return self.mlp(flat) + self.skip(flat)


class LagMLP(WindowedForecaster):
    """Lag-window multilayer perceptron forecasting all ``horizon`` steps at once.

    >>> import numpy as np
    >>> y = np.sin(np.arange(400) / 5.0)
    >>> model = LagMLP(window=20, horizon=3, epochs=5).fit(y)
    >>> model.forecast().mean.shape
    (3,)
    """

    name = "mlp"
    Config = MLPConfig

    @classmethod
    def test_params(cls) -> dict[str, object]:
        return {"window": 8, "hidden": 16, "epochs": 3, "batch_size": 64}

    def build_head(self, n_channels: int) -> nn.Module:
        c = self.config
        torch.manual_seed(c.seed)
        return MLPHead(self.n_inputs, n_channels, c.horizon, c.hidden, c.layers, c.dropout)
