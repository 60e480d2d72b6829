"""The engine's vectorised online stage serves the numbers of per-sensor learners.

:class:`BatchLearnerStage` (one batch learner for every served sensor) against
:class:`LearnerStage` (one learner object per sensor) on the same stream: time steps
with a random subset of the sensors present, in random order, some readings imputed
(advance without learning), with a covariate.  Forecasts and exported-step states
must agree to rtol 1e-6 for every online family.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tsforge.engine.online import BatchLearnerStage, LearnerStage
from tsforge.models import create

FAMILIES = [("rtrl", {"cell": "rnn"}), ("uoro", {"cell": "gru", "n_draws": 2}), ("esn", {}),
            ("ptncn", {})]


def small(name: str, params: dict) -> dict:
    out = {"reservoir": 12, "washout": 10} if name == "esn" else {"hidden": 5,
                                                                   "fit_readings": 100}
    return {**out, **params, "horizon": 3}


def stream(seed: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    x = np.cos(2 * np.pi * t / 17)[:, None]
    return np.sin(2 * np.pi * t / (20 + 3 * seed)) + 0.3 * x[:, 0] \
        + 0.2 * rng.standard_normal(length), x


@pytest.mark.parametrize(("name", "params"), FAMILIES)
def test_batch_stage_equals_per_sensor_learners(name, params):
    engine_ids = [7, 2, 5, 11]  # engine sensor indices, not in order
    data = {i: stream(k, 260) for k, i in enumerate(engine_ids)}
    learners = {i: create(name, **small(name, params)).fit(data[i][0][:200], data[i][1][:200])
                for i in engine_ids}
    per_sensor = LearnerStage({i: copy.deepcopy(m) for i, m in learners.items()})
    batched = BatchLearnerStage.from_learners(learners)
    rng = np.random.default_rng(0)
    t = dict.fromkeys(engine_ids, 200)
    subsets = 0
    for step in range(60):
        present = rng.permutation(engine_ids)[: 1 + step % 4]  # 1..4 sensors, any order
        subsets += len(present) < len(engine_ids)
        rows = np.asarray(present, dtype=np.intp)
        z = np.array([data[i][0][t[i]] for i in present])
        x = np.array([data[i][1][t[i]] for i in present])
        imputed = rng.random(len(present)) < 0.2
        fa, sa = per_sensor.step(rows, z, x, imputed)
        fb, sb = batched.step(rows, z, x, imputed)
        np.testing.assert_allclose(fb, fa, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(sb, sa, rtol=1e-6, atol=1e-9)
        for i in present:
            t[i] += 1
    assert subsets > 20
    assert batched.learned == per_sensor.learned > 0
    for s, i in enumerate(batched.sensors):  # the stored per-sensor state agrees too
        mine, ref = batched.batch.sensor_state(s), per_sensor.learners[i].state_dict()
        for key, value in ref.items():
            np.testing.assert_allclose(mine[key], value, rtol=1e-6, atol=1e-9, err_msg=key)


def test_lone_learner_is_served_in_place():
    """The edge box's one learner keeps learning as an object (write-back reads it)."""
    model = create("esn", **small("esn", {})).fit(stream(0, 200)[0])
    before = model.state_dict()["W_out"].copy()
    stage = BatchLearnerStage.from_learners({3: model})
    for k in range(5):
        stage.step(np.array([3]), np.array([0.1 * k]), np.zeros((1, 0)), np.array([False]))
    assert stage.batch is model.batch_
    assert not np.allclose(model.state_dict()["W_out"], before)
