"""statsmodels' exponential smoothing (ETS, additive errors) as a tsforge peer baseline."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tsforge.models.statespace import StateSpaceConfig, StateSpaceForecaster
from tsforge.optional import require


@dataclasses.dataclass(frozen=True)
class ETSConfig(StateSpaceConfig):
    """Hyper-parameters of :class:`ETS` (plus the refit schedule of the base).

    Attributes
    ----------
    trend
        Include an additive trend.
    damped
        Damp the trend (recommended for multi-step forecasts).
    period
        Season length in readings; a seasonal component is fitted when it is between 2
        and ``max_period``.
    """

    trend: bool = True
    damped: bool = True
    period: int = 1


class ETS(StateSpaceForecaster):
    """Linear exponential smoothing, ``statsmodels.tsa.statespace.ExponentialSmoothing``.

    ETS(A, Ad, A) in Hyndman's taxonomy by default (additive errors, damped
    additive trend, additive season when ``period`` allows), estimated by
    maximum likelihood with the initial states concentrated out (fewer
    parameters, much faster with a season).  The state-space form is used rather
    than ``ETSModel`` because it exposes the Kalman filter, which is what
    streams a reading at O(1) cost; see :mod:`tsforge.models.statespace` for the
    refit schedule and persistence.  Sees raw readings (``uses_transforms = False``).

    >>> import numpy as np
    >>> y = 20.0 + 0.05 * np.arange(300) + np.sin(np.arange(300) / 3.0)
    >>> model = ETS(horizon=2, trend=True).fit(y)
    >>> model.forecast().mean.shape
    (2,)
    """

    name = "ets"
    Config = ETSConfig

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"max_window": 300, "refit_every": 25, "maxiter": 20}

    def build_model(self, endog: np.ndarray) -> Any:
        es = require("statsmodels.tsa.statespace.exponential_smoothing", "the ETS baseline")
        c = self.config
        season = self._seasonal_period()
        return es.ExponentialSmoothing(
            endog, trend=c.trend, damped_trend=c.trend and c.damped,
            seasonal=season or None, initialization_method="concentrated")

    def estimate(self, model: Any) -> np.ndarray:
        return model.fit(disp=False, maxiter=self.config.maxiter).params
