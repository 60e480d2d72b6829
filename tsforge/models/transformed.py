"""A forecaster wrapped with its transform chain, covariate scaling, a bad-reading policy
and online conformal prediction intervals.

The wrapped model sees stationary, scaled values; users see engineering units.
Composition, not inheritance: any registered forecaster can be wrapped, and every
one gets intervals (:mod:`tsforge.intervals`) computed from its residuals in
engineering units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.intervals import DEFAULT_INTERVALS, ConformalIntervals, IntervalConfig
from tsforge.models.base import Forecast, Forecaster, as_covariates
from tsforge.preprocess.transforms import Scale, TransformChain

NONFINITE_POLICIES = ("impute", "error")


class TransformedForecaster:
    """``model`` behind ``transforms`` (a chain spec), in engineering units.

    Parameters
    ----------
    model
        Any :class:`~tsforge.models.base.Forecaster`.  Baselines that declare
        ``uses_transforms = False`` get an empty chain.
    transforms
        Chain spec for :meth:`TransformChain.from_spec`, e.g.
        ``[{"kind": "difference"}, {"kind": "scale"}]``.
    nonfinite
        What to do with a NaN/inf reading while streaming: ``"impute"`` replaces
        the target by the model's own one-step forecast (and covariates by their
        last finite value), advances the state without learning, and counts it in
        ``n_imputed_``; ``"error"`` raises :class:`DataError`.
    intervals
        Settings of the online conformal intervals (levels, ACI step, window), or
        None to pass through the model's own intervals (if any).  Residuals start
        accumulating at ``fit``; :meth:`forecast` returns intervals once each
        horizon step has ``intervals.warmup`` of them.  An imputed reading scores
        no residual.
    """

    def __init__(
        self,
        model: Forecaster,
        transforms: list[dict[str, Any]] | None = None,
        *,
        nonfinite: str = "impute",
        intervals: IntervalConfig | None = DEFAULT_INTERVALS,
    ) -> None:
        if nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(
                f"nonfinite policy '{nonfinite}' unknown; valid: {', '.join(NONFINITE_POLICIES)}"
            )
        self.model = model
        use = getattr(model, "uses_transforms", True)
        self.transforms = list(transforms or []) if use else []
        self.nonfinite = nonfinite
        self.chain_ = TransformChain.from_spec(self.transforms)
        self.covariate_scales_: list[Scale] = []
        self.last_x_: np.ndarray | None = None
        self.n_imputed_ = 0
        self.interval_config = intervals
        self.conformal_ = self._new_conformal()

    def _new_conformal(self) -> ConformalIntervals | None:
        if self.interval_config is None:
            return None
        return ConformalIntervals(self.interval_config, self.model.horizon)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def horizon(self) -> int:
        return self.model.horizon

    def fit(self, y: Any, X: Any = None) -> TransformedForecaster:
        """Fit the chain on ``y``, scale covariates, fit the model on the transformed history."""
        y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise DataError(
                "training history contains NaN/inf; repair it with tsforge.data.prepare first"
            )
        X_arr = as_covariates(X, y.shape[0])
        self.chain_ = TransformChain.from_spec(self.transforms).fit(y)
        z = self.chain_.transform(y)
        self.covariate_scales_ = [Scale().fit(col) for col in X_arr.T]
        Xs = self._scale_covariates(X_arr)
        self.model.fit(z, Xs)
        self.last_x_ = X_arr[-1].copy() if X_arr.shape[0] else None
        self.conformal_ = self._new_conformal()
        self._record_forecast()
        return self

    def _mean(self) -> np.ndarray:
        return self.chain_.inverse_forecast(self.model.forecast().mean)

    def _record_forecast(self) -> None:
        if self.conformal_ is not None:
            self.conformal_.record(self._mean())

    def _scale_covariates(self, X: np.ndarray) -> np.ndarray:
        if not self.covariate_scales_:
            return np.zeros((X.shape[0], 0))
        return np.column_stack([s.transform(c) for s, c in zip(self.covariate_scales_, X.T)])

    def _step_inputs(self, y: float, x: Any) -> tuple[float, np.ndarray, bool]:
        x_arr = np.zeros(0) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
        if x_arr.shape[0] != len(self.covariate_scales_):
            raise DataError(
                f"expected {len(self.covariate_scales_)} covariate value(s), got {x_arr.shape[0]}"
            )
        bad = not np.isfinite(y) or not np.all(np.isfinite(x_arr))
        if bad:
            if self.nonfinite == "error":
                raise DataError(f"non-finite reading: target={y}, covariates={x_arr.tolist()}")
            if not np.isfinite(y):
                y = float(self.forecast().mean[0])
            if self.last_x_ is not None:
                x_arr = np.where(np.isfinite(x_arr), x_arr, self.last_x_)
            self.n_imputed_ += 1
        self.last_x_ = x_arr.copy()
        return float(y), x_arr, bad

    def _advance(self, y: float, x: Any, learn: bool) -> None:
        if self.conformal_ is not None:
            self.conformal_.observe(y)  # the reading as received: NaN scores nothing
        y, x_arr, imputed = self._step_inputs(y, x)
        z = self.chain_.transform_one(y)
        xs = np.array([s.transform_one(v) for s, v in zip(self.covariate_scales_, x_arr)])
        if learn and not imputed:
            self.model.learn_one(z, xs)
        else:
            self.model.update(z, xs)
        self._record_forecast()

    def learn_one(self, y: float, x: Any = None) -> None:
        """Advance by one reading; online models learn from it (never from imputed values)."""
        self._advance(y, x, learn=True)

    def update(self, y: float, x: Any = None) -> None:
        """Advance by one reading without learning."""
        self._advance(y, x, learn=False)

    def forecast(self) -> Forecast:
        """Forecast in engineering units, with conformal intervals once warmed up."""
        f = self.model.forecast()
        mean = self.chain_.inverse_forecast(f.mean)
        if self.conformal_ is not None:
            return Forecast(mean=mean, intervals=self.conformal_.intervals(mean))
        scale = self.chain_.forecast_scale(f.horizon)
        intervals = {}
        for level, (lo, hi) in f.intervals.items():
            half = (hi - lo) / 2.0 * scale
            intervals[level] = (mean - half, mean + half)
        return Forecast(mean=mean, intervals=intervals)

    def artifact_metadata(self) -> dict[str, Any]:
        """What a deployment needs besides the model: chain, covariate scaling, and the
        interval configuration with its residual state (so the runtime continues it)."""
        meta: dict[str, Any] = {
            "transforms": self.chain_.to_spec(),
            "covariate_scales": [s.to_spec() for s in self.covariate_scales_],
            "nonfinite": self.nonfinite,
        }
        if self.conformal_ is not None:
            meta["intervals"] = self.conformal_.to_json()
        return meta
