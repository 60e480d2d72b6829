"""Recurrent cells for the online learners, each with exact Jacobians.

A cell exposes ``step(theta, h, x) -> (h_new, aux)`` and, from ``aux``, the exact
products the learners need: ``jvp_h(aux, v) = (dh_new/dh) v``,
``vjp_theta(aux, v) = v^T dh_new/dθ`` and ``rtrl_update(M, aux) = J M + M_imm``.

- :class:`TanhCell`: analytic numpy formulas (fast, torch-free).
- :class:`GRUCell`: PyTorch's GRU equations; Jacobians from ``torch.func.jacrev``
  in float64 (exact, forward/reverse-mode AD, no finite differences).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsforge.models.online import rnn


class TanhCell:
    """``h' = tanh(W h + U x + b)``; parameters ``[vec W, vec U, b]``."""

    name = "rnn"

    def __init__(self, n: int, d: int) -> None:
        self.n, self.d = n, d

    def n_params(self) -> int:
        return rnn.n_params(self.n, self.d)

    def init(self, rng: np.random.Generator, radius: float) -> np.ndarray:
        n, d = self.n, self.d
        W = rng.standard_normal((n, n)) / np.sqrt(n)
        W *= radius / max(np.abs(np.linalg.eigvals(W)).max(), 1e-12)
        U = rng.standard_normal((n, d)) * (0.5 / np.sqrt(d))
        return np.concatenate([W.ravel(), U.ravel(), np.zeros(n)])

    def step(self, theta: np.ndarray, h: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        h_new, D = rnn.step(theta, h, x, self.n)
        return h_new, (theta, D, h, x)

    def jvp_h(self, aux: Any, v: np.ndarray) -> np.ndarray:
        theta, D, _, _ = aux
        W, _, _ = rnn.unpack(theta, self.n, self.d)
        return D * (W @ v)

    def vjp_theta(self, aux: Any, v: np.ndarray) -> np.ndarray:
        _, D, h, x = aux
        return rnn.immediate_vjp(v, D, h, x)

    def rtrl_update(self, M: np.ndarray, aux: Any) -> np.ndarray:
        theta, D, h, x = aux
        return rnn.rtrl_update(M, theta, D, h, x, self.n)

    def export_core(self, theta: np.ndarray, V: np.ndarray, c: np.ndarray) -> Any:
        from tsforge.models.online.export import RNNReadoutCore

        W, U, b = rnn.unpack(theta, self.n, self.d)
        return RNNReadoutCore(W, U, b, V, c)


class GRUCell:
    """PyTorch's GRU cell; parameters ``[vec W_ih (3n, d), vec W_hh (3n, n), b_ih, b_hh]``."""

    name = "gru"

    def __init__(self, n: int, d: int) -> None:
        from tsforge.optional import require

        self.torch = require("torch", "the GRU cell of the online learners")
        self.func = require("torch.func", "the GRU cell of the online learners")
        self.n, self.d = n, d
        sizes = [3 * n * d, 3 * n * n, 3 * n, 3 * n]
        self.splits = np.cumsum(sizes)[:-1].tolist()
        self._jac = self.func.jacrev(self._cell_torch, argnums=(0, 1))

    def n_params(self) -> int:
        n, d = self.n, self.d
        return 3 * n * d + 3 * n * n + 6 * n

    def init(self, rng: np.random.Generator, radius: float) -> np.ndarray:
        n, d = self.n, self.d
        bound = 1.0 / np.sqrt(n)
        w_ih = rng.uniform(-bound, bound, (3 * n, d))
        w_hh = np.concatenate([np.linalg.qr(rng.standard_normal((n, n)))[0] * radius
                               for _ in range(3)])
        return np.concatenate([w_ih.ravel(), w_hh.ravel(), np.zeros(6 * n)])

    def _unpack(self, theta: Any) -> list[Any]:
        n, d = self.n, self.d
        w_ih, w_hh, b_ih, b_hh = self.torch.tensor_split(theta, self.splits)
        return [w_ih.reshape(3 * n, d), w_hh.reshape(3 * n, n), b_ih, b_hh]

    def _cell_torch(self, theta: Any, h: Any, x: Any) -> Any:
        w_ih, w_hh, b_ih, b_hh = self._unpack(theta)
        gi = w_ih @ x + b_ih
        gh = w_hh @ h + b_hh
        i_r, i_z, i_n = gi.chunk(3)
        h_r, h_z, h_n = gh.chunk(3)
        r = self.torch.sigmoid(i_r + h_r)
        z = self.torch.sigmoid(i_z + h_z)
        cand = self.torch.tanh(i_n + r * h_n)
        return (1 - z) * cand + z * h

    def step(self, theta: np.ndarray, h: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        t = self.torch
        args = (t.from_numpy(theta), t.from_numpy(h), t.from_numpy(x))
        h_new = self._cell_torch(*args).numpy()
        J_theta, J_h = self._jac(*args)
        return h_new, (J_h.numpy(), J_theta.numpy())

    def jvp_h(self, aux: Any, v: np.ndarray) -> np.ndarray:
        return aux[0] @ v

    def vjp_theta(self, aux: Any, v: np.ndarray) -> np.ndarray:
        return v @ aux[1]

    def rtrl_update(self, M: np.ndarray, aux: Any) -> np.ndarray:
        return aux[0] @ M + aux[1]

    def export_core(self, theta: np.ndarray, V: np.ndarray, c: np.ndarray) -> Any:
        from tsforge.models.online.export import GRUReadoutCore

        w_ih, w_hh, b_ih, b_hh = (p.numpy() for p in self._unpack(self.torch.from_numpy(theta)))
        return GRUReadoutCore(w_ih, w_hh, b_ih, b_hh, V, c)


CELLS = {"rnn": TanhCell, "gru": GRUCell}
