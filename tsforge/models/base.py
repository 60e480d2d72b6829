"""The forecaster protocol every model family implements.

A forecaster works on one series (the *target*, already transformed by the
pipeline's transform chain) with optional covariates: other sensors of the
same asset, observed at the same time steps.  Its life cycle is

1. ``fit(y, X)`` on history (batch training; online learners may only warm up);
2. per new reading, ``learn_one(y_t, x_t)`` (advance the state and, for online
   learners, update the parameters) or ``update(y_t, x_t)`` (advance the state only);
3. ``forecast()``: the next ``horizon`` values from the current state, without
   changing it.

Constructors store configuration only (a dataclass, ``self.config``); learned
attributes end in ``_`` and round-trip through ``state_dict()`` /
``load_state_dict()``.  Models that can be deployed also expose a *streaming core*,
a torch module ``forward(x_t, state) -> (forecast, state)``, which is what
:mod:`tsforge.export` writes to ONNX.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ArtifactError, ConfigError, DataError


@dataclass(frozen=True)
class Forecast:
    """One forecast: ``mean`` has shape ``(horizon,)``.

    ``intervals`` maps a nominal coverage level (e.g. ``0.9``) to a ``(lower, upper)``
    pair of arrays of the same shape as ``mean``; it is empty for models without
    interval estimates.
    """

    mean: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return int(self.mean.shape[0])


@dataclass(frozen=True)
class ForecasterConfig:
    """Hyper-parameters shared by every forecaster.

    Attributes
    ----------
    horizon
        Number of future steps forecast at each call (H).
    seed
        Seed for every random choice the model makes (initialisation, shuffling, signs).
    """

    horizon: int = 1
    seed: int = 0


def _as_1d_float(y: Any, what: str) -> np.ndarray:
    arr = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_covariates(X: Any, n_rows: int) -> np.ndarray:
    """Return covariates as a float64 array of shape ``(n_rows, k)`` (``k`` may be 0)."""
    if X is None:
        return np.zeros((n_rows, 0))
    arr = np.asarray(getattr(X, "to_numpy", lambda: X)(), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise DataError(
            f"covariates must have shape (n_readings={n_rows}, n_covariates), got {arr.shape}"
        )
    return arr


class Forecaster(abc.ABC):
    """Abstract base of every tsforge forecaster (see the module docstring)."""

    #: Registry name, e.g. ``"mlp"``.
    name: ClassVar[str] = ""
    #: Hyper-parameter dataclass; the constructor takes its fields as keywords.
    Config: ClassVar[type[ForecasterConfig]] = ForecasterConfig
    #: True if ``learn_one`` updates parameters (online learner).
    online: ClassVar[bool] = False
    #: True if :meth:`streaming_core` is available for ONNX export.
    exportable: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        valid = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(params) - valid)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {unknown} for model '{self.name}'; "
                f"valid parameters: {sorted(valid)}"
            )
        self.config = self.Config(**params)
        if self.config.horizon < 1:
            raise ConfigError(f"horizon must be >= 1, got {self.config.horizon}")
        self.n_covariates_: int | None = None

    # ------------------------------------------------------------------ protocol
    @property
    def horizon(self) -> int:
        return self.config.horizon

    @abc.abstractmethod
    def fit(self, y: Any, X: Any = None) -> Forecaster:
        """Train on history ``y`` (shape ``(T,)``) with covariates ``X`` (``(T, k)``)."""

    @abc.abstractmethod
    def update(self, y: float, x: np.ndarray | None = None) -> None:
        """Advance the state by one reading without learning."""

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        """Advance the state by one reading and, for online learners, learn from it.

        Frozen models only update their state (the default).
        """
        self.update(y, x)

    @abc.abstractmethod
    def forecast(self) -> Forecast:
        """Forecast the next ``horizon`` values from the current state (does not mutate)."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything learned or streamed so far, as named numpy arrays."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def with_intervals(self, levels: tuple[float, ...] = (0.8, 0.95), *,
                       method: str = "aci") -> Any:
        """This model wrapped so that :meth:`forecast` carries conformal intervals.

        A bare model holds no record of its own errors, so its ``forecast().intervals``
        is empty.  The returned :class:`~tsforge.models.transformed.TransformedForecaster`
        (no transforms) scores every forecast against the reading that follows it and,
        once ``warmup`` readings are scored per step (20 by default), returns
        intervals at ``levels`` with every forecast::

            model = create("holt_winters").with_intervals().fit(history)
            for y in recent:
                model.learn_one(y)
            model.forecast().intervals[0.95]  # (lower, upper), each (H,)
        """
        from tsforge.intervals import IntervalConfig
        from tsforge.models.transformed import TransformedForecaster

        return TransformedForecaster(self, [], intervals=IntervalConfig(levels=tuple(levels),
                                                                         method=method))

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        """Small, fast hyper-parameters for the conformance suite (CI-sized runs)."""
        return {}

    # ------------------------------------------------------------------ helpers
    def _check_fit_input(self, y: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        y_arr = _as_1d_float(y, "target series y")
        X_arr = as_covariates(X, y_arr.shape[0])
        self.n_covariates_ = X_arr.shape[1]
        return y_arr, X_arr

    def _check_step_input(self, x: np.ndarray | None) -> np.ndarray:
        if self.n_covariates_ is None:
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        x_arr = np.zeros(0) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
        if x_arr.shape[0] != self.n_covariates_:
            raise DataError(
                f"model '{self.name}' was fitted with {self.n_covariates_} covariate(s), "
                f"got {x_arr.shape[0]} at this step"
            )
        return x_arr

    def _learn_recent(self, y: np.ndarray, X: np.ndarray, readings: int) -> Forecaster:
        """Warm an online learner up: ``learn_one`` over the last ``readings`` readings.

        Readings with a non-finite target or covariate are skipped, as a stream's
        nonfinite policy would not let them reach the learner either.
        """
        for t in range(max(0, len(y) - readings), len(y)):
            if np.isfinite(y[t]) and np.all(np.isfinite(X[t])):
                self.learn_one(y[t], X[t])
        return self

    @property
    def is_fitted(self) -> bool:
        return self.n_covariates_ is not None

    def get_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ export
    def streaming_core(self) -> Any:
        """A torch module ``forward(x_t (B, C), state (B, *S)) -> (forecast (B, H), state)``.

        ``x_t`` stacks the transformed target and the covariates of one time step.
        """
        raise ConfigError(f"model '{self.name}' cannot be exported to ONNX")

    def stream_state(self) -> np.ndarray:
        """The current state of the streaming core, shape ``(*S,)`` (no batch axis)."""
        raise ConfigError(f"model '{self.name}' has no streaming core")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write config and state to one ``.npz`` file (no pickles; see :func:`load`)."""
        path = Path(path)
        meta = {
            "model": self.name,
            "config": self.get_params(),
            "n_covariates": self.n_covariates_,
        }
        arrays = {f"state/{k}": np.asarray(v) for k, v in self.state_dict().items()}
        from tsforge.io_utils import atomic_write_bytes, npz_bytes

        atomic_write_bytes(path, npz_bytes({"__meta__": np.array(json.dumps(meta)), **arrays}))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Load a forecaster written by :meth:`save`, whatever its family."""
        return load_forecaster(path)


def load_forecaster(path: str | Path) -> Forecaster:
    """Rebuild a forecaster from a file written by :meth:`Forecaster.save`."""
    from tsforge.models.registry import create

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
            state = {k[len("state/") :]: npz[k] for k in npz.files if k.startswith("state/")}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"cannot read model file {path}: {exc}. The file is missing, truncated or not a "
            "tsforge model; re-export it or restore it from the registry."
        ) from exc
    model = create(meta["model"], **meta["config"])
    model.n_covariates_ = meta["n_covariates"]
    model.load_state_dict(state)
    return model
