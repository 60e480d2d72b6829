"""One online learner serving S sensors: state of shape ``(S, ...)``, one step for all.

Every online family (``rtrl``, ``uoro``, ``esn``, ``ptncn``) keeps its state in a
:class:`SensorBatch`.  The single-sensor forecaster is the same object with
``S = 1``, so there is one implementation of each learning rule, and row ``s`` of
a batch learns exactly what a single-sensor learner fed sensor ``s``'s readings
learns (``tests/test_online_learners.py`` checks it).

The batch interface, for a serving engine::

    batch = family_batch.from_models([model_a, model_b, ...])   # fitted forecasters
    batch.learn_many(values)          # values (S,) [, covariates (S, k)]: learn, then advance
    batch.update_many(values)         # advance the state without learning
    batch.forecast_many()             # (S, H) forecasts of the next H readings
    batch.state_dict()                # {name: (S, ...)} plain arrays
    batch.sensor_state(s)             # sensor s's state, as its forecaster's state_dict()
    batch.load_sensor_state(s, state) # restore one sensor (checkpoint, partition move)

Sensors step together: ``learn_many`` takes one reading per sensor.  The numpy
work is batched products over the sensor axis, so the Python cost of one step is
paid once for all S sensors.  BLAS is pinned to one thread inside
``learn_many``/``update_many`` (threadpoolctl, when installed): the products are
small and many, and a multi-threaded BLAS on a loaded machine turns microseconds
into milliseconds.  Parallelism belongs across sensors (processes or partitions).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from tsforge.errors import DataError


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # the edge install is numpy only
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with BLAS limited to one thread (no-op without threadpoolctl)."""
    ctl = _controller()
    if ctl is None:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield


def adopt_residual(model: Any, state: dict[str, np.ndarray]) -> None:
    """Make ``model.config.residual`` say what the weights in ``state`` mean.

    A forecaster's state records whether its readout forecasts the change
    (``residual``).  A state saved before the option existed has no record and holds a
    level readout, so it loads as ``residual=False`` whatever the configuration says.
    """
    stored = bool(np.asarray(state["residual"])) if "residual" in state else False
    if stored != model.config.residual:
        model.config = dataclasses.replace(model.config, residual=stored)


class SensorBatch:
    """Base of the per-family batch learners.

    Subclasses set ``family`` and implement ``_arrays`` (the live state arrays, each
    with the sensor axis first), ``_learn(rows)``, ``_advance(rows)`` and
    ``forecast_many``.  ``rows`` is ``(S, d)``: the target then the covariates.
    """

    family: ClassVar[str] = ""

    def __init__(self, config: Any, d: int, sensors: int) -> None:
        self.config, self.d, self.sensors = config, int(d), int(sensors)

    # ------------------------------------------------------------ family hooks
    def _arrays(self) -> dict[str, np.ndarray]:
        raise TypeError(f"{type(self).__name__} must define _arrays")

    def _learn(self, rows: np.ndarray) -> None:
        raise TypeError(f"{type(self).__name__} must define _learn")

    def _advance(self, rows: np.ndarray) -> None:
        raise TypeError(f"{type(self).__name__} must define _advance")

    def forecast_many(self) -> np.ndarray:
        """Forecasts ``(S, H)`` of the next H readings of every sensor."""
        raise TypeError(f"{type(self).__name__} must define forecast_many")

    # ------------------------------------------------------------ streaming
    def rows(self, values: Any, covariates: Any = None) -> np.ndarray:
        """Check and stack one reading per sensor into ``(S, d)`` rows."""
        y = np.asarray(values, dtype=np.float64).reshape(-1)
        if y.shape[0] != self.sensors:
            raise DataError(f"{self.family} batch serves {self.sensors} sensors, got "
                            f"{y.shape[0]} readings")
        if self.d == 1:
            rows = y[:, None]
        elif covariates is None:
            raise DataError(f"{self.family} batch was fitted with {self.d - 1} covariate(s): "
                            f"pass covariates of shape ({self.sensors}, {self.d - 1})")
        else:
            X = np.asarray(covariates, dtype=np.float64).reshape(self.sensors, self.d - 1)
            rows = np.column_stack([y, X])
        if not np.all(np.isfinite(rows)):
            bad = np.flatnonzero(~np.all(np.isfinite(rows), axis=1))
            raise DataError(f"model '{self.family}' got non-finite readings for sensors "
                            f"{bad.tolist()[:10]}; wrap it in a Pipeline with a nonfinite "
                            "policy")
        return rows

    def learn_many(self, values: Any, covariates: Any = None) -> None:
        """Learn from one reading per sensor, then advance every state past it."""
        rows = self.rows(values, covariates)
        with one_blas_thread():
            self._learn(rows)
            self._advance(rows)

    def update_many(self, values: Any, covariates: Any = None) -> None:
        """Advance every state past one reading per sensor, without learning."""
        rows = self.rows(values, covariates)
        with one_blas_thread():
            self._advance(rows)

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every state array, sensor axis first (copies)."""
        return {k: v.copy() for k, v in self._arrays().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` (same family, configuration and number of sensors)."""
        for key, arr in self._arrays().items():
            if key in state:
                arr[...] = state[key]

    def sensor_state(self, s: int) -> dict[str, np.ndarray]:
        """Sensor ``s``'s state, keyed and shaped as its forecaster's ``state_dict``
        (with ``residual``: whether the readout forecasts the change)."""
        out = {k: np.array(v[s]) for k, v in self._arrays().items()}
        if hasattr(self.config, "residual"):
            out["residual"] = np.array(self.config.residual)
        return out

    def load_sensor_state(self, s: int, state: dict[str, np.ndarray]) -> None:
        """Restore sensor ``s`` from a single-sensor ``state_dict`` (missing keys keep
        their initial values, so states saved before a key existed still load)."""
        for key, arr in self._arrays().items():
            if key in state:
                arr[s] = state[key]

    def stream_states(self) -> np.ndarray:
        """Every sensor's exported-step state ``(S, *state)`` (the forecaster's
        ``stream_state``): the recurrent state ``h`` unless a family says otherwise."""
        return np.array(self._arrays()["h"])

    # ------------------------------------------------------------ subsets of sensors
    def take(self, pos: np.ndarray, into: SensorBatch | None = None) -> SensorBatch:
        """Sensors ``pos`` as a batch of their own (``into``, a batch of ``len(pos)``
        sensors to reuse, or a new one): learn on it, then :meth:`put` it back."""
        if into is None:
            into = type(self)(self.config, self.d, len(pos))
        mine = self._arrays()
        for key, arr in into._arrays().items():  # gathered straight into its arrays
            np.take(mine[key], pos, axis=0, out=arr)
        into.load_state_dict({})  # let a family drop what it cached about the old rows
        return into

    def put(self, pos: np.ndarray, sub: SensorBatch) -> None:
        """Write the first ``len(pos)`` rows of ``sub`` (from :meth:`take`) back into
        sensors ``pos``."""
        mine, k = self._arrays(), pos.shape[0]
        for key, arr in sub._arrays().items():
            mine[key][pos] = arr[:k]

    @classmethod
    def from_models(cls, models: Sequence[Any]) -> SensorBatch:
        """One batch serving the fitted single-sensor forecasters ``models`` (same family
        and configuration), sensor ``s`` starting from ``models[s]``'s state."""
        first = models[0]
        for m in models:
            if type(m) is not type(first) or m.config != first.config:
                raise DataError("a sensor batch needs forecasters of one family and one "
                                "configuration")
        batch = cls(first.config, 1 + (first.n_covariates_ or 0), len(models))
        for s, m in enumerate(models):
            batch.load_sensor_state(s, m.state_dict())
        return batch
