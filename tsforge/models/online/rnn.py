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


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def random_signs(seed: int, step: int, draw: int, n: int) -> np.ndarray:
    """``n`` i.i.d. ±1 signs that depend only on ``(seed, step, draw)``.

    A counter-based generator (SplitMix64 finaliser over a counter) makes the
    signs of step ``t`` reproducible without carrying generator state, so a
    restarted stream draws exactly what an uninterrupted one would, and costs a
    few microseconds instead of building a numpy Generator per reading.
    """
    words = (n + 63) // 64
    with np.errstate(over="ignore"):
        base = (np.uint64(seed) * np.uint64(0xD1B54A32D192ED03)
                ^ np.uint64(step) * _GOLDEN ^ np.uint64(draw) * np.uint64(0x8CB92BA72F3D8DD7))
        z = base + (np.arange(1, words + 1, dtype=np.uint64) * _GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    bits = np.unpackbits(z.view(np.uint8))[:n]
    return bits.astype(np.float64) * 2.0 - 1.0
