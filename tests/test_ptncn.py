"""P-TNCN: the local update rule against hand computation, and online learning on streams."""

from __future__ import annotations

import numpy as np
import pytest

from tsforge.errors import ConfigError
from tsforge.models import create
from tsforge.models.online import ptncn_core as core

# Weights of the hand-computed example (column notation, n = 2 units, d = 1 input, L = 2).
HAND = {
    "W1": [[0.5, -0.5]], "E1": [[0.2], [0.4]], "M1": [[1.0], [0.5]],
    "V1": [[0.5, 0.0], [0.0, 0.5]], "U1": [[0.0, 0.5], [0.5, 0.0]],
    "W2": [[0.5, 0.0], [0.0, -0.5]], "E2": [[0.2, 0.0], [0.0, 0.2]],
    "M2": [[0.5, 0.0], [0.0, 0.5]], "V2": [[0.5, 0.0], [0.0, 0.0]],
}
ORDER = ["W1", "E1", "M1", "V1", "U1", "W2", "E2", "M2", "V2"]


def loaded(weights: dict, y1, y2, x_prev, eps=None, **params):
    """A ptncn with fixed weights and state, restored through ``load_state_dict``.

    The hand-computed examples are in the paper's form: the output forecasts the row
    itself (``residual=False``).
    """
    params.setdefault("residual", False)
    model = create("ptncn", hidden=len(y1), layers=2, **params)
    model.n_covariates_ = len(x_prev) - 1
    n, d = len(y1), len(x_prev)
    theta = np.zeros(core.n_params(n, d, 2))
    for name, view in core.unpack(theta, n, d, 2).items():  # place each matrix in the layout
        if name in weights:
            view[...] = weights[name]
    model.load_state_dict({
        "theta": theta, "y": np.array([y1, y2], dtype=float),
        "x_prev": np.array(x_prev, dtype=float),
        "eps_prev": np.zeros((2, len(y1))) if eps is None else np.array(eps, dtype=float),
        "steps": np.array(0), "opt/v": np.zeros(theta.size), "opt/t": np.array(0)})
    return model


def step_updates(model, x: float) -> tuple[core.Inference, dict[str, np.ndarray]]:
    q = model._infer(model.y_, model.x_prev_, np.array([x]))
    flat = model.local_updates(q)
    return q, core.unpack(flat, model.config.hidden, 1, 2)


HAND_STATE = {"y1": [0.2, -0.2], "y2": [0.4, 0.0], "x_prev": [0.4]}


def test_update_rule_matches_hand_computed_example():
    """Worked by hand with hardtanh in its linear range, beta = gamma = 0.5, x_t = 0.6.

    a1 = V1 y1 + M1 x + U1 y2 = [0.1, -0.1] + [0.4, 0.2] + [0, 0.2] = [0.5, 0.3] = z1
    a2 = V2 y2 + M2 y1 = [0.2, 0] + [0.1, -0.1] = [0.3, -0.1] = z2
    mu0 = W1 z1 = 0.25 - 0.15 = 0.1;  e0 = 0.1 - 0.6 = -0.5
    mu1 = W2 z2 = [0.15, 0.05];  e1 = mu1 - z1 = [-0.35, -0.25]
    d2 = E2 e1 = [-0.07, -0.05];  d1 = E1 e0 - 0.5 e1 = [-0.1, -0.2] + [0.175, 0.125]
    y2 = a2 - 0.5 d2 = [0.335, -0.075];  y1 = a1 - 0.5 [0.075, -0.075] = [0.4625, 0.3375]
    eps1 = z1 - y1 = [0.0375, -0.0375];  eps2 = z2 - y2 = [-0.035, -0.025]
    """
    model = loaded(HAND, **HAND_STATE, activation="hardtanh", beta=0.5, gamma=0.5, clip=None)
    q, G = step_updates(model, 0.6)
    close = {"rtol": 0, "atol": 1e-15}
    np.testing.assert_allclose(q.mu[0], [0.1], **close)
    np.testing.assert_allclose(q.e[0], [-0.5], **close)
    np.testing.assert_allclose(q.e[1], [-0.35, -0.25], **close)
    np.testing.assert_allclose(q.y[0], [0.4625, 0.3375], **close)
    np.testing.assert_allclose(q.y[1], [0.335, -0.075], **close)
    np.testing.assert_allclose(q.eps[0], [0.0375, -0.0375], **close)
    np.testing.assert_allclose(q.eps[1], [-0.035, -0.025], **close)
    expected = {
        "W1": [[-0.25, -0.15]],  # e0 z1^T
        "E1": [[-0.25], [-0.15]],  # (dW1)^T
        "M1": [[0.015], [-0.015]],  # eps1 x_prev^T
        "V1": [[0.0075, -0.0075], [-0.0075, 0.0075]],  # eps1 y1_prev^T
        "U1": [[0.015, 0.0], [-0.015, 0.0]],  # eps1 y2_prev^T
        "W2": [[-0.105, 0.035], [-0.075, 0.025]],  # e1 z2^T
        "E2": [[-0.105, -0.075], [0.035, 0.025]],  # (dW2)^T
        "M2": [[-0.007, 0.007], [-0.005, 0.005]],  # eps2 y1_prev^T
        "V2": [[-0.014, 0.0], [-0.01, 0.0]],  # eps2 y2_prev^T
    }
    for name, value in expected.items():
        np.testing.assert_allclose(G[name], value, err_msg=name, **close)


def test_optimiser_applies_the_hand_computed_update():
    """First Nesterov step: v = g, theta -= lr (g + m v) = 0.1 * 1.5 * g."""
    model = loaded(HAND, **HAND_STATE, activation="hardtanh", beta=0.5, gamma=0.5, clip=None,
                   lr=0.1, lr_decay=0.0, momentum=0.5)
    before = model.theta_.copy()
    _, G = step_updates(model, 0.6)
    model.learn_one(0.6)
    after = core.unpack(model.theta_, 2, 1, 2)
    np.testing.assert_allclose(after["W1"], [[0.5375, -0.4775]], rtol=0, atol=1e-15)
    moved = core.unpack(model.theta_ - before, 2, 1, 2)
    for name in ORDER:
        np.testing.assert_allclose(moved[name], -0.15 * G[name], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.y_, [[0.4625, 0.3375], [0.335, -0.075]], atol=1e-15)


def test_temporal_error_rule_and_clipping_by_hand():
    """dE = -(eps_t - eps_{t-1}) e^T; each matrix's update clipped to its own norm."""
    eps_prev = [[0.0125, 0.0125], [0.0, 0.025]]
    model = loaded(HAND, **HAND_STATE, eps=eps_prev, activation="hardtanh", beta=0.5,
                   gamma=0.5, clip=None, error_rule="temporal")
    _, G = step_updates(model, 0.6)
    # eps1 - eps1_prev = [0.025, -0.05], e0 = -0.5
    np.testing.assert_allclose(G["E1"], [[0.0125], [-0.025]], rtol=0, atol=1e-15)
    # eps2 - eps2_prev = [-0.035, -0.05], e1 = [-0.35, -0.25]
    np.testing.assert_allclose(G["E2"], [[-0.01225, -0.00875], [-0.0175, -0.0125]],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(G["W1"], [[-0.25, -0.15]], rtol=0, atol=1e-15)

    clipped = loaded(HAND, **HAND_STATE, activation="hardtanh", beta=0.5, gamma=0.5, clip=0.2)
    _, C = step_updates(clipped, 0.6)
    # |dW1| = 0.5 * sqrt(0.34) > 0.2: scaled down; |dW2| = sqrt(0.0185) < 0.2: unchanged
    np.testing.assert_allclose(C["W1"], np.array([[-0.25, -0.15]]) * 0.2 / np.sqrt(0.085),
                               rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(C["E1"]), 0.2, rtol=1e-14)
    np.testing.assert_allclose(C["W2"], [[-0.105, 0.035], [-0.075, 0.025]], rtol=0, atol=1e-15)


def test_second_inference_step_takes_effect_by_hand():
    """K = 2 corrects again from the errors of the corrected states.

    s1 = [0.4625, 0.3375], s2 = [0.335, -0.075]:  e0 = W1 s1 - x = -0.5375,
    e1 = W2 s2 - s1 = [-0.295, -0.3];  d2 = [-0.059, -0.06];
    d1 = E1 e0 - 0.5 e1 = [-0.1075, -0.215] + [0.1475, 0.15] = [0.04, -0.065]
    y1 = s1 - 0.5 d1 = [0.4425, 0.37];  y2 = s2 - 0.5 d2 = [0.3645, -0.045]
    """
    model = loaded(HAND, **HAND_STATE, activation="hardtanh", beta=0.5, gamma=0.5, clip=None,
                   inference_steps=2)
    q, G = step_updates(model, 0.6)
    np.testing.assert_allclose(q.y[0], [0.4425, 0.37], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.y[1], [0.3645, -0.045], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.eps[0], [0.0575, -0.07], rtol=0, atol=1e-15)
    np.testing.assert_allclose(G["M1"], [[0.023], [-0.028]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(G["W1"], [[-0.25, -0.15]], rtol=0, atol=1e-15)  # forecast error


def test_tanh_step_and_forecast_match_plain_numpy():
    """Random weights, tanh, n = 3, two inference steps, 2-step forecast, written out here."""
    rng = np.random.default_rng(5)
    n, beta, gamma = 3, 0.3, 0.2
    w = {k: rng.normal(0, 0.6, s) for k, s in [
        ("W1", (1, n)), ("E1", (n, 1)), ("M1", (n, 1)), ("V1", (n, n)), ("U1", (n, n)),
        ("W2", (n, n)), ("E2", (n, n)), ("M2", (n, n)), ("V2", (n, n))]}
    y1, y2, xp, x = rng.normal(0, 0.5, n), rng.normal(0, 0.5, n), np.array([0.3]), 0.7
    model = loaded(w, y1, y2, xp, activation="tanh", beta=beta, gamma=gamma, clip=None,
                   inference_steps=2, horizon=2)

    def reference_step(y1, y2, xp, x):
        a1 = w["V1"] @ y1 + w["M1"] @ xp + w["U1"] @ y2
        a2 = w["V2"] @ y2 + w["M2"] @ y1
        z1, z2 = np.tanh(a1), np.tanh(a2)
        mu0 = w["W1"] @ z1
        x = mu0 if x is None else np.array([x])
        e0, e1 = mu0 - x, w["W2"] @ z2 - z1
        c1 = a1 - beta * (w["E1"] @ e0 - gamma * e1)
        c2 = a2 - beta * (w["E2"] @ e1)
        s1, s2 = np.tanh(c1), np.tanh(c2)
        f0, f1 = w["W1"] @ s1 - x, w["W2"] @ s2 - s1  # second iteration
        c1 = c1 - beta * (w["E1"] @ f0 - gamma * f1)
        c2 = c2 - beta * (w["E2"] @ f1)
        return np.tanh(c1), np.tanh(c2), mu0, e0, e1, z1, z2

    r1, r2, mu0, e0, e1, z1, z2 = reference_step(y1, y2, xp, x)
    q, G = step_updates(model, x)
    np.testing.assert_allclose(q.mu[0], mu0, rtol=1e-13)
    np.testing.assert_allclose(q.y[0], r1, rtol=1e-13)
    np.testing.assert_allclose(q.y[1], r2, rtol=1e-13)
    eps1, eps2 = z1 - r1, z2 - r2
    for name, value in {"W1": np.outer(e0, z1), "W2": np.outer(e1, z2),
                        "M1": np.outer(eps1, xp), "V1": np.outer(eps1, y1),
                        "U1": np.outer(eps1, y2), "M2": np.outer(eps2, y1),
                        "V2": np.outer(eps2, y2), "E1": np.outer(z1, e0),
                        "E2": np.outer(z2, e1)}.items():
        np.testing.assert_allclose(G[name], value, rtol=1e-12, atol=1e-15, err_msg=name)
    # forecast: run ahead on the model's own predictions (weights unchanged by update())
    model.update(x)
    s1, s2, xp2 = r1, r2, np.array([x])
    expected = []
    for _ in range(2):
        s1, s2, mu, *_ = reference_step(s1, s2, xp2, None)
        expected.append(mu[0])
        xp2 = mu
    np.testing.assert_allclose(model.forecast().mean, expected, rtol=1e-12)


def ar_stream(coefs: list[tuple[float, float]], length: int, seed: int = 3) -> np.ndarray:
    """AR(2) segments of ``length`` readings, one per coefficient pair, noise sd 0.3."""
    rng = np.random.default_rng(seed)
    z = np.zeros(length * len(coefs))
    for t in range(2, z.size):
        a1, a2 = coefs[t // length]
        z[t] = a1 * z[t - 1] + a2 * z[t - 2] + 0.3 * rng.standard_normal()
    return z


def stream_errors(model, z: np.ndarray, learn: bool = True) -> np.ndarray:
    errors = np.empty(z.size)
    for t, value in enumerate(z):
        errors[t] = abs(model.forecast().mean[0] - value)
        model.learn_one(value) if learn else model.update(value)
    return errors


def test_online_error_decreases_then_recovers_after_a_regime_switch():
    z = ar_stream([(1.2, -0.5), (-0.5, 0.3)], 3000)
    model = create("ptncn", fit_readings=10).fit(z[:60])
    err = stream_errors(model, z[60:3000])
    floor = 0.3 * np.sqrt(2 / np.pi)  # mean |noise|: the best any forecaster can do
    naive = np.mean(np.abs(np.diff(z[2000:3000])))
    early, late = err[:100].mean(), err[-1000:].mean()
    assert late < early and late < 0.9 * naive and late < 1.1 * floor, (early, late, naive)
    frozen = create("ptncn")
    frozen.n_covariates_ = 0
    frozen.load_state_dict(model.state_dict())
    after = stream_errors(model, z[3000:])
    after_frozen = stream_errors(frozen, z[3000:], learn=False)
    # the switch hurts, learning brings the error back to the noise floor; frozen does not
    assert after[:100].mean() > 1.3 * late, (after[:100].mean(), late)
    assert after[-1000:].mean() < 1.1 * floor, after[-1000:].mean()
    assert after[-1000:].mean() < 0.8 * after_frozen[-1000:].mean()


def test_non_differentiable_sign_units_still_learn():
    """sign(a) has derivative zero almost everywhere: backprop could not train it.

    Level output (``residual=False``): the untrained model then starts far from the
    data, so the test sees what the rule itself learns.
    """
    z = ar_stream([(1.2, -0.5)], 4000)
    z = z / z.std()
    model = create("ptncn", activation="sign", lr=0.01, fit_readings=10,
                   residual=False).fit(z[:60])
    assert set(np.unique(model.y_)) <= {-1.0, 0.0, 1.0}  # binary units, really
    frozen = create("ptncn", activation="sign", residual=False)
    frozen.n_covariates_ = 0
    frozen.load_state_dict(model.state_dict())
    err = stream_errors(model, z[60:])
    err_frozen = stream_errors(frozen, z[60:], learn=False)
    assert err[-1000:].mean() < 0.85 * err[:200].mean(), (err[:200].mean(), err[-1000:].mean())
    assert err[-1000:].mean() < 0.85 * err_frozen[-1000:].mean()


def test_error_weights_track_transpose_or_learn_their_own_rule():
    z = ar_stream([(1.2, -0.5)], 500)
    offsets = {}
    for rule in ("transpose", "temporal"):
        model = create("ptncn", error_rule=rule, fit_readings=10).fit(z[:20])
        P = model.P_
        start = P["E2"] - P["W2"].T
        for value in z[20:]:
            model.learn_one(value)
        offsets[rule] = np.abs(P["E2"] - P["W2"].T - start).max()
    assert offsets["transpose"] < 1e-12  # E - W^T never changes: E follows W^T
    assert offsets["temporal"] > 1e-3


@pytest.mark.parametrize("params", [
    {"layers": 3, "inference_steps": 3, "activation": "hardtanh"},
    {"layers": 1, "error_rule": "temporal", "optimizer": "adam", "lr": 5e-3},
    {"activation": "sign", "lr": 0.01},
])
def test_variants_resume_exactly_and_export(tmp_path, params):
    from tsforge.export import export_onnx
    from tsforge.models.base import Forecaster
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.runtime import StreamingRuntime

    z = ar_stream([(1.2, -0.5)], 400)
    x = np.roll(z, -1)[:, None]  # one covariate that leads the target
    params = {"horizon": 3, "hidden": 5, "fit_readings": 200, **params}
    model = create("ptncn", **params).fit(z[:300], x[:300])
    model.save(tmp_path / "m.npz")
    clone = Forecaster.load(tmp_path / "m.npz")
    for t in range(300, 340):
        model.learn_one(z[t], x[t])
        clone.learn_one(z[t], x[t])
        np.testing.assert_array_equal(model.forecast().mean, clone.forecast().mean)
    wrapped = TransformedForecaster(create("ptncn", **params), [{"kind": "scale"}],
                                    intervals=None).fit(z[:300], x[:300])
    export_onnx(wrapped, tmp_path / "m.onnx", sensor="s", parity_steps=100)
    rt = StreamingRuntime(tmp_path / "m.onnx")
    for t in range(300, 360):
        wrapped.update(z[t], x[t])
        np.testing.assert_allclose(rt.push("s", z[t], x[t]), wrapped.forecast().mean,
                                   rtol=1e-4, atol=1e-4)


def test_bad_configuration_names_the_valid_choices():
    with pytest.raises(ConfigError, match="tanh, hardtanh, sign"):
        create("ptncn", activation="relu")
    with pytest.raises(ConfigError, match="transpose, temporal"):
        create("ptncn", error_rule="feedback")
    with pytest.raises(ConfigError, match="nesterov, adam"):
        create("ptncn", optimizer="sgd")
    with pytest.raises(ConfigError, match="inference_steps must be >= 1"):
        create("ptncn", inference_steps=0)


def test_backtest_runs_ptncn_online():
    from tsforge.backtest import backtest
    from tsforge.checks import synthetic_series

    y, X = synthetic_series(n=900, n_covariates=1)
    result = backtest(y, X, models=["naive", ("ptncn", {"fit_readings": 600})], horizon=3,
                      transforms=[{"kind": "scale"}], period=12)
    scores = {s.model: s for s in result.scores}
    assert scores["ptncn"].online
    assert scores["ptncn"].mase < scores["naive"].mase


def test_docstring_example_runs():
    import doctest

    from tsforge.models.online import ptncn

    result = doctest.testmod(ptncn)
    assert result.attempted > 0 and result.failed == 0
