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

    def __init__(self, learners: dict[int, Any]) -> None:
        self.learners = learners
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
            states.append(learner.stream_state())
        return np.asarray(fc), np.asarray(states)
