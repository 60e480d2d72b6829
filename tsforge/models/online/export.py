"""Torch streaming core of the online learners' inference step (for ONNX export only)."""

from __future__ import annotations

import numpy as np

from tsforge.optional import require

torch = require("torch", "exporting an online learner")


class RNNReadoutCore(torch.nn.Module):
    """``h = (1-leak) h + leak * tanh(U x + W h + b)``; ``y = V h + c``; state ``(B, n)``."""

    def __init__(self, W: np.ndarray, U: np.ndarray, b: np.ndarray, V: np.ndarray,
                 c: np.ndarray, leak: float = 1.0) -> None:
        super().__init__()
        f32 = torch.float32
        self.register_buffer("W", torch.as_tensor(W, dtype=f32))
        self.register_buffer("U", torch.as_tensor(U, dtype=f32))
        self.register_buffer("b", torch.as_tensor(b, dtype=f32))
        self.register_buffer("V", torch.as_tensor(V, dtype=f32))
        self.register_buffer("c", torch.as_tensor(c, dtype=f32))
        self.leak = float(leak)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.W.shape[0])

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        pre = x_t @ self.U.T + state @ self.W.T + self.b  # (B, n)
        h = torch.tanh(pre) if self.leak == 1.0 else (1 - self.leak) * state + self.leak * \
            torch.tanh(pre)
        return h @ self.V.T + self.c, h  # (B, H), (B, n)


class GRUReadoutCore(torch.nn.Module):
    """A ``torch.nn.GRUCell`` with fixed weights and a linear readout; state ``(B, n)``."""

    def __init__(self, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray,
                 V: np.ndarray, c: np.ndarray) -> None:
        super().__init__()
        n, d = w_hh.shape[1], w_ih.shape[1]
        self.cell = torch.nn.GRUCell(d, n)
        with torch.no_grad():
            for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                                ("bias_hh", b_hh)):
                getattr(self.cell, name).copy_(torch.as_tensor(value, dtype=torch.float32))
        self.register_buffer("V", torch.as_tensor(V, dtype=torch.float32))
        self.register_buffer("c", torch.as_tensor(c, dtype=torch.float32))

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.cell.hidden_size)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        h = self.cell(x_t, state)  # (B, n)
        return h @ self.V.T + self.c, h
