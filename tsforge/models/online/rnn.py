"""Pure math of a tanh RNN and its forward-mode gradients (numpy, float64).

Cell: ``h_t = tanh(W h_{t-1} + U x_t + b)`` with ``n`` units and ``d`` inputs.
Parameters are one flat vector ``theta = [vec(W), vec(U), b]`` (row-major), so
an influence matrix ``M = dh/dtheta`` has shape ``(n, p)`` with
``p = n*n + n*d + n``.
"""

from __future__ import annotations

import numpy as np


def n_params(n: int, d: int) -> int:
    return n * n + n * d + n


def unpack(theta: np.ndarray, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views ``W (n, n)``, ``U (n, d)``, ``b (n,)`` into ``theta``."""
    W = theta[: n * n].reshape(n, n)
    U = theta[n * n : n * n + n * d].reshape(n, d)
    b = theta[n * n + n * d :]
    return W, U, b


def step(theta: np.ndarray, h: np.ndarray, x: np.ndarray, n: int) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """One cell step; returns ``h_new`` and ``D = 1 - h_new**2`` (tanh derivative)."""
    W, U, b = unpack(theta, n, x.shape[0])
    h_new = np.tanh(W @ h + U @ x + b)
    return h_new, 1.0 - h_new * h_new


def immediate_vjp(v: np.ndarray, D: np.ndarray, h_prev: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``v^T (dh_t/dtheta)`` with ``h_{t-1}`` held fixed, as a flat vector of size p."""
    vd = v * D
    return np.concatenate([np.outer(vd, h_prev).ravel(), np.outer(vd, x).ravel(), vd])


def rtrl_update(M: np.ndarray, theta: np.ndarray, D: np.ndarray, h_prev: np.ndarray,
                x: np.ndarray, n: int) -> np.ndarray:
    """Influence matrix recursion ``M_t = J_t M_{t-1} + M_imm_t`` (Williams & Zipser).

    ``J_t = diag(D) W``; ``M_imm[i, W_ij] = D_i h_j``, ``M_imm[i, U_ij] = D_i x_j``,
    ``M_imm[i, b_i] = D_i``.  Cost O(n^2 p) per step.
    """
    d = x.shape[0]
    W, _, _ = unpack(theta, n, d)
    M_new = (D[:, None] * W) @ M  # (n, p)
    rows = np.arange(n)
    # W block: entry (i, i*n + j) = D_i h_j ; U block: (i, n*n + i*d + j) = D_i x_j
    M_new[rows[:, None], rows[:, None] * n + np.arange(n)] += D[:, None] * h_prev[None, :]
    base = n * n
    M_new[rows[:, None], base + rows[:, None] * d + np.arange(d)] += D[:, None] * x[None, :]
    M_new[rows, base + n * d + rows] += D
    return M_new


def uoro_combine(s_prop: np.ndarray, theta_tilde: np.ndarray, theta_g: np.ndarray,
                 nu: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """One UORO step (Tallec & Ollivier, Algorithm 1) for the rank-one pair (s̃, θ̃).

    ``s_prop = J s̃`` is an exact Jacobian-vector product and ``theta_g = ν^T dF/dθ``
    an exact vector-Jacobian product, both from the cell; ``ρ0``, ``ρ1`` balance the
    norms of the factors (any positive values keep the estimate unbiased).
    """
    rho0 = np.sqrt((np.linalg.norm(theta_tilde) + eps) / (np.linalg.norm(s_prop) + eps))
    rho1 = np.sqrt((np.linalg.norm(theta_g) + eps) / (np.linalg.norm(nu) + eps))
    return rho0 * s_prop + rho1 * nu, theta_tilde / rho0 + theta_g / rho1


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(z: int) -> int:
    """The SplitMix64 finaliser on a Python int (arithmetic mod 2**64)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def random_signs(seed: int, step: int, draw: int, n: int) -> np.ndarray:
    """``n`` i.i.d. ±1 signs that depend only on ``(seed, step, draw)``.

    A counter-based generator (SplitMix64 finaliser over a counter) makes the
    signs of step ``t`` reproducible without carrying generator state, so a
    restarted stream draws exactly what an uninterrupted one would.  The 64-bit
    words are computed on Python ints (a few hundred nanoseconds each) and only
    the bit unpacking touches numpy, since this runs once per reading.
    """
    base = ((seed * 0xD1B54A32D192ED03) ^ (step * _GOLDEN)
            ^ (draw * 0x8CB92BA72F3D8DD7)) & _MASK
    raw = b"".join(_splitmix64((base + k * _GOLDEN) & _MASK).to_bytes(8, "little")
                   for k in range(1, (n + 63) // 64 + 1))
    return _BYTE_SIGNS[np.frombuffer(raw, dtype=np.uint8)].ravel()[:n]


#: Row ``b``: the eight bits of byte ``b``, most significant first, as ±1.
_BYTE_SIGNS = np.array([[((b >> i) & 1) * 2.0 - 1.0 for i in range(7, -1, -1)]
                        for b in range(256)])
