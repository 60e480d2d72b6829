"""Invertible transforms that make a series stationary, batch and streaming.

Only numpy is imported here: the edge runtime applies the same transform chain
to readings and inverts forecasts back to engineering units.

Every transform has two faces:

- batch: ``fit(y)`` learns parameters on history, ``transform(y)`` maps the whole
  history, ``inverse_transform(z)`` maps it back (the round trip reproduces ``y``);
- streaming: after ``fit`` the transform sits at the end of the fitted history;
  ``transform_one(y_t)`` maps the next reading and advances the state, and
  ``inverse_forecast(z_hat)`` maps a forecast of the next H transformed values back,
  using the current state (last level, seasonal phase).  Nothing looks ahead.

A chain is serialised as a list of plain dicts (``to_spec``/``from_spec``), which
is what export artifacts and the runtime carry.
"""

from __future__ import annotations

import abc
import copy
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import ConfigError, DataError


class Transform(abc.ABC):
    """One invertible step of a transform chain."""

    kind: ClassVar[str] = ""

    @abc.abstractmethod
    def fit(self, y: np.ndarray) -> Transform:
        """Learn parameters on ``y`` and place the streaming state at its end."""

    @abc.abstractmethod
    def transform(self, y: np.ndarray) -> np.ndarray:
        """Transform the fitted history (same length; undefined leading values are NaN)."""

    @abc.abstractmethod
    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Invert :meth:`transform` on the fitted history."""

    @abc.abstractmethod
    def transform_one(self, y: float) -> float:
        """Transform the next reading and advance the streaming state."""

    @abc.abstractmethod
    def inverse_forecast(self, z_hat: np.ndarray) -> np.ndarray:
        """Map forecasts of the next ``H`` transformed values back; state unchanged."""

    def transform_block(self, y: np.ndarray) -> tuple[np.ndarray, Any]:
        """Transform readings ``y`` ``(T,)`` in order, as ``transform_one`` would.

        Returns the transformed values and the per-reading context that
        :meth:`inverse_block` needs to invert the forecast issued after each one.
        Subclasses replace this loop with array arithmetic.
        """
        z = np.empty(len(y))
        snaps = []
        for t, v in enumerate(np.asarray(y, dtype=np.float64)):
            z[t] = self.transform_one(v)
            snaps.append(copy.deepcopy(self))
        return z, snaps

    def inverse_block(self, z_hat: np.ndarray, context: Any) -> np.ndarray:
        """Invert forecasts ``(T, H)``, row ``t`` issued after reading ``t`` of a block."""
        return np.stack([snap.inverse_forecast(row) for snap, row in zip(context, z_hat)])

    def forecast_scale(self, horizon: int) -> np.ndarray:
        """Factor converting an error in transformed units to the original units, per step.

        Used to carry interval widths through the chain; exact for affine steps.
        """
        return np.ones(horizon)

    @abc.abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """Parameters and streaming state as a JSON-serialisable dict."""

    def describe(self) -> str:
        return self.kind


def _finite_or_error(y: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise DataError(
            f"{what}: the series contains NaN or inf; repair it first "
            "(tsforge.data.prepare with a nonfinite policy)"
        )
    return y


class Scale(Transform):
    """Standardise: ``z = (y - mean) / std`` with mean and std frozen after ``fit``."""

    kind = "scale"

    def __init__(self, mean: float | None = None, std: float | None = None) -> None:
        self.mean = mean
        self.std = std

    def fit(self, y: np.ndarray) -> Scale:
        y = np.asarray(y, dtype=np.float64)
        finite = y[np.isfinite(y)]
        if finite.size == 0:
            raise DataError("scale: no finite values to fit on")
        self.mean = float(finite.mean())
        std = float(finite.std())
        self.std = std if std > 1e-12 else 1.0
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.std + self.mean

    def transform_one(self, y: float) -> float:
        return (float(y) - self.mean) / self.std

    def inverse_forecast(self, z_hat: np.ndarray) -> np.ndarray:
        return self.inverse_transform(z_hat)

    def forecast_scale(self, horizon: int) -> np.ndarray:
        return np.full(horizon, self.std)

    def transform_block(self, y: np.ndarray) -> tuple[np.ndarray, Any]:
        return self.transform(y), None

    def inverse_block(self, z_hat: np.ndarray, context: Any) -> np.ndarray:
        return self.inverse_transform(z_hat)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": self.mean, "std": self.std}

    def describe(self) -> str:
        return f"scale(mean={self.mean:.4g}, std={self.std:.4g})"


class Difference(Transform):
    """First difference ``z_t = y_t - y_{t-1}``; removes a unit root or a trend.

    The first value of the batch transform is NaN (there is no previous reading).
    """

    kind = "difference"

    def __init__(self, first: float | None = None, last: float | None = None) -> None:
        self.first = first
        self.last = last

    def fit(self, y: np.ndarray) -> Difference:
        y = _finite_or_error(y, "difference")
        if y.size < 2:
            raise DataError("difference: need at least 2 readings")
        self.first = float(y[0])
        self.last = float(y[-1])
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        z = np.empty_like(y)
        z[0] = np.nan
        z[1:] = np.diff(y)
        return z

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64).copy()
        z[0] = 0.0
        return self.first + np.cumsum(z)

    def transform_one(self, y: float) -> float:
        z = float(y) - self.last
        self.last = float(y)
        return z

    def inverse_forecast(self, z_hat: np.ndarray) -> np.ndarray:
        return self.last + np.cumsum(np.asarray(z_hat, dtype=np.float64))

    def transform_block(self, y: np.ndarray) -> tuple[np.ndarray, Any]:
        y = np.asarray(y, dtype=np.float64)
        z = np.diff(y, prepend=self.last)
        if y.size:
            self.last = float(y[-1])
        return z, y  # the level after each reading

    def inverse_block(self, z_hat: np.ndarray, context: Any) -> np.ndarray:
        return context[:, None] + np.cumsum(np.asarray(z_hat, dtype=np.float64), axis=1)

    def forecast_scale(self, horizon: int) -> np.ndarray:
        # Errors accumulate through the cumulative sum: the h-step error is the sum of
        # h one-step errors; sqrt(h) is the scale for independent errors.
        return np.sqrt(np.arange(1, horizon + 1, dtype=np.float64))

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "first": self.first, "last": self.last}


class Deseasonalize(Transform):
    """Subtract a seasonal profile of period ``m`` estimated by STL on the history.

    ``profile[k]`` is the average seasonal component at phase ``k`` over the last
    ``FIT_PERIODS`` seasons of the fitted history (statsmodels' STL at fit time;
    numpy only afterwards).
    ``phase`` is the phase of the *next* reading.  The profile is frozen after
    ``fit``; refit the chain (a new model version) when the season changes.
    """

    kind = "deseasonalize"
    #: Number of most recent seasons the profile is estimated on.
    FIT_PERIODS: ClassVar[int] = 10

    def __init__(
        self,
        period: int,
        profile: list[float] | None = None,
        phase: int = 0,
        start_phase: int = 0,
    ) -> None:
        if int(period) < 2:
            raise ConfigError(f"deseasonalize: period must be >= 2, got {period}")
        self.period = int(period)
        self.profile = None if profile is None else np.asarray(profile, dtype=np.float64)
        self.phase = int(phase)
        self.start_phase = int(start_phase)

    def fit(self, y: np.ndarray) -> Deseasonalize:
        from tsforge.optional import require

        y = _finite_or_error(y, "deseasonalize")
        m = self.period
        if y.size < 2 * m + 1:
            raise DataError(
                f"deseasonalize: need at least two full periods ({2 * m + 1} readings) "
                f"to estimate a season of {m}, got {y.size}"
            )
        stl_mod = require("statsmodels.tsa.seasonal", "seasonal decomposition (STL)")
        # The profile is estimated on the most recent FIT_PERIODS seasons: recent
        # behaviour matters most, and STL's cost grows quickly with length.
        start = max(0, y.size - self.FIT_PERIODS * m)
        seasonal = stl_mod.STL(y[start:], period=m).fit().seasonal
        phases = (start + np.arange(y.size - start)) % m
        profile = np.bincount(phases, weights=seasonal, minlength=m) / np.bincount(
            phases, minlength=m
        )
        self.profile = profile - profile.mean()
        self.start_phase = 0
        self.phase = y.size % m
        return self

    def _phases(self, n: int) -> np.ndarray:
        return (self.start_phase + np.arange(n)) % self.period

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return y - self.profile[self._phases(y.size)]

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return z + self.profile[self._phases(z.size)]

    def transform_one(self, y: float) -> float:
        z = float(y) - self.profile[self.phase]
        self.phase = (self.phase + 1) % self.period
        return z

    def inverse_forecast(self, z_hat: np.ndarray) -> np.ndarray:
        z_hat = np.asarray(z_hat, dtype=np.float64)
        idx = (self.phase + np.arange(z_hat.size)) % self.period
        return z_hat + self.profile[idx]

    def transform_block(self, y: np.ndarray) -> tuple[np.ndarray, Any]:
        y = np.asarray(y, dtype=np.float64)
        phases = (self.phase + np.arange(y.size)) % self.period
        self.phase = int((self.phase + y.size) % self.period)
        return y - self.profile[phases], phases + 1  # the phase after each reading

    def inverse_block(self, z_hat: np.ndarray, context: Any) -> np.ndarray:
        z_hat = np.asarray(z_hat, dtype=np.float64)
        idx = (context[:, None] + np.arange(z_hat.shape[1])) % self.period
        return z_hat + self.profile[idx]

    def to_spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "period": self.period,
            "profile": None if self.profile is None else self.profile.tolist(),
            "phase": self.phase,
            "start_phase": self.start_phase,
        }

    def describe(self) -> str:
        return f"deseasonalize(period={self.period})"


TRANSFORMS: dict[str, type[Transform]] = {
    Scale.kind: Scale,
    Difference.kind: Difference,
    Deseasonalize.kind: Deseasonalize,
}


def transform_from_spec(spec: dict[str, Any]) -> Transform:
    """Build one transform from its spec dict (``{"kind": ..., **params}``)."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in TRANSFORMS:
        raise ConfigError(
            f"unknown transform kind {kind!r}; valid kinds: {', '.join(TRANSFORMS)}"
        )
    try:
        return TRANSFORMS[kind](**spec)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for transform '{kind}': {exc}") from None


class TransformChain:
    """Transforms applied in order; inverted in reverse order.

    >>> import numpy as np
    >>> y = np.cumsum(np.ones(10)) + 5.0
    >>> chain = TransformChain.from_spec([{"kind": "difference"}, {"kind": "scale"}]).fit(y)
    >>> bool(np.allclose(chain.inverse_transform(chain.transform(y)), y))
    True
    """

    def __init__(self, steps: list[Transform] | None = None) -> None:
        self.steps = list(steps or [])

    @classmethod
    def from_spec(cls, spec: list[dict[str, Any]] | None) -> TransformChain:
        return cls([transform_from_spec(s) for s in (spec or [])])

    def to_spec(self) -> list[dict[str, Any]]:
        return [s.to_spec() for s in self.steps]

    def fit(self, y: np.ndarray) -> TransformChain:
        """Fit each step on the output of the previous one (leading NaN are skipped)."""
        z = np.asarray(y, dtype=np.float64)
        for step in self.steps:
            lead = _leading_nan(z)
            step.fit(z[lead:])
            if isinstance(step, Deseasonalize):
                step.start_phase = (-lead) % step.period
                step.phase = (step.start_phase + z.size - lead) % step.period
            out = np.full_like(z, np.nan)
            out[lead:] = step.transform(z[lead:])
            z = out
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        z = np.asarray(y, dtype=np.float64)
        for step in self.steps:
            lead = _leading_nan(z)
            out = np.full_like(z, np.nan)
            out[lead:] = step.transform(z[lead:])
            z = out
        return z

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Invert :meth:`transform` on the fitted history."""
        leads = []
        probe = np.zeros(np.asarray(z).shape[0])
        for step in self.steps:
            lead = _leading_nan(probe)
            leads.append(lead)
            if isinstance(step, Difference):
                probe[lead] = np.nan
        y = np.asarray(z, dtype=np.float64).copy()
        for step, lead in zip(reversed(self.steps), reversed(leads)):
            out = np.full_like(y, np.nan)
            out[lead:] = step.inverse_transform(y[lead:])
            y = out
        return y

    def transform_one(self, y: float) -> float:
        z = float(y)
        for step in self.steps:
            z = step.transform_one(z)
        return z

    def inverse_forecast(self, z_hat: np.ndarray) -> np.ndarray:
        y = np.asarray(z_hat, dtype=np.float64)
        for step in reversed(self.steps):
            y = step.inverse_forecast(y)
        return y

    def transform_block(self, y: np.ndarray, *, anchor: bool = False
                        ) -> tuple[np.ndarray, list[Any]]:
        """:meth:`transform_one` over readings ``y`` ``(T,)`` with array arithmetic.

        ``anchor`` starts every difference at the first reading (its first
        difference is 0), as for a sensor's very first reading.  Returns the
        transformed values and the context :meth:`inverse_block` needs.
        """
        z = np.asarray(y, dtype=np.float64)
        contexts = []
        for step in self.steps:
            if anchor and isinstance(step, Difference) and z.size:
                step.last = float(z[0])
            z, ctx = step.transform_block(z)
            contexts.append(ctx)
        return z, contexts

    def inverse_block(self, z_hat: np.ndarray, contexts: list[Any]) -> np.ndarray:
        """Invert forecasts ``(T, H)`` issued after each reading of a :meth:`transform_block`."""
        y = np.asarray(z_hat, dtype=np.float64)
        for step, ctx in zip(reversed(self.steps), reversed(contexts)):
            y = step.inverse_block(y, ctx)
        return y

    def forecast_scale(self, horizon: int) -> np.ndarray:
        """Per-step factor from transformed-unit errors to engineering-unit errors."""
        scale = np.ones(horizon)
        for step in self.steps:
            scale = scale * step.forecast_scale(horizon)
        return scale

    def copy(self) -> TransformChain:
        return copy.deepcopy(self)

    def describe(self) -> str:
        return " -> ".join(s.describe() for s in self.steps) or "identity"

    def __len__(self) -> int:
        return len(self.steps)


def _leading_nan(z: np.ndarray) -> int:
    finite = np.flatnonzero(~np.isnan(z))
    return int(finite[0]) if finite.size else int(z.size)
