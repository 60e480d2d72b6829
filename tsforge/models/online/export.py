"""Torch streaming core of the online learners' inference step (for ONNX export only)."""

from __future__ import annotations

import numpy as np

from tsforge.optional import require

torch = require("torch", "exporting an online learner")


class RNNReadoutCore(torch.nn.Module):
    """``h = (1-leak) h + leak tanh(U x + W h + b)``; ``y = V h + c (+ a x[0])``; state ``(B, n)``.

    With ``skip`` (weights ``a`` per horizon step) the forecast carries the reading
    just read (``x[0]``, the target) forward and the readout adds the predicted change.
    """

    def __init__(self, W: np.ndarray, U: np.ndarray, b: np.ndarray, V: np.ndarray,
                 c: np.ndarray, leak: float = 1.0, skip: np.ndarray | None = None) -> None:
        super().__init__()
        f32 = torch.float32
        self.register_buffer("W", torch.as_tensor(W, dtype=f32))
        self.register_buffer("U", torch.as_tensor(U, dtype=f32))
        self.register_buffer("b", torch.as_tensor(b, dtype=f32))
        self.register_buffer("V", torch.as_tensor(V, dtype=f32))
        self.register_buffer("c", torch.as_tensor(c, dtype=f32))
        self.leak = float(leak)
        self.has_skip = skip is not None
        if skip is not None:
            self.register_buffer("skip", torch.as_tensor(skip, dtype=f32))

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.W.shape[0])

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        pre = x_t @ self.U.T + state @ self.W.T + self.b  # (B, n)
        h = torch.tanh(pre) if self.leak == 1.0 else (1 - self.leak) * state + self.leak * \
            torch.tanh(pre)
        y = h @ self.V.T + self.c
        return (y + x_t[:, :1] * self.skip if self.has_skip else y), h  # (B, H), (B, n)


class GRUReadoutCore(torch.nn.Module):
    """A ``torch.nn.GRUCell`` with fixed weights and a linear readout; state ``(B, n)``.

    ``skip`` as in :class:`RNNReadoutCore`.
    """

    def __init__(self, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray,
                 V: np.ndarray, c: np.ndarray, skip: np.ndarray | None = None) -> None:
        super().__init__()
        n, d = w_hh.shape[1], w_ih.shape[1]
        self.cell = torch.nn.GRUCell(d, n)
        with torch.no_grad():
            for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                                ("bias_hh", b_hh)):
                getattr(self.cell, name).copy_(torch.as_tensor(value, dtype=torch.float32))
        self.register_buffer("V", torch.as_tensor(V, dtype=torch.float32))
        self.register_buffer("c", torch.as_tensor(c, dtype=torch.float32))
        self.has_skip = skip is not None
        if skip is not None:
            self.register_buffer("skip", torch.as_tensor(skip, dtype=torch.float32))

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.cell.hidden_size)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        h = self.cell(x_t, state)  # (B, n)
        y = h @ self.V.T + self.c
        return (y + x_t[:, :1] * self.skip if self.has_skip else y), h


_TORCH_ACTIVATIONS = {
    "tanh": torch.tanh,
    "hardtanh": lambda a: torch.clamp(a, -1.0, 1.0),
    "sign": torch.sign,
}


class PTNCNCore(torch.nn.Module):
    """One P-TNCN reading (inference and correction, no learning) and its H-step forecast.

    Mirrors :func:`tsforge.models.online.ptncn_core.infer` in row-vector form.  State
    ``(B, L*n + d)``: the corrected latent states of the L layers, then the last
    reading row.  With ``residual`` the output ``mu^0`` is the change of the row.  The
    forecast runs the model on its own predictions, as :meth:`PTNCNForecaster.forecast`
    does.
    """

    def __init__(self, P: dict[str, np.ndarray], layers: int, horizon: int, *, beta: float,
                 gamma: float, steps: int, activation: str, residual: bool = False) -> None:
        super().__init__()
        for name, value in P.items():
            if name[0] in "WER":  # stored blocks; M, V, U are views into R
                self.register_buffer(name, torch.as_tensor(np.array(value),
                                                           dtype=torch.float32))
        self.L, self.horizon = layers, horizon
        self.n = int(P["V1"].shape[0])
        self.beta, self.gamma, self.steps = float(beta), float(gamma), int(steps)
        self.act = _TORCH_ACTIVATIONS[activation]
        self.residual = bool(residual)

    def _w(self, name: str) -> torch.Tensor:
        return getattr(self, name)

    def _errors(self, s: list[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        mu = [s[ell - 1] @ self._w(f"W{ell}").T for ell in range(1, self.L + 1)]
        return [mu[0] - x] + [mu[ell] - s[ell - 1] for ell in range(1, self.L)]

    def _step(self, ys: list[torch.Tensor], x_prev: torch.Tensor, x: torch.Tensor | None
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Corrected states after reading ``x`` (None: the model's own forecast), and mu^0."""
        L, prev = self.L, [x_prev, *ys]
        # R^l = [M^l | V^l | U^l] reads the states below, of, and above layer l
        a = [torch.cat(prev[ell - 1 : ell + 2], dim=1) @ self._w(f"R{ell}").T
             for ell in range(1, L + 1)]  # (B, n) each
        s = [self.act(v) for v in a]
        mu0 = s[0] @ self._w("W1").T  # (B, d)
        target = mu0 if x is None else (x - x_prev if self.residual else x)
        for _ in range(self.steps):
            e = self._errors(s, target)
            new_a = []
            for ell in range(1, L + 1):
                d = e[ell - 1] @ self._w(f"E{ell}").T
                if ell < L:
                    d = d - self.gamma * e[ell]
                new_a.append(a[ell - 1] - self.beta * d)
            a = new_a
            s = [self.act(v) for v in a]
        return s, mu0

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        n, L = self.n, self.L
        ys = [state[:, i * n : (i + 1) * n] for i in range(L)]
        x_prev = state[:, L * n :]  # (B, d)
        ys, _ = self._step(ys, x_prev, x_t)
        new_state = torch.cat([*ys, x_t], dim=1)
        out, s, xp = [], ys, x_t
        for _ in range(self.horizon):
            s, mu0 = self._step(s, xp, None)
            xp = xp + mu0 if self.residual else mu0
            out.append(xp[:, :1])
        return torch.cat(out, dim=1), new_state  # (B, H), (B, L*n + d)
