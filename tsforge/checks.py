"""Conformance checks every registered forecaster must pass.

``tests/test_conformance.py`` runs each check over every name in the model
registry, so a new family gets the whole suite by registering itself.  A check
takes a registry name, builds the model with its :meth:`Forecaster.test_params`
and raises ``AssertionError`` (with a message naming the rule) on failure.
Each check is named after the rule it enforces.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import DataError
from tsforge.models.base import Forecaster
from tsforge.models.registry import create, model_class
from tsforge.models.transformed import TransformedForecaster

HORIZON = 3


def synthetic_series(n: int = 600, n_covariates: int = 0, seed: int = 0) -> tuple[np.ndarray,
                                                                                     np.ndarray]:
    """An AR(2) process plus a period-12 sine, with covariates that lead the target."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n + 2)
    y = np.zeros(n + 2)
    for t in range(2, n + 2):
        y[t] = 0.6 * y[t - 1] - 0.2 * y[t - 2] + 0.5 * e[t]
    y = y[2:] + np.sin(2 * np.pi * np.arange(n) / 12) + 10.0
    X = np.column_stack([np.roll(y, -1) + rng.normal(0, 0.1, n) for _ in range(n_covariates)]
                        ) if n_covariates else np.zeros((n, 0))
    return y, X


def build(name: str, **overrides: Any) -> Forecaster:
    """The registered model ``name`` with its test parameters and the suite's horizon."""
    params = {"horizon": HORIZON, **model_class(name).test_params(), **overrides}
    return create(name, **params)


def _fitted(name: str, n_covariates: int = 0, **overrides: Any) -> tuple[Forecaster, np.ndarray,
                                                                         np.ndarray]:
    y, X = synthetic_series(n_covariates=n_covariates)
    model = build(name, **overrides)
    model.fit(y[:400] - 10.0, X[:400])
    return model, y[400:] - 10.0, X[400:]


def _digest(model: Forecaster) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes())
    return h.hexdigest()


def check_forecast_has_horizon_shape(name: str) -> None:
    for n_cov in (0, 2):
        model, y, X = _fitted(name, n_covariates=n_cov)
        f = model.forecast()
        assert f.mean.shape == (HORIZON,), f"{name}: forecast shape {f.mean.shape}"
        assert np.all(np.isfinite(f.mean)), f"{name}: forecast not finite"
        for t in range(20):
            model.learn_one(y[t], X[t])
        assert model.forecast().mean.shape == (HORIZON,)


def check_forecast_does_not_change_state(name: str) -> None:
    model, _y, _X = _fitted(name)
    before = _digest(model)
    first = model.forecast().mean.copy()
    second = model.forecast().mean
    assert _digest(model) == before, f"{name}: forecast() changed the model state"
    np.testing.assert_array_equal(first, second, err_msg=f"{name}: forecast() not repeatable")


def check_save_load_resumes_exactly(name: str) -> None:
    model, y, X = _fitted(name, n_covariates=1)
    for t in range(30):
        model.learn_one(y[t], X[t])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        model.save(path)
        clone = Forecaster.load(path)
    np.testing.assert_array_equal(model.forecast().mean, clone.forecast().mean,
                                  err_msg=f"{name}: loaded model forecasts differently")
    for t in range(30, 80):
        model.learn_one(y[t], X[t])
        clone.learn_one(y[t], X[t])
        np.testing.assert_array_equal(
            model.forecast().mean, clone.forecast().mean,
            err_msg=f"{name}: a restarted stream diverged from the uninterrupted one at step {t}")


def check_seeded_fit_is_deterministic(name: str) -> None:
    a, _, _ = _fitted(name, seed=7)
    b, _, _ = _fitted(name, seed=7)
    np.testing.assert_array_equal(a.forecast().mean, b.forecast().mean,
                                  err_msg=f"{name}: two fits with the same seed differ")


def check_covariate_count_is_enforced(name: str) -> None:
    model, y, X = _fitted(name, n_covariates=2)
    try:
        model.learn_one(y[0], X[0, :1])
    except DataError:
        return
    raise AssertionError(f"{name}: wrong number of covariates was accepted")


def check_nonfinite_readings_are_imputed_not_learned(name: str) -> None:
    y, X = synthetic_series(n_covariates=1)
    model = TransformedForecaster(build(name), [{"kind": "scale"}]).fit(y[:400], X[:400])
    stream = y[400:460].copy()
    stream[[5, 6, 20]] = [np.nan, np.inf, -np.inf]
    xs = X[400:460].copy()
    xs[30, 0] = np.nan
    for t in range(len(stream)):
        model.learn_one(stream[t], xs[t])
        assert np.all(np.isfinite(model.forecast().mean)), f"{name}: forecast poisoned at {t}"
    for key, value in model.model.state_dict().items():
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            assert np.all(np.isfinite(arr)), f"{name}: state '{key}' became non-finite"
    assert model.n_imputed_ == 4, f"{name}: expected 4 imputed readings, got {model.n_imputed_}"


def check_online_learning_changes_parameters(name: str) -> None:
    model, y, X = _fitted(name)
    if not model.online:
        return
    before = _digest(model)
    for t in range(10):
        model.learn_one(y[t], X[t])
    after_learn = _digest(model)
    assert after_learn != before, f"{name}: online model did not change while learning"


def check_onnx_matches_library_stream(name: str) -> None:
    cls = model_class(name)
    if not cls.exportable:
        raise AssertionError(f"{name}: not exportable (declare an opt-out in the test suite)")
    from tsforge.export import export_onnx
    from tsforge.runtime import StreamingRuntime

    y, X = synthetic_series(n_covariates=1)
    wrapped = TransformedForecaster(build(name), [{"kind": "difference"}, {"kind": "scale"}])
    wrapped.fit(y[:400], X[:400])
    frozen = not wrapped.model.online
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        export_onnx(wrapped, path, sensor="s1", parity_steps=300)
        runtime = StreamingRuntime(path)
        worst = 0.0
        for t in range(400, 600):
            out = runtime.push("s1", y[t], X[t])
            if frozen:
                wrapped.learn_one(y[t], X[t])
            else:
                wrapped.update(y[t], X[t])
            ref = wrapped.forecast().mean
            worst = max(worst, float(np.max(np.abs(out - ref) / (1.0 + np.abs(ref)))))
    assert worst < 1e-4, f"{name}: ONNX runtime differs from the library by {worst:.2e}"


CHECKS: list[Callable[[str], None]] = [
    check_forecast_has_horizon_shape,
    check_forecast_does_not_change_state,
    check_save_load_resumes_exactly,
    check_seeded_fit_is_deterministic,
    check_covariate_count_is_enforced,
    check_nonfinite_readings_are_imputed_not_learned,
    check_online_learning_changes_parameters,
    check_onnx_matches_library_stream,
]
