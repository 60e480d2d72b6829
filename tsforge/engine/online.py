"""The online-learner stage of the engine: the one interface learners are called through.

A model group may have online learners that serve (and learn for) some of its
sensors instead of the exported ONNX step.  The engine calls them through
:class:`OnlineStage`, batch in, batch out, after the ONNX call of a time step:

- ``sensors``: ``(m,)`` engine sensor indices the stage serves;
- ``step(rows, z, x, imputed)``: for the served sensors present in this time step
  (``rows`` are their engine indices), their transformed readings ``z`` ``(k,)``,
  scaled covariates ``x`` ``(k, C-1)`` and which readings were imputed ``(k,)``
  (an imputed reading advances the state without learning); returns the
  transformed forecasts ``(k, H)`` and the new stream states ``(k, *state_shape)``
  that replace the ONNX step's for those rows.

:class:`LearnerStage` adapts today's per-sensor learners (each with
``learn_one``/``update``/``forecast``/``stream_state``) to it, one Python call per
served reading.  Learners vectorised across sensors implement ``OnlineStage``
directly and replace this adapter; nothing else in the engine changes.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class OnlineStage(Protocol):
    sensors: np.ndarray

    def step(self, rows: np.ndarray, z: np.ndarray, x: np.ndarray, imputed: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]: ...


class LearnerStage:
    """Per-sensor learners behind the :class:`OnlineStage` interface.

    ``learners`` maps an engine sensor index to its learner.  ``learned`` counts
    the readings learned from (imputed ones are not).
    """

    def __init__(self, learners: dict[int, Any], *, stream: bool = True) -> None:
        self.learners = learners
        self.stream = stream  # False: learners without an exported step (states (k, 0))
        self.sensors = np.asarray(sorted(learners), dtype=np.intp)
        self.learned = 0

    def step(self, rows: np.ndarray, z: np.ndarray, x: np.ndarray, imputed: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        fc, states = [], []
        for i, zi, xi, imp in zip(rows.tolist(), z.tolist(), x, imputed.tolist()):
            learner = self.learners[i]
            if imp:
                learner.update(zi, xi)
            else:
                learner.learn_one(zi, xi)
                self.learned += 1
            fc.append(learner.forecast().mean)
            states.append(learner.stream_state() if self.stream else ())
        return np.asarray(fc), np.asarray(states).reshape(len(fc), -1 if self.stream else 0)


class BatchLearnerStage:
    """One vectorised learner (:class:`~tsforge.models.online.batch.SensorBatch`) for
    all the sensors it serves, behind the :class:`OnlineStage` interface.

    Row ``s`` of ``batch`` serves engine sensor ``sensors[s]``.  A time step makes
    one ``learn_many`` call for the rows present that were read, and one
    ``update_many`` call for those that were imputed.  When every served sensor is
    present the batch steps in place; otherwise the rows present are taken out as a
    batch of their own (:meth:`SensorBatch.take`), stepped, and put back: each
    sensor's rule depends only on its own state, so the numbers are those of a
    per-sensor learner (``tests/test_engine_online.py``).  Sub-batches are padded to
    a power of two and kept for reuse (building one costs more than stepping it).
    """

    def __init__(self, batch: Any, sensors: Any) -> None:
        self.batch = batch
        self.sensors = np.asarray(sensors, dtype=np.intp)
        if self.sensors.shape != (batch.sensors,):
            raise ValueError(f"a batch of {batch.sensors} sensors cannot serve "
                             f"{self.sensors.shape[0]} engine sensors")
        self._order = np.argsort(self.sensors, kind="stable")
        self._sorted = self.sensors[self._order]
        self._all = np.arange(batch.sensors)
        self._subs: dict[int, Any] = {}
        self.learned = 0

    @classmethod
    def from_learners(cls, learners: dict[int, Any]) -> BatchLearnerStage:
        """One batch for fitted single-sensor forecasters (one family and configuration)
        keyed by engine sensor index.  A lone learner is served through its own batch
        of one (``learner.batch_``), so the learner object keeps learning."""
        keys = sorted(learners)
        if len(keys) == 1:
            return cls(learners[keys[0]].batch_, keys)
        models = [learners[k] for k in keys]
        return cls(type(models[0].batch_).from_models(models), keys)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Batch rows of engine sensors ``rows`` (all served by this stage)."""
        return self._order[np.searchsorted(self._sorted, rows)]

    def step(self, rows: np.ndarray, z: np.ndarray, x: np.ndarray, imputed: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        pos = self.positions(rows)
        fc = np.empty((rows.shape[0], self.batch.config.horizon))
        read = ~imputed
        for mask, learn in ((read, True), (imputed, False)):
            if mask.all():
                fc[:] = self._run(pos, z, x, learn)
            elif mask.any():
                fc[mask] = self._run(pos[mask], z[mask], x[mask], learn)
        self.learned += int(read.sum())
        return fc, self.batch.stream_states()[pos]

    def _run(self, pos: np.ndarray, z: np.ndarray, x: np.ndarray, learn: bool) -> np.ndarray:
        """Learn (or only advance) sensors ``pos`` on ``z``; their forecasts ``(k, H)``."""
        cov = x if x.shape[1] else None
        if pos.shape[0] == self.batch.sensors:  # every sensor: step in place, batch order
            b = self.batch
            if np.array_equal(pos, self._all):
                (b.learn_many if learn else b.update_many)(z, cov)
                return b.forecast_many()
            zb = np.empty_like(z)
            zb[pos] = z
            xb = None
            if cov is not None:
                xb = np.empty_like(cov)
                xb[pos] = cov
            (b.learn_many if learn else b.update_many)(zb, xb)
            return b.forecast_many()[pos]
        # pad to a power of two with copies of the last row (computed, never written
        # back): sub-batches of log2(S) sizes are built once and reused
        k = pos.shape[0]
        size = min(1 << (k - 1).bit_length(), self.batch.sensors)
        if size > k:
            pos = np.concatenate([pos, np.repeat(pos[-1:], size - k)])
            z = np.concatenate([z, np.repeat(z[-1:], size - k)])
            if cov is not None:
                cov = np.concatenate([cov, np.repeat(cov[-1:], size - k, axis=0)])
        sub = self.batch.take(pos, self._subs.get(size))
        self._subs[size] = sub
        (sub.learn_many if learn else sub.update_many)(z, cov)
        self.batch.put(pos[:k], sub)
        return sub.forecast_many()[:k]


class LearnerStep:
    """The model step of a group whose online stage serves every sensor.

    :class:`~tsforge.engine.group.GroupEngine` runs transform, model step, online
    stage, inverse; with no exported model the step computes nothing (zeros that the
    stage overwrites for every row) and holds the stage's stream states, so the
    group keeps the engine's chain, imputation, conformal and checkpoint code.
    """

    def __init__(self, n_channels: int, horizon: int, state_shape: tuple[int, ...],
                 capacity: int = 16) -> None:
        self.C, self.H, self.shape = n_channels, horizon, tuple(state_shape)
        self.capacity = 0
        self.state = np.zeros((0, *self.shape), np.float32)
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        if capacity <= self.capacity:
            return
        state = np.zeros((capacity, *self.shape), np.float32)
        state[:self.state.shape[0]] = self.state
        self.state = state
        self.x = np.zeros((capacity, self.C), np.float32)
        self._zeros = np.zeros((capacity, self.H), np.float32)
        self.capacity = capacity

    def run(self, idx: np.ndarray | None, n: int) -> np.ndarray:
        return self._zeros[:n]

    def run_one(self, i: int) -> np.ndarray:
        raise TypeError("a learner group is served through its online stage "
                        "(GroupEngine.step_one takes the batch path when one is set)")


class LearnerArtifact:
    """What :class:`~tsforge.engine.group.GroupEngine` reads of an artifact, for a group
    served by online learners only (``meta``: its ``intervals`` entry, no chain
    template: every sensor is added with its own chain)."""

    session = None

    def __init__(self, horizon: int, state_shape: tuple[int, ...],
                 intervals: dict[str, Any] | None) -> None:
        self.horizon, self.n_channels, self.state_shape = horizon, 1, tuple(state_shape)
        self.meta: dict[str, Any] = {"transforms": [], "covariate_scales": []}
        if intervals is not None:
            self.meta["intervals"] = intervals

    def initial_state(self) -> np.ndarray:
        return np.zeros(self.state_shape, np.float32)

    exported_state = initial_state
