"""What the peer baselines (river and statsmodels models, wrapped) have in common.

Peers are the references a tsforge model must beat, used exactly as their
packages intend; tsforge only drives them through the forecaster protocol.
They are univariate: covariates are checked for count (the protocol's contract)
but not used, because their forecasts would need future covariate values.
They cannot be exported to ONNX (their state lives in Python objects of another
package).  Their forecast is computed once per reading and cached, so
:meth:`forecast` is pure and cheap.
"""

from __future__ import annotations

import abc
import json
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.models.base import Forecast, Forecaster


def json_to_array(value: Any) -> np.ndarray:
    """Encode a JSON-serialisable value as a ``uint8`` array (a plain, pickle-free array).

    Used for state with named or ragged parts (a river model's feature weights);
    floats keep their exact value (``repr`` round-trips).
    """
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8).copy()


def array_to_json(arr: np.ndarray) -> Any:
    """Decode what :func:`json_to_array` wrote."""
    return json.loads(np.asarray(arr, dtype=np.uint8).tobytes().decode())


class PeerForecaster(Forecaster):
    """Base of wrapped third-party baselines; subclasses implement the four hooks."""

    exportable = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.forecast_: np.ndarray | None = None

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _fit_history(self, y: np.ndarray) -> None:
        """Fit on the finite history ``y`` and leave the model at its end."""

    @abc.abstractmethod
    def _step(self, y: float, learn: bool) -> None:
        """Advance by one reading (``learn``: also update parameters, online peers)."""

    @abc.abstractmethod
    def _predict(self) -> np.ndarray:
        """The next ``horizon`` values from the current state (shape ``(H,)``)."""

    @abc.abstractmethod
    def _min_history(self) -> int:
        """Finite readings ``fit`` needs."""

    # ------------------------------------------------------------------ protocol
    def fit(self, y: Any, X: Any = None) -> PeerForecaster:
        y_arr, _ = self._check_fit_input(y, X)
        finite = y_arr[np.isfinite(y_arr)]
        if finite.size < self._min_history():
            raise DataError(
                f"model '{self.name}' needs at least {self._min_history()} finite readings, "
                f"got {finite.size}"
            )
        self._fit_history(finite)
        self.forecast_ = self._predict()
        return self

    def _advance(self, y: float, x: np.ndarray | None, learn: bool) -> None:
        self._check_step_input(x)
        if self.forecast_ is None:
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        if not np.isfinite(y):
            raise DataError(
                f"model '{self.name}' got a non-finite reading {y}; wrap it in a "
                "TransformedForecaster with a nonfinite policy or repair the data"
            )
        self._step(float(y), learn)
        self.forecast_ = self._predict()

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        self._advance(y, x, learn=False)

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        self._advance(y, x, learn=self.online)

    def forecast(self) -> Forecast:
        if self.forecast_ is None:
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        return Forecast(mean=self.forecast_.copy())
