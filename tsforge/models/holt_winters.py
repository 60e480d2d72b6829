"""river's Holt-Winters exponential smoothing as a tsforge peer baseline."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError
from tsforge.models.base import ForecasterConfig
from tsforge.models.peer import PeerForecaster, array_to_json, json_to_array
from tsforge.models.river_state import numeric_state, restore_numeric_state
from tsforge.optional import require

#: Candidate smoothing parameters searched when one is left as None.
ALPHAS = (0.1, 0.3, 0.5, 0.8)
BETAS = (0.01, 0.05, 0.2)
GAMMAS = (0.05, 0.2, 0.5)


@dataclasses.dataclass(frozen=True)
class HoltWintersConfig(ForecasterConfig):
    """Hyper-parameters of :class:`HoltWinters`.

    Attributes
    ----------
    period
        Season length in readings; below 2 means no seasonal component.
    trend
        Include an additive trend.
    alpha, beta, gamma
        Level, trend and season smoothing.  ``None`` (default) picks the value from
        a small grid by one-step MAE on the last ``tune_window`` training readings.
    tune_window
        Training readings the grid search replays (each candidate from scratch).
    """

    period: int = 1
    trend: bool = True
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    tune_window: int = 2000


class HoltWinters(PeerForecaster):
    """Additive Holt-Winters (``river.time_series.HoltWinters``), streamed reading by reading.

    river's smoothing parameters are fixed, so the model has no parameters to learn
    online: every reading only updates level, trend and season (``online = False``;
    ``learn_one`` and ``update`` are the same).  ``fit`` picks the parameters left
    as None and then runs river over the whole history.  The model sees raw
    readings (``uses_transforms = False``): level, trend and season are its own
    job, and river initialises its season by dividing by the level, which needs a
    series away from zero (a standardised, differenced series is not).
    Save/load writes river's numeric state (level, trend, season, warm-up values)
    explicitly and restores it exactly.

    >>> import numpy as np
    >>> y = 50.0 + np.sin(2 * np.pi * np.arange(240) / 12)
    >>> model = HoltWinters(period=12, horizon=3, alpha=0.3, beta=0.01, gamma=0.2).fit(y)
    >>> bool(np.allclose(model.forecast().mean, y[:3], atol=0.2))
    True
    """

    name = "holt_winters"
    Config = HoltWintersConfig
    uses_transforms: ClassVar[bool] = False

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        return {"period": 12, "tune_window": 150}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        require("river", "the Holt-Winters baseline")
        c = self.config
        for name in ("alpha", "beta", "gamma"):
            v = getattr(c, name)
            if v is not None and not 0.0 < v <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {v}")
        if c.tune_window < 10:
            raise ConfigError(f"tune_window must be >= 10, got {c.tune_window}")
        self.smoothing_: tuple[float, float | None, float | None] | None = None
        self.model_: Any = None

    @property
    def _seasonality(self) -> int:
        return self.config.period if self.config.period >= 2 else 0

    def _build(self, alpha: float, beta: float | None, gamma: float | None) -> Any:
        ts = require("river.time_series", "the Holt-Winters baseline")
        return ts.HoltWinters(alpha=alpha, beta=beta, gamma=gamma,
                              seasonality=self._seasonality)

    def _min_history(self) -> int:
        return max(2, self._seasonality) + 2

    def _candidates(self) -> list[tuple[float, float | None, float | None]]:
        c = self.config
        alphas = ALPHAS if c.alpha is None else (c.alpha,)
        # river needs a trend whenever it has a season
        has_trend = c.trend or self._seasonality > 0
        betas = (BETAS if c.beta is None else (c.beta,)) if has_trend else (None,)
        gammas = (GAMMAS if c.gamma is None else (c.gamma,)) if self._seasonality else (None,)
        return list(itertools.product(alphas, betas, gammas))

    def _one_step_mae(self, params: tuple[float, float | None, float | None],
                      y: np.ndarray) -> float:
        model = self._build(*params)
        errors = []
        for v in y.tolist():
            if model._initialized:
                errors.append(abs(v - model.forecast(1)[0]))
            model.learn_one(v)
        return float(np.mean(errors)) if errors else float("inf")

    def _fit_history(self, y: np.ndarray) -> None:
        candidates = self._candidates()
        if len(candidates) > 1:
            recent = y[-self.config.tune_window :]
            scores = [self._one_step_mae(p, recent) for p in candidates]
            self.smoothing_ = candidates[int(np.argmin(scores))]
        else:
            self.smoothing_ = candidates[0]
        self.model_ = self._build(*self.smoothing_)
        for v in y.tolist():
            self.model_.learn_one(v)

    def _step(self, y: float, learn: bool) -> None:
        self.model_.learn_one(y)

    def _predict(self) -> np.ndarray:
        if not self.model_._initialized:
            return np.full(self.horizon, np.nan)
        return np.asarray(self.model_.forecast(self.horizon), dtype=np.float64)

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.model_ is None:
            return {}
        return {"smoothing": json_to_array(list(self.smoothing_)),
                "river_state": json_to_array(numeric_state(self.model_)),
                "forecast": self.forecast_.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        self.smoothing_ = tuple(array_to_json(state["smoothing"]))
        self.model_ = self._build(*self.smoothing_)
        restore_numeric_state(self.model_, array_to_json(state["river_state"]))
        self.forecast_ = np.asarray(state["forecast"], dtype=np.float64).copy()
