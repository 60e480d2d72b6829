"""Recurrent cells for the online learners, each with exact analytic Jacobian products.

A cell exposes ``step(theta, h, x) -> (h_new, aux)`` and, from ``aux``, the exact
products the learners need: ``jvp_h(aux, v) = (dh_new/dh) v``,
``vjp_theta(aux, v) = v^T dh_new/dθ`` and ``rtrl_update(M, aux) = J M + M_imm``.
All arrays carry a leading sensor axis (``theta (S, p)``, ``h (S, n)``, ``x (S, d)``,
``M (S, n, p)``), see :mod:`tsforge.models.online.rnn`.

- :class:`TanhCell`: ``h' = tanh(W h + U x + b)``.
- :class:`GRUCell`: PyTorch's ``torch.nn.GRUCell`` equations in numpy.  Its
  Jacobian products are analytic: a JVP or VJP costs O(p) per sensor, the full
  influence matrix is never needed by UORO.  Every unit's output depends on its own
  gate pre-activations only, so both products reduce to per-unit coefficients
  (``alpha`` for the input-side gates, ``beta`` for the hidden-side gates)
  computed once per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsforge.models.online import rnn
from tsforge.models.online.rnn import matvec, outer_flat


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
        return D * matvec(W, v)

    def vjp_theta(self, aux: Any, v: np.ndarray) -> np.ndarray:
        _, D, h, x = aux
        return rnn.immediate_vjp(v, D, h, x)

    def rtrl_update(self, M: np.ndarray, aux: Any) -> np.ndarray:
        theta, D, h, x = aux
        return rnn.rtrl_update(M, theta, D, h, x, self.n)

    def export_core(self, theta: np.ndarray, V: np.ndarray, c: np.ndarray,
                    skip: np.ndarray | None) -> Any:
        from tsforge.models.online.export import RNNReadoutCore

        W, U, b = rnn.unpack(theta, self.n, self.d)
        return RNNReadoutCore(W, U, b, V, c, skip=skip)


class GRUCell:
    """PyTorch's GRU cell; parameters ``[vec W_ih (3n, d), vec W_hh (3n, n), b_ih, b_hh]``.

    ``r = σ(i_r + h_r)``, ``z = σ(i_z + h_z)``, ``c = tanh(i_n + r h_n)``,
    ``h' = (1 - z) c + z h`` with ``[i_r, i_z, i_n] = W_ih x + b_ih`` and
    ``[h_r, h_z, h_n] = W_hh h + b_hh``.  With ``v`` a cotangent on ``h'``:

        alpha = [(1-z)(1-c²) h_n r(1-r),  (h-c) z(1-z),  (1-z)(1-c²)]   (d h'/d i_g)
        beta  = [alpha_r, alpha_z, alpha_n r]                           (d h'/d h_g)
        v^T dh'/dθ = [vec((v α) x^T), vec((v β) h^T), v α, v β]
        (dh'/dh) u = Σ_g β_g (W_hh,g u) + z u
    """

    name = "gru"

    def __init__(self, n: int, d: int) -> None:
        self.n, self.d = n, d

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

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """Views ``w_ih (..., 3n, d)``, ``w_hh (..., 3n, n)``, ``b_ih``, ``b_hh (..., 3n)``."""
        n, d, lead = self.n, self.d, theta.shape[:-1]
        a, b = 3 * n * d, 3 * n * d + 3 * n * n
        return (theta[..., :a].reshape(*lead, 3 * n, d), theta[..., a:b].reshape(*lead, 3 * n, n),
                theta[..., b : b + 3 * n], theta[..., b + 3 * n :])

    def step(self, theta: np.ndarray, h: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        n = self.n
        w_ih, w_hh, b_ih, b_hh = self.unpack(theta)
        gi = matvec(w_ih, x) + b_ih
        gh = matvec(w_hh, h) + b_hh
        r = 1.0 / (1.0 + np.exp(-(gi[..., :n] + gh[..., :n])))
        z = 1.0 / (1.0 + np.exp(-(gi[..., n : 2 * n] + gh[..., n : 2 * n])))
        h_n = gh[..., 2 * n :]
        cand = np.tanh(gi[..., 2 * n :] + r * h_n)
        h_new = (1.0 - z) * cand + z * h
        a_n = (1.0 - z) * (1.0 - cand * cand)
        alpha = np.concatenate([a_n * h_n * r * (1.0 - r), (h - cand) * z * (1.0 - z), a_n],
                               axis=-1)  # (..., 3n)
        beta = alpha.copy()
        beta[..., 2 * n :] *= r
        return h_new, (w_hh, z, alpha, beta, h, x)

    def jvp_h(self, aux: Any, v: np.ndarray) -> np.ndarray:
        w_hh, z, _, beta, _, _ = aux
        g = beta * matvec(w_hh, v)  # (..., 3n)
        n = self.n
        return g[..., :n] + g[..., n : 2 * n] + g[..., 2 * n :] + z * v

    def vjp_theta(self, aux: Any, v: np.ndarray) -> np.ndarray:
        _, _, alpha, beta, h, x = aux
        v3 = np.concatenate([v, v, v], axis=-1)
        va, vb = v3 * alpha, v3 * beta
        return np.concatenate([outer_flat(va, x), outer_flat(vb, h), va, vb], axis=-1)

    def jacobian_h(self, aux: Any) -> np.ndarray:
        """``dh'/dh`` per sensor, ``(..., n, n)``."""
        w_hh, z, _, beta, _, _ = aux
        n = self.n
        g = beta[..., :, None] * w_hh  # (..., 3n, n)
        J = g[..., :n, :] + g[..., n : 2 * n, :] + g[..., 2 * n :, :]
        idx = np.arange(n)
        J[..., idx, idx] += z
        return J

    def rtrl_update(self, M: np.ndarray, aux: Any) -> np.ndarray:
        _, _, alpha, beta, h, x = aux
        n, d = self.n, self.d
        M_new = np.matmul(self.jacobian_h(aux), M)
        rows = np.arange(n)[:, None]
        for g in range(3):  # unit i touches row g*n + i of every gate block
            gate = g * n + rows  # (n, 1)
            a, b = alpha[..., g * n : (g + 1) * n, None], beta[..., g * n : (g + 1) * n, None]
            M_new[..., rows, gate * d + np.arange(d)] += a * x[..., None, :]
            M_new[..., rows, 3 * n * d + gate * n + np.arange(n)] += b * h[..., None, :]
            M_new[..., rows[:, 0], 3 * n * d + 3 * n * n + gate[:, 0]] += a[..., 0]
            M_new[..., rows[:, 0], 3 * n * d + 3 * n * n + 3 * n + gate[:, 0]] += b[..., 0]
        return M_new

    def export_core(self, theta: np.ndarray, V: np.ndarray, c: np.ndarray,
                    skip: np.ndarray | None) -> Any:
        from tsforge.models.online.export import GRUReadoutCore

        w_ih, w_hh, b_ih, b_hh = self.unpack(theta)
        return GRUReadoutCore(w_ih, w_hh, b_ih, b_hh, V, c, skip=skip)


CELLS = {"rnn": TanhCell, "gru": GRUCell}
