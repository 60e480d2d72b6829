"""statsmodels state-space models (ETS, ARIMA) refitted on a schedule, filtered per reading.

Life of a model:

- **(re)fit**: statsmodels estimates the parameters by maximum likelihood on the
  last ``max_window`` readings, then filters that window with the fixed
  parameters (``model.filter(params)``); tsforge keeps the parameters, the
  time-invariant system matrices statsmodels derived from them, and the filter's
  predicted state ``(a, P)`` at the end of the window;
- **between refits**, each reading is passed through statsmodels' own Kalman
  filter (:class:`statsmodels.tsa.statespace.kalman_filter.KalmanFilter`) started
  from ``(a, P)``, followed by ``H`` missing values whose one-step predictions are
  the ``H``-step forecast.  This is exactly ``results.append(new, refit=False)``
  (tested to 1e-10) at O(1) cost per reading instead of O(window): statsmodels'
  ``extend`` would be O(1) too, but it re-applies the estimated initial states
  of ``ExponentialSmoothing`` and so restarts ETS from the window's beginning;
- every ``refit_every`` readings the parameters are re-estimated on the recent
  window.  A refit that fails keeps the previous parameters (counted in
  ``n_refit_failures_``).

Persistence: parameters, system matrices, ``(a, P)``, the recent window and the
refit counter are plain arrays, so a loaded model resumes exactly, with no
statsmodels results object to pickle; the next refit rebuilds one from the window.
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.base import ForecasterConfig
from tsforge.models.peer import PeerForecaster
from tsforge.optional import require

#: The system matrices of a linear Gaussian state-space model, statsmodels' names.
MATRICES = ("design", "obs_intercept", "obs_cov", "transition", "state_intercept",
            "selection", "state_cov")


@dataclasses.dataclass(frozen=True)
class StateSpaceConfig(ForecasterConfig):
    """Refit schedule shared by statsmodels baselines.

    Attributes
    ----------
    refit_every
        Readings between parameter re-estimations (0: never refit after ``fit``).
    max_window
        Most recent readings a (re)fit sees; caps its cost and memory.
    maxiter
        Iterations of statsmodels' likelihood optimiser per (re)fit.
    max_period
        Longest season modelled explicitly; beyond it the model is fitted without a
        seasonal component, because its state (one entry per phase) makes each
        filter step cost O(period²) and each fit far more.
    """

    refit_every: int = 500
    max_window: int = 2000
    maxiter: int = 50
    max_period: int = 48


class StateSpaceForecaster(PeerForecaster):
    """Base of statsmodels baselines: subclasses build the model and estimate it."""

    Config = StateSpaceConfig
    #: They model level, trend and season themselves on raw readings.
    uses_transforms: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        require("statsmodels", f"the '{self.name}' baseline")
        c = self.config
        if c.refit_every < 0:
            raise ConfigError(f"refit_every must be >= 0, got {c.refit_every}")
        if c.max_window < 10:
            raise ConfigError(f"max_window must be >= 10, got {c.max_window}")
        if c.maxiter < 1:
            raise ConfigError(f"maxiter must be >= 1, got {c.maxiter}")
        self.params_: np.ndarray | None = None
        self.matrices_: dict[str, np.ndarray] = {}
        self.a_: np.ndarray | None = None
        self.P_: np.ndarray | None = None
        self.window_ = np.zeros(0)
        self.since_refit_ = 0
        self.n_refit_failures_ = 0

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def build_model(self, endog: np.ndarray) -> Any:
        """The statsmodels ``MLEModel`` for ``endog`` (raw readings)."""

    @abc.abstractmethod
    def estimate(self, model: Any) -> np.ndarray:
        """Maximum-likelihood parameters of ``model`` (constrained, statsmodels' order)."""

    def _seasonal_period(self) -> int:
        """Season length used, 0 for none (``period`` if within ``max_period``)."""
        period = getattr(self.config, "period", 1)
        return period if 2 <= period <= self.config.max_period else 0

    # ------------------------------------------------------------------ fitting
    def _min_history(self) -> int:
        return max(10, 2 * self._seasonal_period() + 2)

    def _fit_history(self, y: np.ndarray) -> None:
        self.window_ = y[-self.config.max_window :].copy()
        self._refit(initial=True)

    def _refit(self, initial: bool = False) -> None:
        self.since_refit_ = 0
        try:
            # statsmodels re-enables its convergence warnings inside fit; recording
            # swallows them (the result is checked below instead).
            with warnings.catch_warnings(record=True):
                model = self.build_model(self.window_)
                params = np.asarray(self.estimate(model), dtype=np.float64)
                results = model.filter(params)
            if not model.ssm.time_invariant:
                raise ConfigError(
                    f"'{self.name}' with {self.get_params()} has time-varying system "
                    "matrices, which this wrapper does not stream; drop the time trend"
                )
            matrices = {k: np.array(model.ssm[k], dtype=np.float64) for k in MATRICES}
            a = np.array(results.predicted_state[:, -1])
            P = np.array(results.predicted_state_cov[:, :, -1])
            if not (np.all(np.isfinite(params)) and np.all(np.isfinite(a))):
                raise DataError("estimation returned non-finite parameters or states")
        except ConfigError:
            raise
        except Exception as exc:  # statsmodels raises many types (LinAlgError, ValueError...)
            if initial:
                raise DataError(
                    f"'{self.name}' could not be fitted on the {self.window_.size} readings "
                    f"given: {exc}. Try a longer or cleaner history or simpler orders."
                ) from exc
            self.n_refit_failures_ += 1
            return
        self.params_, self.matrices_, self.a_, self.P_ = params, matrices, a, P

    # ------------------------------------------------------------------ streaming
    def _filter(self, observations: np.ndarray) -> Any:
        """statsmodels' Kalman filter over ``observations`` from the current ``(a, P)``."""
        kf_mod = require("statsmodels.tsa.statespace.kalman_filter", f"'{self.name}'")
        m = self.matrices_
        # A fresh filter per call: re-binding one instance does not reliably restart
        # it from a new known initial state.
        kf = kf_mod.KalmanFilter(k_endog=1, k_states=m["transition"].shape[0],
                                 k_posdef=m["selection"].shape[1], **m)
        kf.bind(observations)
        kf.initialize_known(self.a_, self.P_)
        return kf.filter()

    def _step(self, y: float, learn: bool) -> None:
        # One filter pass: the reading, then H missing values (the forecast).
        out = self._filter(np.r_[y, np.full(self.horizon, np.nan)])
        self.a_ = np.array(out.predicted_state[:, 1])
        self.P_ = np.array(out.predicted_state_cov[:, :, 1])
        self._next_forecast = np.array(out.forecasts[0, 1:], dtype=np.float64)
        self.window_ = np.append(self.window_[-(self.config.max_window - 1) :], y)
        self.since_refit_ += 1
        if self.config.refit_every and self.since_refit_ >= self.config.refit_every:
            self._refit()
            self._next_forecast = None

    def _predict(self) -> np.ndarray:
        ready, self._next_forecast = getattr(self, "_next_forecast", None), None
        if ready is not None:
            return ready
        out = self._filter(np.full(self.horizon, np.nan))
        return np.array(out.forecasts[0], dtype=np.float64)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        if self.params_ is None:
            return {}
        state = {f"matrix/{k}": v.copy() for k, v in self.matrices_.items()}
        state.update(params=self.params_.copy(), a=self.a_.copy(), P=self.P_.copy(),
                     window=self.window_.copy(), forecast=self.forecast_.copy(),
                     counters=np.array([self.since_refit_, self.n_refit_failures_]))
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not state:
            return
        f64 = {k: np.asarray(v, dtype=np.float64).copy() for k, v in state.items()}
        self.matrices_ = {k: f64[f"matrix/{k}"] for k in MATRICES}
        self.params_, self.a_, self.P_ = f64["params"], f64["a"], f64["P"]
        self.window_, self.forecast_ = f64["window"], f64["forecast"]
        self.since_refit_, self.n_refit_failures_ = (int(v) for v in state["counters"])
