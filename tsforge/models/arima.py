"""statsmodels' ARIMA as a tsforge peer baseline."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError
from tsforge.models.statespace import StateSpaceConfig, StateSpaceForecaster
from tsforge.optional import require


@dataclasses.dataclass(frozen=True)
class ARIMAConfig(StateSpaceConfig):
    """Hyper-parameters of :class:`ARIMA` (plus the refit schedule of the base).

    Attributes
    ----------
    p, d, q
        Autoregressive order, differencing order, moving-average order.
    seasonal_p, seasonal_d, seasonal_q
        Seasonal orders, used when ``period`` is between 2 and ``max_period``.
    period
        Season length in readings.
    trend
        ``"n"`` (none) or ``"c"`` (a constant; only without differencing).
    """

    p: int = 2
    d: int = 1
    q: int = 1
    seasonal_p: int = 0
    seasonal_d: int = 0
    seasonal_q: int = 0
    period: int = 1
    trend: str = "n"


class ARIMA(StateSpaceForecaster):
    """Seasonal ARIMA, ``statsmodels.tsa.arima.model.ARIMA``, refitted on a schedule.

    Estimated by exact maximum likelihood (statsmodels' state-space method),
    differencing inside the state (so forecasts are in engineering units).  See
    :mod:`tsforge.models.statespace` for the refit schedule, per-reading
    filtering and persistence.  Sees raw readings (``uses_transforms = False``):
    the ``d`` differences are its own.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = 10.0 + np.cumsum(rng.normal(size=300))
    >>> model = ARIMA(p=1, d=1, q=0, horizon=2).fit(y)
    >>> model.forecast().mean.shape
    (2,)
    """

    name = "arima"
    Config = ARIMAConfig

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"p": 1, "d": 1, "q": 1, "max_window": 300, "refit_every": 25, "maxiter": 20}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        c = self.config
        orders = (c.p, c.d, c.q, c.seasonal_p, c.seasonal_d, c.seasonal_q)
        if min(orders) < 0:
            raise ConfigError(f"ARIMA orders must be >= 0, got {orders}")
        if c.trend not in ("n", "c"):
            raise ConfigError(f"trend must be 'n' or 'c', got {c.trend!r}")
        if c.trend == "c" and c.d + c.seasonal_d > 0:
            raise ConfigError("trend='c' is removed by differencing; use trend='n' with d > 0")

    def build_model(self, endog: np.ndarray) -> Any:
        arima = require("statsmodels.tsa.arima.model", "the ARIMA baseline")
        c = self.config
        m = self._seasonal_period()
        seasonal = (c.seasonal_p, c.seasonal_d, c.seasonal_q, m) if m else (0, 0, 0, 0)
        return arima.ARIMA(endog, order=(c.p, c.d, c.q), seasonal_order=seasonal,
                           trend=c.trend)

    def estimate(self, model: Any) -> np.ndarray:
        return model.fit(method_kwargs={"maxiter": self.config.maxiter}).params
