"""The linear windowed model: ridge least squares from lags to every horizon step.

Each of the ``horizon`` outputs is its own linear function of the last ``window``
readings (plus the seasonal lags and covariate channels the window carries): the
"Linear" model of Zeng et al. (2023), "Are Transformers Effective for Time Series
Forecasting?", fitted in closed form instead of by gradient descent.  With
``decompose=k`` the window is first split into a moving-average trend and the
remainder, each with its own weights (their DLinear); since both parts are linear in
the window, the fitted weights fold back into one linear map, so the streaming
core and its ONNX step are the same as without it.

The ridge penalty is chosen on the chronological validation split (the last
``val_fraction`` of the training windows) from a grid, then the model is refitted on
all windows with it: no optimiser, no epochs, the same answer on every run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError
from tsforge.models.windowed import WindowedConfig, WindowedForecaster, nn, torch

#: Ridge penalties tried, relative to the mean eigenvalue of the design's Gram matrix.
RIDGE_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclasses.dataclass(frozen=True)
class LinearConfig(WindowedConfig):
    """Hyper-parameters of :class:`LinearForecaster`.

    Attributes
    ----------
    ridge
        Ridge penalty relative to the mean eigenvalue of the design's Gram matrix;
        None (default) picks it from :data:`RIDGE_GRID` on the validation split.
    decompose
        Moving-average kernel of the trend/remainder split (DLinear uses 25); 0 fits
        the plain lags.
    """

    ridge: float | None = None
    decompose: int = 0


class LinearHead(nn.Module):
    """Flattened head input ``(B, n_inputs, C)`` -> one linear map -> ``(B, H)``."""

    def __init__(self, n_inputs: int, n_channels: int, horizon: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs * n_channels, horizon)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.linear(window.reshape(window.shape[0], -1))


def trend_matrix(n_inputs: int, window: int, kernel: int) -> np.ndarray:
    """``A`` with ``A @ x`` the moving-average trend of the head input rows ``x``.

    The last ``window`` rows are contiguous readings: each gets the mean of the
    ``kernel`` rows centred on it, edges padded by repeating the end reading (as
    DLinear does).  Earlier rows (seasonal lags) get no trend: all remainder.
    """
    A = np.zeros((n_inputs, n_inputs))
    first = n_inputs - window
    half = (kernel - 1) // 2
    for i in range(window):
        for j in range(i - half, i - half + kernel):
            A[first + i, first + min(max(j, 0), window - 1)] += 1.0 / kernel
    return A


def ridge_fit(D: np.ndarray, Y: np.ndarray, penalties: tuple[float, ...],
              n_val: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Ridge regression of ``Y`` on ``D`` with an unpenalised intercept.

    The penalty (relative to the mean eigenvalue of the centred Gram matrix) is the
    one of ``penalties`` with the lowest mean squared error on the last ``n_val``
    rows when fitted on the rows before them (the first penalty when ``n_val`` is 0).
    Returns coefficients ``(p, H)``, intercept ``(H,)``, the penalty and its
    validation error (NaN without validation).
    """

    def solve(Dt: np.ndarray, Yt: np.ndarray, lams: tuple[float, ...]
              ) -> list[tuple[np.ndarray, np.ndarray]]:
        d_mean, y_mean = Dt.mean(axis=0), Yt.mean(axis=0)
        Dc = Dt - d_mean
        evals, evecs = np.linalg.eigh(Dc.T @ Dc)
        evals = np.clip(evals, 0.0, None)
        proj = evecs.T @ (Dc.T @ (Yt - y_mean))
        scale = max(float(evals.mean()), 1e-12)
        out = []
        for lam in lams:
            coef = evecs @ (proj / (evals + lam * scale)[:, None])
            out.append((coef, y_mean - d_mean @ coef))
        return out

    best, best_err = penalties[0], float("nan")
    if n_val > 0 and len(penalties) > 1 and D.shape[0] - n_val > D.shape[1] // 4:
        fits = solve(D[:-n_val], Y[:-n_val], penalties)
        errs = [float(np.mean((D[-n_val:] @ c + b - Y[-n_val:]) ** 2)) for c, b in fits]
        i = int(np.argmin(errs))
        best, best_err = penalties[i], errs[i]
    coef, intercept = solve(D, Y, (best,))[0]
    return coef, intercept, best, best_err


class LinearForecaster(WindowedForecaster):
    """Ridge least squares from the window to each horizon step (closed form).

    >>> import numpy as np
    >>> y = np.sin(np.arange(400) / 5.0)
    >>> model = LinearForecaster(window=20, horizon=3).fit(y)
    >>> np.allclose(model.forecast().mean, np.sin(np.arange(400, 403) / 5.0), atol=1e-3)
    True
    """

    name = "linear"
    Config = LinearConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        c = self.config
        if c.ridge is not None and c.ridge < 0:
            raise ConfigError(f"ridge must be >= 0 or None, got {c.ridge}")
        if c.decompose < 0:
            raise ConfigError(f"decompose must be >= 0 (0: off), got {c.decompose}")
        self.ridge_: float | None = None
        self.val_mse_: float | None = None

    @classmethod
    def test_params(cls) -> dict[str, object]:
        return {"window": 8}

    def build_head(self, n_channels: int) -> nn.Module:
        return LinearHead(self.n_inputs, n_channels, self.horizon)

    def fit(self, y: Any, X: Any = None) -> LinearForecaster:
        c = self.config
        y_arr, X_arr = self._check_fit_input(y, X)
        Z = np.column_stack([y_arr, X_arr])
        windows, targets = self.training_windows(Z)  # (N, L, C), (N, H)
        n, L, C = windows.shape
        A = trend_matrix(L, c.window, c.decompose) if c.decompose > 1 else None
        if A is not None:
            trend = np.einsum("ij,njc->nic", A, windows)
            D = np.concatenate([trend, windows - trend], axis=1).reshape(n, -1)
        else:
            D = windows.reshape(n, -1)
        penalties = RIDGE_GRID if c.ridge is None else (c.ridge,)
        coef, intercept, self.ridge_, self.val_mse_ = ridge_fit(
            D, targets, penalties, round(n * c.val_fraction))
        if A is not None:  # fold trend and remainder weights into one map of the window
            B = coef.reshape(2, L, C, -1)
            coef = (np.einsum("il,ich->lch", A, B[0])
                    + np.einsum("il,ich->lch", np.eye(L) - A, B[1])).reshape(L * C, -1)
        self.core_ = self.build_core(C)
        with torch.no_grad():
            self.core_.head.linear.weight.copy_(torch.as_tensor(coef.T, dtype=torch.float32))
            self.core_.head.linear.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))
        self.core_.requires_grad_(False)  # fitted in closed form: nothing left to train
        self.core_.eval()
        self._start_stream(Z)
        return self
