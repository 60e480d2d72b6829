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
