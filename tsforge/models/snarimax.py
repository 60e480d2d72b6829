"""river's SNARIMAX, an online (S)ARIMA-style regression, as a tsforge peer baseline."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError
from tsforge.models.base import ForecasterConfig
from tsforge.models.peer import PeerForecaster, array_to_json, json_to_array
from tsforge.models.river_state import numeric_state, restore_numeric_state
from tsforge.optional import require


@dataclasses.dataclass(frozen=True)
class SNARIMAXConfig(ForecasterConfig):
    """Hyper-parameters of :class:`SNARIMAX` (river's names in brackets).

    Attributes
    ----------
    p, d, q
        Autoregressive lags, differencing order and moving-average (error) lags.
    period
        Season length (``m``); seasonal terms are used only when it is at least 2.
    sp, sq
        Seasonal autoregressive and moving-average orders.
    lr
        SGD learning rate of the linear regression (weights and intercept).
    clip_gradient
        Bound on each gradient component.  The moving-average features feed the
        model's own errors back as inputs, so one outlier (a sensor spike) can make
        plain SGD diverge; clipping keeps it stable.
    """

    p: int = 3
    d: int = 0
    q: int = 1
    period: int = 1
    sp: int = 0
    sq: int = 0
    lr: float = 0.01
    clip_gradient: float = 1.0


class _Frozen:
    """A regressor that predicts with the wrapped one and never learns.

    Swapped in for one ``learn_one`` call of river's SNARIMAX so that its lag and
    error buffers advance while its weights stay put (tsforge's ``update``).
    """

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def predict_one(self, x: dict[str, float]) -> float:
        return self.regressor.predict_one(x)

    def learn_one(self, x: dict[str, float], y: float) -> None:
        """Learn nothing."""


class SNARIMAX(PeerForecaster):
    """``river.time_series.SNARIMAX`` with a standardised linear regression learned by SGD.

    An online learner (``online = True``): ``learn_one`` takes one SGD step,
    ``update`` only advances the lag and error buffers.  ``fit`` is one online
    pass over the history.  It sees the transformed series
    (``uses_transforms = True``): plain SGD needs a stationary, standardised input
    to converge, so differencing is best left to the transform chain (``d=0``).
    Save/load writes river's numeric state (weights, scaler statistics, optimiser
    step count, lag and error buffers) explicitly and restores it exactly.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.zeros(2000)
    >>> for t in range(1, 2000):
    ...     y[t] = 0.8 * y[t - 1] + 0.1 * rng.standard_normal()
    >>> model = SNARIMAX(p=1, q=0, horizon=1).fit(y)
    >>> bool(abs(model.forecast().mean[0] - 0.8 * y[-1]) < 0.05)
    True
    """

    name = "snarimax"
    Config = SNARIMAXConfig
    online = True
    uses_transforms: ClassVar[bool] = True

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"p": 2, "q": 1, "period": 12, "sp": 1}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        require("river", "the SNARIMAX baseline")
        c = self.config
        for name in ("p", "d", "q", "sp", "sq"):
            if getattr(c, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(c, name)}")
        if c.p + c.q + c.sp + c.sq == 0:
            raise ConfigError("SNARIMAX needs at least one of p, q, sp, sq > 0")
        if c.lr <= 0 or c.clip_gradient <= 0:
            raise ConfigError(f"lr and clip_gradient must be > 0, got {c.lr}, {c.clip_gradient}")
        self.model_: Any = None

    def _build(self) -> Any:
        c = self.config
        ts = require("river.time_series", "the SNARIMAX baseline")
        lm = require("river.linear_model", "the SNARIMAX baseline")
        optim = require("river.optim", "the SNARIMAX baseline")
        prep = require("river.preprocessing", "the SNARIMAX baseline")
        seasonal = c.period >= 2
        regressor = prep.StandardScaler() | lm.LinearRegression(
            optimizer=optim.SGD(c.lr), intercept_lr=c.lr, clip_gradient=c.clip_gradient)
        return ts.SNARIMAX(p=c.p, d=c.d, q=c.q, m=c.period if seasonal else 1,
                           sp=c.sp if seasonal else 0, sq=c.sq if seasonal else 0,
                           regressor=regressor)

    def _min_history(self) -> int:
        c = self.config
        return c.d + max(c.p, c.q, c.period * max(c.sp, c.sq)) + 2

    def _fit_history(self, y: np.ndarray) -> None:
        self.model_ = self._build()
        for v in y.tolist():
            self.model_.learn_one(v)

    def _step(self, y: float, learn: bool) -> None:
        if learn:
            self.model_.learn_one(y)
            return
        regressor = self.model_.regressor
        self.model_.regressor = _Frozen(regressor)
        try:
            self.model_.learn_one(y)
        finally:
            self.model_.regressor = regressor

    def _predict(self) -> np.ndarray:
        return np.asarray(self.model_.forecast(self.horizon), dtype=np.float64)

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.model_ is None:
            return {}
        return {"river_state": json_to_array(numeric_state(self.model_)),
                "forecast": self.forecast_.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        self.model_ = self._build()
        restore_numeric_state(self.model_, array_to_json(state["river_state"]))
        self.forecast_ = np.asarray(state["forecast"], dtype=np.float64).copy()
