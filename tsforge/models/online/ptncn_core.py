"""Pure math of the P-TNCN (numpy, float64): inference with correction, and the local updates.

Notation follows Ororbia et al., "Online Learning of Recurrent Neural Architectures
by Locally Aligning Distributed Representations" (arXiv:1810.07411), for ``L``
latent layers of ``n`` units over an input of ``d`` channels (column vectors;
layer 0 is the input).  From the corrected states ``y_{t-1}`` of the previous
reading and the previous input ``x_{t-1}`` (``y^0 = x``):

    a^l = V^l y^l_{t-1} + M^l y^{l-1}_{t-1} + U^l y^{l+1}_{t-1}   (no U^L on the top layer)
    z^l = f(a^l),   mu^{l-1} = W^l z^l   (mu^0 is the forecast of x_t; identity output)
    e^0 = mu^0 - x_t,   e^l = mu^l - z^l  (l = 1..L-1),   e^L = 0
    d^l = E^l e^{l-1} - gamma e^l,   y^l = f(a^l - beta d^l),   eps^l = z^l - y^l

Weight "gradients" (the optimiser subtracts a multiple of them):

    dW^l = e^{l-1} (z^l)^T,   dM^l = eps^l (y^{l-1}_{t-1})^T,
    dV^l = eps^l (y^l_{t-1})^T,   dU^l = eps^l (y^{l+1}_{t-1})^T,
    dE^l = (dW^l)^T                                    ("transpose" rule, reference default)
    dE^l = -(eps^l_t - eps^l_{t-1}) (e^{l-1})^T        ("temporal" error rule of the paper)

Each matrix's update is clipped to Frobenius norm ``clip`` (the reference
``update_radius``).  No derivative of ``f`` appears, so ``f`` may be a
non-differentiable unit such as ``sign``.

Iterative inference (``steps = K``): the reference code accepts ``K`` but runs a
single correction.  Here step ``k > 1`` recomputes the errors from the states
corrected so far (``e^0 = W^1 y^1 - x``, ``e^l = W^{l+1} y^{l+1} - y^l``) and
corrects the pre-activations again, ``a <- a - beta d``; ``K = 1`` is the
reference's single correction.  The weight updates keep the errors of the uncorrected states ``z``,
which are the model's actual forecast errors.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from tsforge.models.online.optim import _clip_scale as _shrink
from tsforge.models.online.optim import _row_norms as _norm
from tsforge.models.online.rnn import matvec

#: Activation name -> numpy function.  ``sign`` has no useful derivative (zero almost
#: everywhere), so backpropagation could not train it; the local rule does not need one.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "hardtanh": lambda a: np.clip(a, -1.0, 1.0),
    "sign": np.sign,
}

ERROR_RULES = ("transpose", "temporal")


@functools.lru_cache(maxsize=32)
def block_shapes(n: int, d: int, layers: int) -> tuple[tuple[str, tuple[int, int]], ...]:
    """Names and shapes of the stored blocks, in their order inside the flat vector.

    Per layer: ``W^l``, ``E^l`` and ``R^l = [M^l | V^l | U^l]`` (the three matrices
    that read the previous states, side by side, so one product gives ``a^l``).
    """
    out: list[tuple[str, tuple[int, int]]] = []
    for ell in range(1, layers + 1):
        below = d if ell == 1 else n
        reads = below + n + (n if ell < layers else 0)
        out += [(f"W{ell}", (below, n)), (f"E{ell}", (n, below)), (f"R{ell}", (n, reads))]
    return tuple(out)


def unpack(theta: np.ndarray, n: int, d: int, layers: int) -> dict[str, np.ndarray]:
    """Views into ``theta`` (``(p,)`` or ``(S, p)``): every stored block and ``M^l, V^l, U^l``."""
    views, start, lead = {}, 0, theta.shape[:-1]
    for name, (rows, cols) in block_shapes(n, d, layers):
        views[name] = theta[..., start : start + rows * cols].reshape(*lead, rows, cols)
        start += rows * cols
    if start != theta.shape[-1]:
        raise ValueError(f"parameter vector has {theta.shape[-1]} entries, the layout needs "
                         f"{start}")
    for ell in range(1, layers + 1):
        below = d if ell == 1 else n
        R = views[f"R{ell}"]
        views[f"M{ell}"], views[f"V{ell}"] = R[..., :below], R[..., below : below + n]
        if ell < layers:
            views[f"U{ell}"] = R[..., below + n :]
    return views


def n_params(n: int, d: int, layers: int) -> int:
    return sum(r * c for _, (r, c) in block_shapes(n, d, layers))


@dataclasses.dataclass
class Inference:
    """Everything one inference step computed (lists are indexed by layer ``l - 1``).

    ``reads[l-1] = [y^{l-1}_{t-1}, y^l_{t-1}, y^{l+1}_{t-1}]`` is what ``R^l`` read;
    ``mu[0]`` is the forecast of the input; ``e[0]`` its error, ``e[l]`` the error of
    layer ``l``'s prediction of layer ``l``'s state (the top layer has none).
    """

    reads: list[np.ndarray]
    a: list[np.ndarray]
    z: list[np.ndarray]
    mu: list[np.ndarray]
    e: list[np.ndarray]
    y: list[np.ndarray]
    eps: list[np.ndarray]


def previous_reads(y_prev: list[np.ndarray], x_prev: np.ndarray) -> list[np.ndarray]:
    """Per layer, the previous states its ``R^l`` reads: below, itself, above."""
    below = [x_prev, *y_prev]
    return [np.concatenate(below[ell - 1 : ell + 2], axis=-1)
            for ell in range(1, len(y_prev) + 1)]


def _errors(P: dict[str, np.ndarray], s: list[np.ndarray], x: np.ndarray
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Top-down predictions ``mu^{l-1} = W^l s^l`` and their errors against ``x`` and ``s``."""
    mu = [matvec(P[f"W{ell}"], s[ell - 1]) for ell in range(1, len(s) + 1)]
    e = [mu[0] - x] + [mu[ell] - s[ell - 1] for ell in range(1, len(s))]
    return mu, e


def infer(P: dict[str, np.ndarray], y_prev: list[np.ndarray], x_prev: np.ndarray,
          x: np.ndarray | None, *, beta: float, gamma: float, steps: int,
          activation: str) -> Inference:
    """One reading: predict, compare with ``x`` and correct the latent states.

    ``x = None`` corrects towards the model's own forecast (``x = mu^0``), which is how
    the forecaster runs ahead of the data.
    """
    f = ACTIVATIONS[activation]
    L = len(y_prev)
    reads = previous_reads(y_prev, x_prev)
    a = [matvec(P[f"R{ell}"], reads[ell - 1]) for ell in range(1, L + 1)]
    z = [f(v) for v in a]
    target = matvec(P["W1"], z[0]) if x is None else x
    mu, e = _errors(P, z, target)
    corrected, s, e_k = a, z, e
    for k in range(steps):
        if k > 0:
            _, e_k = _errors(P, s, target)
        corrected = [corrected[ell - 1] - beta * (
            matvec(P[f"E{ell}"], e_k[ell - 1]) - (gamma * e_k[ell] if ell < L else 0.0))
            for ell in range(1, L + 1)]
        s = [f(v) for v in corrected]
    return Inference(reads=reads, a=a, z=z, mu=mu, e=e, y=s,
                     eps=[zl - yl for zl, yl in zip(z, s)])


def _outer(u: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    np.multiply(u[..., :, None], v[..., None, :], out=out)


def updates(q: Inference, eps_prev: list[np.ndarray], *, rule: str,
            clip: float | None) -> np.ndarray:
    """The local update of every weight matrix, flat in the layout of :func:`block_shapes`.

    Each of ``W, E, M, V, U`` is clipped to Frobenius norm ``clip`` on its own (None:
    not clipped), using ``|u v^T| = |u| |v|``.  Vectors may carry a leading sensor
    axis; the result is then ``(S, p)``, each sensor clipped on its own.
    """
    L, n, d = len(q.z), q.z[0].shape[-1], q.mu[0].shape[-1]
    lead = q.z[0].shape[:-1]
    grad = np.empty((*lead, n_params(n, d, L)))
    G = unpack(grad, n, d, L)
    for ell in range(1, L + 1):
        i, below = ell - 1, (d if ell == 1 else n)
        e, z, eps, reads = q.e[i], q.z[i], q.eps[i], q.reads[i]
        n_e, n_eps = _norm(e), _norm(eps)
        _outer(e * _shrink(n_e * _norm(z), clip)[..., None], z, G[f"W{ell}"])
        if rule == "transpose":
            G[f"E{ell}"][...] = np.swapaxes(G[f"W{ell}"], -1, -2)
        else:
            de = eps_prev[i] - eps  # dE = -(eps_t - eps_{t-1}) e^T
            _outer(de * _shrink(_norm(de) * n_e, clip)[..., None], e, G[f"E{ell}"])
        # R = [M | V | U]: each part clipped by its own norm |eps| |part of reads|
        scaled = reads.copy()
        for lo, hi in ((0, below), (below, below + n), (below + n, reads.shape[-1])):
            part = reads[..., lo:hi]
            if part.shape[-1]:
                scaled[..., lo:hi] *= _shrink(n_eps * _norm(part), clip)[..., None]
        _outer(eps, scaled, G[f"R{ell}"])
    return grad
