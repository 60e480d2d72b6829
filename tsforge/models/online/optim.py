"""Adam with a decaying rate and gradient-norm clipping, for one-reading-at-a-time updates."""

from __future__ import annotations

import numpy as np


class OnlineAdam:
    """Adam over one flat parameter vector, rate ``lr / (1 + decay * sqrt(t))``.

    The decaying rate follows the UORO reference setting: online gradients are
    computed from parameters that keep changing, so the steps must shrink.
    Its whole state is plain arrays (see :meth:`state_dict`).
    """

    def __init__(self, size: int, lr: float, decay: float, clip: float | None,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.decay, self.clip = lr, decay, clip
        self.beta1, self.beta2, self.eps = betas[0], betas[1], eps
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Update ``params`` in place from ``grad`` (clipped to norm ``clip``).

        A gradient that is not finite (or whose norm overflows) is skipped, so a bad
        reading can never reach the parameters.  The moments are updated in place:
        this runs once per reading, so temporaries are kept to a minimum.
        """
        norm = float(np.sqrt(np.dot(grad, grad)))
        if not np.isfinite(norm):
            return
        scale = self.clip / norm if self.clip and norm > self.clip else 1.0
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        self.m *= b1
        self.m += ((1 - b1) * scale) * grad
        self.v *= b2
        self.v += ((1 - b2) * scale * scale) * (grad * grad)
        rate = self.lr / (1.0 + self.decay * np.sqrt(self.t))
        denom = np.sqrt(self.v * (1.0 / (1 - b2**self.t)))
        denom += self.eps
        params -= (rate / (1 - b1**self.t)) * self.m / denom

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}m": self.m.copy(), f"{prefix}v": self.v.copy(),
                f"{prefix}t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        self.m = np.array(state[f"{prefix}m"], dtype=np.float64)
        self.v = np.array(state[f"{prefix}v"], dtype=np.float64)
        self.t = int(state[f"{prefix}t"])


class OnlineNesterov:
    """Nesterov momentum over one flat parameter vector, rate ``lr / (1 + decay * sqrt(t))``.

    The update is TensorFlow's ``MomentumOptimizer(use_nesterov=True)``:
    ``v = momentum v + g``; ``params -= rate (g + momentum v)``.  Unlike Adam it keeps
    the size of the step proportional to the size of ``g``, which local learning
    rules need: their small, noisy updates are not rescaled to full-size steps.
    Same interface and plain-array state as :class:`OnlineAdam`.
    """

    def __init__(self, size: int, lr: float, decay: float, clip: float | None,
                 momentum: float = 0.9) -> None:
        self.lr, self.decay, self.clip, self.momentum = lr, decay, clip, momentum
        self.v = np.zeros(size)
        self.t = 0

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Update ``params`` in place from ``grad`` (clipped to norm ``clip``)."""
        if not np.all(np.isfinite(grad)):
            return  # never let a non-finite update reach the parameters
        if self.clip:
            norm = float(np.linalg.norm(grad))
            if norm > self.clip:
                grad = grad * (self.clip / norm)
        self.t += 1
        self.v = self.momentum * self.v + grad
        rate = self.lr / (1.0 + self.decay * np.sqrt(self.t))
        params -= rate * (grad + self.momentum * self.v)

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}v": self.v.copy(), f"{prefix}t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        self.v = np.array(state[f"{prefix}v"], dtype=np.float64)
        self.t = int(state[f"{prefix}t"])
