"""Stable recurrent models (Miller & Hardt, "Stable Recurrent Models", ICLR 2019).

A tanh RNN ``h_t = tanh(W h_{t-1} + U x_t + b)`` is a contraction in ``h`` when
``||W||_2 <= λ < 1`` (tanh is 1-Lipschitz).  After every optimiser step the
recurrent matrix is projected onto that ball:

- ``projection="svd"`` (default): exact Euclidean projection, singular values
  clipped to λ; O(n^3) per step.
- ``projection="power"``: the largest singular value is estimated by power
  iteration (a persistent vector, a few iterations per step, O(n^2)) and W is
  rescaled by λ/σ̂ when σ̂ > λ.  The estimate can undershoot between steps, so
  the exact SVD clip is applied once more when training ends: the trained model
  always satisfies the bound.

A stable model is approximated by the same recurrence restarted from zero over
the last k inputs, with error ``||y_t - y^k_t|| <= L_f λ^k B`` (``L_f`` the
readout's Lipschitz constant, ``B = sqrt(n)`` for tanh units), so the window
``k = ceil(ln(L_f B / ε) / ln(1/λ))`` (:func:`window_for`) reaches error ε.

GRU and LSTM: no projection is applied here and no contraction is claimed.
Miller & Hardt give a sufficient ℓ∞ condition for the LSTM (forget gate bounded
away from 1 and small recurrent-matrix norms); tsforge does not enforce it, so
only the tanh RNN carries the guarantee.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tsforge.errors import ConfigError
from tsforge.models.recurrent import RecurrentConfig, RecurrentCore, RNNForecaster, torch


def window_for(lam: float, eps: float, L_f: float = 1.0, B: float = 1.0) -> int:
    """Smallest window k with ``L_f * B * lam**k <= eps`` (Miller & Hardt's truncation bound)."""
    if not 0.0 < lam < 1.0:
        raise ConfigError(f"lam must be in (0, 1), got {lam}")
    if eps <= 0:
        raise ConfigError(f"eps must be > 0, got {eps}")
    return max(1, math.ceil(math.log(L_f * B / eps) / math.log(1.0 / lam)))


def recurrent_matrices(core: RecurrentCore) -> list[torch.Tensor]:
    return [getattr(core.rnn, f"weight_hh_l{i}") for i in range(core.layers)]


def spectral_norm(core: RecurrentCore) -> float:
    """Largest spectral norm over the layers' recurrent matrices (exact, via SVD)."""
    return max(float(torch.linalg.matrix_norm(W.detach(), ord=2)) for W in recurrent_matrices(core))


def project_svd(W: torch.Tensor, lam: float) -> None:
    """Clip the singular values of ``W`` at ``lam`` in place (exact projection)."""
    with torch.no_grad():
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        W.copy_(U @ torch.diag(S.clamp(max=lam)) @ Vh)


@dataclasses.dataclass(frozen=True)
class StableRNNConfig(RecurrentConfig):
    """Attributes
    ----------
    lam
        Bound λ < 1 on the spectral norm of the recurrent matrix.
    projection
        ``"svd"`` (exact clip) or ``"power"`` (power-iteration rescale).
    power_iterations
        Iterations per optimiser step for ``"power"``.
    """

    lam: float = 0.9
    projection: str = "svd"
    power_iterations: int = 3


class StableRNNForecaster(RNNForecaster):
    """Tanh RNN whose recurrent matrix is projected to ``||W||_2 <= lam`` after every step."""

    name = "stable_rnn"
    Config = StableRNNConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        c = self.config
        if not 0.0 < c.lam < 1.0:
            raise ConfigError(f"lam must be in (0, 1), got {c.lam}")
        if c.projection not in ("svd", "power"):
            raise ConfigError(f"projection '{c.projection}' unknown; valid: svd, power")
        if c.layers != 1:
            raise ConfigError("stable_rnn supports layers=1: the contraction bound is per "
                              "layer and does not carry over to a stack")
        self._power_vector: torch.Tensor | None = None

    def after_step(self, core: RecurrentCore) -> None:
        lam = self.config.lam
        for W in recurrent_matrices(core):
            if self.config.projection == "svd":
                project_svd(W, lam)
                continue
            with torch.no_grad():
                if self._power_vector is None:
                    g = torch.Generator().manual_seed(self.config.seed)
                    self._power_vector = torch.randn(W.shape[1], generator=g)
                v = self._power_vector.to(W.device)
                for _ in range(self.config.power_iterations):
                    v = W.T @ (W @ v)
                    v = v / v.norm().clamp(min=1e-12)
                self._power_vector = v
                sigma = float((W @ v).norm())
                if sigma > lam:
                    W.mul_(lam / sigma)

    def fit(self, y: Any, X: Any = None) -> StableRNNForecaster:
        self._power_vector = None
        return super().fit(y, X)

    def finish_training(self, core: RecurrentCore) -> None:
        for W in recurrent_matrices(core):
            project_svd(W, self.config.lam)  # guarantee the bound on the final weights

    def window(self, eps: float) -> int:
        """Window k after which restarting from zero changes forecasts by at most ``eps``."""
        lam = max(spectral_norm(self.core_), 1e-6)
        L_f = float(torch.linalg.matrix_norm(self.core_.head.weight.detach(), ord=2))
        return window_for(min(lam, self.config.lam), eps, L_f=L_f,
                          B=math.sqrt(self.config.hidden))
