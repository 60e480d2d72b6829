"""One online learner serving many sensors, stuck sensors, and forecasts of the change.

- A batch of S sensors learns exactly what S single-sensor learners learn.
- A sensor stuck at one value for 2,000 readings does not wreck the learner: the error
  on the readings after it stays within 2x of the error without the stuck stretch
  (the ESN's RLS covariance used to wind up to 5e7 and lose positive definiteness).
- ``residual`` learners forecast the last reading plus a learned change.
"""

from __future__ import annotations

import numpy as np
import pytest
from mutants import mutated

from tsforge.errors import DataError
from tsforge.models import create

FAMILIES = [("rtrl", {"cell": "rnn"}), ("rtrl", {"cell": "gru"}), ("uoro", {"cell": "rnn"}),
            ("uoro", {"cell": "gru", "n_draws": 2}), ("esn", {}), ("ptncn", {})]


def series(seed: int, length: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return np.sin(2 * np.pi * t / (20 + 3 * seed)) + 0.2 * rng.standard_normal(length)


def small(name: str, params: dict) -> dict:
    out = {"reservoir": 12, "washout": 10} if name == "esn" else {"hidden": 5,
                                                                   "fit_readings": 100}
    return {**out, **params, "horizon": 3}


@pytest.mark.parametrize(("name", "params"), FAMILIES)
def test_batch_rows_equal_single_sensor_learners(name, params):
    streams = [series(s) for s in range(3)]
    singles = [create(name, **small(name, params)).fit(z[:200]) for z in streams]
    batch = type(singles[0].batch_).from_models(singles)
    for t in range(200, 260):
        values = np.array([z[t] for z in streams])
        batch.learn_many(values)
        for model, value in zip(singles, values):
            model.learn_one(value)
        expected = np.array([m.forecast().mean for m in singles])
        np.testing.assert_allclose(batch.forecast_many(), expected, rtol=1e-9, atol=1e-12)
    for s, model in enumerate(singles):
        state = batch.sensor_state(s)
        for key, value in model.state_dict().items():
            np.testing.assert_allclose(state[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
    # a state without the residual record (saved before it existed) loads as a level readout
    old = {k: v for k, v in singles[0].state_dict().items() if k != "residual"}
    reloaded = create(name, **small(name, params))
    reloaded.n_covariates_ = 0
    reloaded.load_state_dict(old)
    assert reloaded.config.residual is False
    # a sensor restored from its single-sensor state continues exactly
    clone = type(batch).from_models(singles)
    clone.load_sensor_state(1, batch.sensor_state(1))
    batch.update_many(np.zeros(3))
    clone.update_many(np.zeros(3))
    np.testing.assert_allclose(clone.forecast_many()[1], batch.forecast_many()[1], rtol=1e-12)


def test_batch_checks_its_readings():
    models = [create("esn", **small("esn", {})).fit(series(s)) for s in range(2)]
    batch = type(models[0].batch_).from_models(models)
    with pytest.raises(DataError, match="2 sensors"):
        batch.learn_many([1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="sensors \\[1\\]"):
        batch.learn_many([1.0, np.nan])
    with pytest.raises(DataError, match="one configuration"):
        type(batch).from_models([models[0], create("esn", reservoir=13).fit(series(0))])


# ---------------------------------------------------------------------- stuck sensor
STUCK = 2000


def stuck_errors(name: str, stuck: int, **params) -> tuple[np.ndarray, object]:
    """Errors on 50 readings of a seasonal stream after ``stuck`` identical readings."""
    rng = np.random.default_rng(0)
    t = np.arange(1100)
    z = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(t.size)
    params.update({"reservoir": 50} if name == "esn" else {"fit_readings": 500})
    model = create(name, horizon=1, **params).fit(z[:600])
    for value in z[600:1000]:
        model.learn_one(value)
    for _ in range(stuck):
        model.learn_one(z[999])
    errors = []
    for value in z[1000:1050]:
        errors.append(abs(model.forecast().mean[0] - value))
        model.learn_one(value)
    return np.array(errors), model


def rls_bound(model) -> float:
    """The largest eigenvalue P can reach: ``(1 - λ^m) / (r λ^(m-1))``, ``r = (1-λ) δ m``."""
    c = model.config
    lam, m = c.forgetting, c.reservoir + 1
    r = (1 - lam) * c.ridge * m
    return (1 - lam**m) / (r * lam ** (m - 1))


@pytest.mark.parametrize("name", ["rtrl", "uoro", "esn", "ptncn"])
def test_stuck_sensor_does_not_wreck_the_learner(name):
    clean, _ = stuck_errors(name, 0)
    after, model = stuck_errors(name, STUCK)
    assert np.isfinite(after).all()
    assert after.mean() <= 2.0 * clean.mean(), (clean.mean(), after.mean())
    if name == "esn":  # the RLS covariance stays bounded and positive definite
        eig = np.linalg.eigvalsh(model.P_[0])
        assert eig.min() > 0 and eig.max() <= rls_bound(model) * (1 + 1e-6), eig.max()


def test_esn_with_short_memory_stays_bounded_on_a_stuck_sensor():
    """λ = 0.99 (memory ~100 readings): plain RLS winds up to λ_max(P) = 4e12 and errs 57x
    more after 2,000 stuck readings; bounded RLS keeps P below its bound (126 <= 130) and
    errs 2.0x more: with that memory the stretch erases what the readout had learned."""
    clean, _ = stuck_errors("esn", 0, forgetting=0.99)
    after, model = stuck_errors("esn", STUCK, forgetting=0.99)
    eig = np.linalg.eigvalsh(model.P_[0])
    assert eig.min() > 0 and eig.max() <= rls_bound(model) * (1 + 1e-6), eig.max()
    assert after.mean() <= 3.0 * clean.mean(), (clean.mean(), after.mean())


def test_mutation_rls_without_regulariser_winds_up_on_a_stuck_sensor(monkeypatch):
    """Plain forgetting RLS (no pseudo-observations) fails the short-memory test above."""
    from tsforge.models.online import esn

    clone = mutated(esn, "    if r > 0:  # the regulariser", "    if False:  # the regulariser")
    monkeypatch.setattr(esn, "rls_step", clone.rls_step)
    with pytest.raises(AssertionError):
        test_esn_with_short_memory_stays_bounded_on_a_stuck_sensor()


# ---------------------------------------------------------------------- residual
@pytest.mark.parametrize("name", ["rtrl", "uoro", "esn", "ptncn"])
def test_residual_forecast_carries_the_last_reading(name):
    """On a random walk the best h=1 forecast is the last reading: residual learners
    start there and stay close to naive; level learners do not start there."""
    rng = np.random.default_rng(5)
    z = 20.0 + np.cumsum(rng.standard_normal(1500))
    params = {} if name == "esn" else {"fit_readings": 300}
    model = create(name, horizon=1, **params).fit(z[:500])
    errors, naive = [], []
    for t in range(500, len(z)):
        errors.append(abs(model.forecast().mean[0] - z[t]))
        naive.append(abs(z[t - 1] - z[t]))
        model.learn_one(z[t])
    assert np.mean(errors) < 1.1 * np.mean(naive), (np.mean(errors), np.mean(naive))
    if name != "ptncn":  # the readout adds its change to the last reading
        level = create(name, horizon=1, **params, residual=False)
        level.n_covariates_ = 0
        state = {k: v for k, v in model.state_dict().items() if k != "residual"}
        level.load_state_dict(state)  # same weights; no record: loads as a level readout
        assert level.config.residual is False
        assert abs(model.forecast().mean[0] - level.forecast().mean[0] - z[-1]) < 1e-9
