"""Pure math of the online recurrent learners (numpy, float64), batched over sensors.

Every function takes arrays with a leading sensor axis ``S`` (or any leading
axes): parameters ``theta (S, p)``, states ``h (S, n)``, inputs ``x (S, d)``,
influence matrices ``M (S, n, p)``.  Row ``s`` of every result equals what the
same call on row ``s`` alone returns, so one learner object serves S sensors
with the arithmetic of one.

Tanh cell: ``h_t = tanh(W h_{t-1} + U x_t + b)`` with ``theta = [vec(W), vec(U), b]``
(row-major), ``p = n*n + n*d + n``.
"""

from __future__ import annotations

import threading

import numpy as np


def matvec(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A @ v`` per sensor: ``(..., r, c) x (..., c) -> (..., r)``."""
    return np.matmul(A, v[..., None])[..., 0]


def outer_flat(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``vec(u v^T)`` per sensor: ``(..., a), (..., b) -> (..., a*b)``."""
    return (u[..., :, None] * v[..., None, :]).reshape(*u.shape[:-1], u.shape[-1] * v.shape[-1])


def n_params(n: int, d: int) -> int:
    return n * n + n * d + n


def unpack(theta: np.ndarray, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views ``W (..., n, n)``, ``U (..., n, d)``, ``b (..., n)`` into ``theta``."""
    lead = theta.shape[:-1]
    W = theta[..., : n * n].reshape(*lead, n, n)
    U = theta[..., n * n : n * n + n * d].reshape(*lead, n, d)
    b = theta[..., n * n + n * d :]
    return W, U, b


def step(theta: np.ndarray, h: np.ndarray, x: np.ndarray, n: int) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """One cell step; returns ``h_new`` and ``D = 1 - h_new**2`` (tanh derivative)."""
    W, U, b = unpack(theta, n, x.shape[-1])
    h_new = np.tanh(matvec(W, h) + matvec(U, x) + b)
    return h_new, 1.0 - h_new * h_new


def immediate_vjp(v: np.ndarray, D: np.ndarray, h_prev: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``v^T (dh_t/dtheta)`` with ``h_{t-1}`` held fixed, flat of size p per sensor."""
    vd = v * D
    return np.concatenate([outer_flat(vd, h_prev), outer_flat(vd, x), vd], axis=-1)


def rtrl_update(M: np.ndarray, theta: np.ndarray, D: np.ndarray, h_prev: np.ndarray,
                x: np.ndarray, n: int) -> np.ndarray:
    """Influence matrix recursion ``M_t = J_t M_{t-1} + M_imm_t`` (Williams & Zipser).

    ``J_t = diag(D) W``; ``M_imm[i, W_ij] = D_i h_j``, ``M_imm[i, U_ij] = D_i x_j``,
    ``M_imm[i, b_i] = D_i``.  Cost O(n^2 p) per step and sensor, one batched
    ``(S, n, n) @ (S, n, p)`` product for all sensors.
    """
    d = x.shape[-1]
    W, _, _ = unpack(theta, n, d)
    M_new = np.matmul(D[..., :, None] * W, M)  # (..., n, p)
    rows = np.arange(n)[:, None]
    # W block: entry (i, i*n + j) = D_i h_j ; U block: (i, n*n + i*d + j) = D_i x_j
    M_new[..., rows, rows * n + np.arange(n)] += D[..., :, None] * h_prev[..., None, :]
    base = n * n
    M_new[..., rows, base + rows * d + np.arange(d)] += D[..., :, None] * x[..., None, :]
    M_new[..., rows[:, 0], base + n * d + rows[:, 0]] += D
    return M_new


def _norms(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", v, v))[..., None]


def uoro_combine(s_prop: np.ndarray, theta_tilde: np.ndarray, theta_g: np.ndarray,
                 nu: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """One UORO step (Tallec & Ollivier, Algorithm 1) for the rank-one pairs (s̃, θ̃).

    ``s_prop = J s̃`` is an exact Jacobian-vector product and ``theta_g = ν^T dF/dθ``
    an exact vector-Jacobian product, both from the cell; ``ρ0``, ``ρ1`` balance the
    norms of the factors (any positive values keep the estimate unbiased).  Norms
    are per sensor (last axis).  ``theta_g`` is overwritten with the new θ̃.
    """
    rho0 = np.sqrt((_norms(theta_tilde) + eps) / (_norms(s_prop) + eps))
    rho1 = np.sqrt((_norms(theta_g) + eps) / (_norms(nu) + eps))
    theta_g *= 1.0 / rho1
    theta_g += theta_tilde * (1.0 / rho0)
    return rho0 * s_prop + rho1 * nu, theta_g


_MASK64 = (1 << 64) - 1
_PHILOX = threading.local()  # one generator per thread, re-keyed on every call


def random_signs(seed: int, step: int, draw: int, n: int) -> np.ndarray:
    """``n`` i.i.d. ±1 signs that depend only on ``(seed, step, draw)``.

    Counter-based: numpy's Philox4x64 keyed by ``seed`` with the counter set to
    ``(0, step, draw, 0)``.  The n signs are the bits of ``ceil(n/64)`` words that
    advance only the first counter word, so two different ``(step, draw)`` pairs
    never share a word (an earlier ``base + k·constant`` scheme did: word 2 of
    step t was word 1 of step t+1, which made UORO biased beyond 64 units).  A
    restarted stream draws exactly what an uninterrupted one would.  The output is
    that of ``Philox(key=seed, counter=(0, step, draw, 0))``; a per-thread generator
    is re-keyed through its state instead of being built anew (10x cheaper).
    """
    gen = getattr(_PHILOX, "gen", None)
    if gen is None:
        gen = _PHILOX.gen = np.random.Philox(key=0)
        _PHILOX.state = gen.state
    state = _PHILOX.state
    state["state"]["counter"][:] = (0, step & _MASK64, draw & _MASK64, 0)
    state["state"]["key"][:] = (seed & _MASK64, 0)
    state["buffer_pos"] = 4  # empty buffer: the next word comes from the new counter
    gen.state = state
    words = gen.random_raw((n + 63) // 64).astype("<u8", copy=False)
    return _BYTE_SIGNS[words.view(np.uint8)].ravel()[:n]


#: Row ``b``: the eight bits of byte ``b``, least significant first, as ±1.
_BYTE_SIGNS = np.array([[((b >> i) & 1) * 2.0 - 1.0 for i in range(8)] for b in range(256)])


def random_signs_many(seed: int, steps: np.ndarray, draw: int, n: int) -> np.ndarray:
    """:func:`random_signs` for each sensor's own step count: ``(S,) -> (S, n)``.

    Sensors that are at the same step draw the same signs (one generator call per
    distinct step): each sensor's estimate is unbiased on its own, which is all
    UORO needs, and sensor ``s`` draws exactly what a single-sensor learner would.
    """
    first = int(steps[0])
    if steps.shape[0] == 1 or np.all(steps == first):
        return np.broadcast_to(random_signs(seed, first, draw, n), (steps.shape[0], n))
    out = np.empty((steps.shape[0], n))
    for step in np.unique(steps):
        out[steps == step] = random_signs(seed, int(step), draw, n)
    return out
