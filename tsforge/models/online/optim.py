"""Adam and Nesterov with a decaying rate and gradient-norm clipping, one reading at a time.

Both work on one flat parameter vector ``(p,)`` or on a stack of them ``(S, p)``,
one row per sensor: norms, clipping, the skip of a non-finite gradient and the
step counter ``t`` are per row, so row ``s`` of a stack moves exactly as a
single-sensor optimiser fed row ``s`` would.
"""

from __future__ import annotations

import numpy as np


def _row_norms(grad: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row (last axis); ``()`` for a flat vector."""
    if grad.ndim == 1:
        return np.sqrt(np.dot(grad, grad))
    return np.sqrt(np.einsum("...p,...p->...", grad, grad))


def _clip_scale(norm: np.ndarray, clip: float | None) -> np.ndarray:
    """Per row: ``clip / norm`` where the norm exceeds ``clip``, else 1."""
    if not clip:
        return np.ones_like(norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > clip, clip / norm, 1.0)


class OnlineAdam:
    """Adam over flat parameter rows, rate ``lr / (1 + decay * sqrt(t))``.

    The decaying rate follows the UORO reference setting: online gradients are
    computed from parameters that keep changing, so the steps must shrink.
    ``size`` is ``p`` or ``(S, p)``.  Its whole state is plain arrays (see
    :meth:`state_dict`).
    """

    def __init__(self, size: int | tuple[int, ...], lr: float, decay: float, clip: float | None,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.decay, self.clip = lr, decay, clip
        self.beta1, self.beta2, self.eps = betas[0], betas[1], eps
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = np.zeros(self.m.shape[:-1], dtype=np.int64)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Update ``params`` in place from ``grad`` (each row clipped to norm ``clip``).

        A row whose gradient is not finite (or whose norm overflows) is skipped, so a
        bad reading can never reach the parameters.
        """
        norm = _row_norms(grad)
        ok = np.isfinite(norm)
        if not ok.all():
            self._step_some(params, grad, norm, ok)
            return
        # per-row factors; plain floats when every row shares them (one sensor, or
        # sensors stepping together): this runs once per reading, small ops dominate
        if self.clip and float(norm.max()) > self.clip:
            scale: np.ndarray | float = (self.clip / np.maximum(norm, self.clip))[..., None]
        else:
            scale = 1.0
        self.t += 1
        t0 = int(self.t.flat[0])
        t: np.ndarray | float = float(t0) if np.all(self.t == t0) else \
            self.t[..., None].astype(np.float64)
        b1, b2 = self.beta1, self.beta2
        self.m *= b1
        self.m += ((1 - b1) * scale) * grad
        self.v *= b2
        self.v += ((1 - b2) * scale * scale) * (grad * grad)
        rate = self.lr / (1.0 + self.decay * np.sqrt(t))
        denom = np.sqrt(self.v * (1.0 / (1 - b2**t)))
        denom += self.eps
        params -= (rate / (1 - b1**t)) * self.m / denom

    def _step_some(self, params: np.ndarray, grad: np.ndarray, norm: np.ndarray,
                   ok: np.ndarray) -> None:
        """The step of the rows with a finite gradient; the other rows keep everything."""
        grad = np.where(ok[..., None], grad, 0.0)
        scale = np.where(ok, _clip_scale(norm, self.clip), 0.0)[..., None]
        self.t += ok
        t = np.maximum(self.t, 1)[..., None].astype(np.float64)
        b1, b2 = self.beta1, self.beta2
        self.m *= np.where(ok, b1, 1.0)[..., None]
        self.m += ((1 - b1) * scale) * grad
        self.v *= np.where(ok, b2, 1.0)[..., None]
        self.v += ((1 - b2) * scale * scale) * (grad * grad)
        rate = self.lr / (1.0 + self.decay * np.sqrt(t))
        denom = np.sqrt(self.v * (1.0 / (1 - b2**t)))
        denom += self.eps
        params -= np.where(ok[..., None], rate / (1 - b1**t), 0.0) * self.m / denom

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}m": self.m.copy(), f"{prefix}v": self.v.copy(),
                f"{prefix}t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        self.m = np.array(state[f"{prefix}m"], dtype=np.float64)
        self.v = np.array(state[f"{prefix}v"], dtype=np.float64)
        self.t = np.array(state[f"{prefix}t"], dtype=np.int64)


class OnlineNesterov:
    """Nesterov momentum over flat parameter rows, rate ``lr / (1 + decay * sqrt(t))``.

    The update is TensorFlow's ``MomentumOptimizer(use_nesterov=True)``:
    ``v = momentum v + g``; ``params -= rate (g + momentum v)``.  Unlike Adam it keeps
    the size of the step proportional to the size of ``g``, which local learning
    rules need: their small, noisy updates are not rescaled to full-size steps.
    Same interface, row semantics and plain-array state as :class:`OnlineAdam`.
    """

    def __init__(self, size: int | tuple[int, ...], lr: float, decay: float,
                 clip: float | None, momentum: float = 0.9) -> None:
        self.lr, self.decay, self.clip, self.momentum = lr, decay, clip, momentum
        self.v = np.zeros(size)
        self.t = np.zeros(self.v.shape[:-1], dtype=np.int64)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Update ``params`` in place from ``grad`` (each row clipped to norm ``clip``)."""
        ok = np.all(np.isfinite(grad), axis=-1)  # never let a non-finite update through
        if not np.all(ok):
            grad = np.where(ok[..., None], grad, 0.0)
        if self.clip:
            grad = grad * _clip_scale(_row_norms(grad), self.clip)[..., None]
        self.t += ok
        keep = np.where(ok, self.momentum, 1.0)[..., None]
        self.v *= keep
        self.v += grad
        rate = self.lr / (1.0 + self.decay * np.sqrt(np.maximum(self.t, 1)))
        params -= np.where(ok, rate, 0.0)[..., None] * (grad + self.momentum * self.v)

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}v": self.v.copy(), f"{prefix}t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        self.v = np.array(state[f"{prefix}v"], dtype=np.float64)
        self.t = np.array(state[f"{prefix}t"], dtype=np.int64)
