"""Naive and seasonal-naive baselines: the bar every model must clear.

They work in engineering units (no transform chain) and keep a numpy buffer,
so streaming them costs microseconds.  Their streaming core (for ONNX export)
is a window of the same length with a fixed, parameter-free head.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.optional import require


class _BufferForecaster(Forecaster):
    """Keeps the last ``buffer_length`` target readings in a ring buffer."""

    exportable = True
    #: Baselines see raw readings: a pipeline does not transform their input.
    uses_transforms: ClassVar[bool] = False

    @property
    def buffer_length(self) -> int:
        raise TypeError(f"{type(self).__name__} must define buffer_length")

    def fit(self, y: Any, X: Any = None) -> Forecaster:
        y_arr, _ = self._check_fit_input(y, X)
        finite = y_arr[np.isfinite(y_arr)]
        if finite.size < self.buffer_length:
            raise DataError(
                f"model '{self.name}' needs at least {self.buffer_length} finite readings, "
                f"got {finite.size}"
            )
        self.buffer_ = finite[-self.buffer_length :].copy()
        return self

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self._check_step_input(x)
        if not np.isfinite(y):
            raise DataError(f"model '{self.name}' got a non-finite reading {y}")
        self.buffer_ = np.roll(self.buffer_, -1)
        self.buffer_[-1] = float(y)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"buffer": self.buffer_.copy()} if hasattr(self, "buffer_") else {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if "buffer" in state:
            self.buffer_ = np.asarray(state["buffer"], dtype=np.float64).copy()

    def stream_state(self) -> np.ndarray:
        state = np.zeros((self.buffer_length, 1 + (self.n_covariates_ or 0)))
        state[:, 0] = self.buffer_
        return state

    def _horizon_index(self) -> np.ndarray:
        """Index into the buffer of the reading repeated at each horizon step."""
        raise TypeError(f"{type(self).__name__} must define _horizon_index")

    def forecast(self) -> Forecast:
        if not hasattr(self, "buffer_"):
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        return Forecast(mean=self.buffer_[self._horizon_index()].copy())

    def streaming_core(self) -> Any:
        torch = require("torch", "exporting a baseline")
        from tsforge.models.windowed import WindowCore

        class GatherHead(torch.nn.Module):
            def __init__(self, index: np.ndarray) -> None:
                super().__init__()
                self.register_buffer("index", torch.as_tensor(index, dtype=torch.long))

            def forward(self, window: torch.Tensor) -> torch.Tensor:  # (B, W, C) -> (B, H)
                return window[:, :, 0].index_select(1, self.index)

        head = GatherHead(self._horizon_index())
        return WindowCore(head, self.buffer_length, 1 + (self.n_covariates_ or 0), self.horizon)


class Naive(_BufferForecaster):
    """Repeat the last reading for every horizon step.

    >>> import numpy as np
    >>> Naive(horizon=2).fit(np.array([1.0, 2.0, 3.0])).forecast().mean
    array([3., 3.])
    """

    name = "naive"

    @property
    def buffer_length(self) -> int:
        return 1

    def _horizon_index(self) -> np.ndarray:
        return np.zeros(self.horizon, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class SeasonalNaiveConfig(ForecasterConfig):
    """Attributes
    ----------
    period
        Season length in readings (e.g. 288 for a daily cycle at 5-minute sampling).
    """

    period: int = 24


class SeasonalNaive(_BufferForecaster):
    """Repeat the reading one season ago: ``y_hat[t+h] = y[t+h-m*ceil(h/m)]``.

    >>> import numpy as np
    >>> SeasonalNaive(period=3, horizon=4).fit(np.arange(6.0)).forecast().mean
    array([3., 4., 5., 3.])
    """

    name = "seasonal_naive"
    Config = SeasonalNaiveConfig

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"period": 12}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.config.period < 1:
            raise ConfigError(f"period must be >= 1, got {self.config.period}")

    @property
    def buffer_length(self) -> int:
        return self.config.period

    def _horizon_index(self) -> np.ndarray:
        return np.arange(self.horizon, dtype=np.int64) % self.config.period
