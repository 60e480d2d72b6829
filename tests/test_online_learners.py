"""Ground truth for the online learners: RTRL = BPTT, UORO unbiased, RLS = least squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsforge.checks import synthetic_series
from tsforge.errors import ConfigError, DataError
from tsforge.models import create
from tsforge.models.online import rnn


def fitted(name: str, **params):
    y, _ = synthetic_series(n=300)
    if name != "esn":
        params.setdefault("fit_readings", 200)
    model = create(name, horizon=3, **params).fit(y[:200] - 10.0)
    return model, y[200:] - 10.0


def torch_cell(model):
    """The model's cell as a torch function ``f(theta, h, x)``, written independently."""
    n = model.config.hidden
    if model.config.cell == "gru":
        return model.cell_._cell_torch

    def tanh_cell(theta, h, x):
        W = theta[: n * n].reshape(n, n)
        U = theta[n * n : n * n + n].reshape(n, 1)
        return torch.tanh(W @ h + U @ x + theta[n * n + n :])

    return tanh_cell


def bptt_gradient(model, zs: np.ndarray) -> np.ndarray:
    """Autograd (fp64) gradient of sum_t ½ (V0·h_{t-1} + c0 - z_t)^2 w.r.t. the cell parameters."""
    theta = torch.tensor(model.theta_, dtype=torch.float64, requires_grad=True)
    V, c = model._readout()
    V0, c0 = torch.tensor(V[0]), float(c[0])
    cell = torch_cell(model)
    h = torch.tensor(model.h_)
    loss = torch.zeros((), dtype=torch.float64)
    for z in zs:
        loss = loss + 0.5 * (V0 @ h + c0 - z) ** 2
        h = cell(theta, h, torch.tensor([z], dtype=torch.float64))
    loss.backward()
    return theta.grad.numpy()


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_rtrl_gradient_equals_bptt(cell):
    model, stream = fitted("rtrl", hidden=5, cell=cell)
    zs = stream[:40]
    expected = bptt_gradient(model, zs)
    model.M_[:] = 0.0  # the stream starts here: h_0 is a constant, as in the BPTT reference
    total = np.zeros_like(model.theta_)
    for z in zs:
        total += model.gradients(z)[0]
        model.update(z)  # frozen parameters
    rel = np.linalg.norm(total - expected) / np.linalg.norm(expected)
    assert rel <= 1e-6, rel


def test_rtrl_influence_matrix_matches_autograd_jacobian():
    rng = np.random.default_rng(1)
    n, d = 4, 2
    theta = rng.normal(0, 0.5, rnn.n_params(n, d))
    h, x = rng.normal(size=n), rng.normal(size=d)
    _h_new, D = rnn.step(theta, h, x, n)
    M_prev = rng.normal(size=(n, theta.size))
    M = rnn.rtrl_update(M_prev, theta, D, h, x, n)

    def cell(th, hh):
        W = th[: n * n].reshape(n, n)
        U = th[n * n : n * n + n * d].reshape(n, d)
        return torch.tanh(W @ hh + U @ torch.tensor(x) + th[n * n + n * d :])

    J_theta, J_h = torch.autograd.functional.jacobian(cell, (torch.tensor(theta), torch.tensor(h)))
    np.testing.assert_allclose(M, J_h.numpy() @ M_prev + J_theta.numpy(), atol=1e-12)


def test_uoro_estimate_is_unbiased():
    """Mean of R independent UORO estimates vs the exact gradient.

    Statistical test: with R draws, the error of the mean is ~ N(0, Σ/R) per
    coordinate.  We accept when its norm is below 4 Monte-Carlo standard errors
    sqrt(tr Σ / R): for a Gaussian error this fails with probability far below 1e-3,
    while a biased estimator (e.g. truncated gradients) fails it (checked below).
    The seed is fixed, so the test is deterministic.
    """
    model, stream = fitted("uoro", hidden=4)
    zs = stream[:15]
    exact = bptt_gradient(model, zs)
    h0, theta0 = model.h_.copy(), model.theta_.copy()
    runs = 3000
    estimates = np.empty((runs, theta0.size))
    for r in range(runs):
        model.h_, model.steps_ = h0.copy(), 10_000 * (r + 1)
        model._reset_estimator()
        total = np.zeros_like(theta0)
        for z in zs:
            total += model.gradients(z)[0]
            model.update(z)
        estimates[r] = total
    assert np.array_equal(model.theta_, theta0)  # parameters were frozen
    mean = estimates.mean(axis=0)
    mc_error = np.sqrt(estimates.var(axis=0).sum() / runs)
    gap = np.linalg.norm(mean - exact)
    rel_variance = np.mean(np.sum((estimates - exact) ** 2, axis=1)) / np.sum(exact**2)
    print(f"UORO: |mean - exact| = {gap:.4g}, MC standard error {mc_error:.4g}, "
          f"single-estimate relative variance {rel_variance:.3g}")
    assert gap < 4 * mc_error
    assert np.isfinite(rel_variance) and rel_variance > 0
    # the test has power: the biased one-step (fully truncated) gradient fails it
    V, c = model._readout()
    truncated = np.zeros_like(theta0)
    h, previous = h0.copy(), None
    for z in zs:
        err = float(V[0] @ h + c[0] - z)
        if previous is not None:  # gradient through the last step only
            truncated += rnn.immediate_vjp(err * V[0], *previous)
        x = np.array([z])
        h_new, D = rnn.step(theta0, h, x, model.config.hidden)
        previous, h = (D, h, x), h_new
    assert np.linalg.norm(truncated - exact) > 4 * mc_error


def test_esn_online_rls_equals_batch_least_squares():
    y, _ = synthetic_series(n=400)
    model = create("esn", horizon=1, reservoir=15, forgetting=1.0, ridge=1e-3,
                   washout=5).fit(y[:60] - 10)
    c = model.config
    # restart the readout from scratch: w = 0, P = I / ridge
    model.W_out_[:] = 0.0
    model.P_[:] = np.eye(c.reservoir + 1) / c.ridge
    feats, targets = [], []
    for z in y[60:300] - 10:
        feats.append(model.past_phi_[0].copy())
        targets.append(z)
        model.learn_one(z)
    Phi, t = np.array(feats), np.array(targets)
    batch = np.linalg.solve(Phi.T @ Phi + c.ridge * np.eye(Phi.shape[1]), Phi.T @ t)
    np.testing.assert_allclose(model.W_out_[0], batch, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["rtrl", "uoro", "esn", "ptncn"])
def test_online_learning_reduces_error_on_ar_stream(name):
    rng = np.random.default_rng(3)
    z = np.zeros(4000)
    for t in range(2, len(z)):
        z[t] = 1.2 * z[t - 1] - 0.5 * z[t - 2] + 0.3 * rng.standard_normal()
    params = {} if name == "esn" else {"fit_readings": 10}
    model = create(name, horizon=1, **params).fit(z[:60])
    errors = []
    for t in range(60, len(z)):
        errors.append(abs(model.forecast().mean[0] - z[t]))
        model.learn_one(z[t])
    early, late = np.mean(errors[:100]), np.mean(errors[-1000:])
    naive = np.mean(np.abs(np.diff(z[-1001:])))
    floor = 0.3 * np.sqrt(2 / np.pi)  # mean |noise|: the best any forecaster can do
    assert late < early and late < 0.9 * naive and late < 1.1 * floor, (early, late, naive)


@pytest.mark.parametrize("name", ["rtrl", "uoro", "esn", "ptncn"])
def test_bare_learner_rejects_nonfinite_and_stays_finite(name):
    model, _stream = fitted(name)
    for bad in (np.nan, np.inf):
        with pytest.raises(DataError, match="non-finite"):
            model.learn_one(bad)
    for value in model.state_dict().values():
        assert np.all(np.isfinite(np.asarray(value, dtype=float)))


def test_rtrl_refuses_impractical_sizes_and_names_uoro():
    with pytest.raises(ConfigError, match="uoro"):
        create("rtrl", hidden=100)
    with pytest.warns(UserWarning, match="uoro"):
        create("rtrl", hidden=48)


def test_gru_learner_exports_and_resumes(tmp_path):
    from tsforge.export import export_onnx
    from tsforge.models.base import Forecaster
    from tsforge.runtime import StreamingRuntime

    model, stream = fitted("rtrl", hidden=4, cell="gru")
    for z in stream[:20]:
        model.learn_one(z)
    model.save(tmp_path / "m.npz")
    clone = Forecaster.load(tmp_path / "m.npz")
    export_onnx(model, tmp_path / "m.onnx", sensor="s", parity_steps=200)
    for z in stream[20:60]:  # a restarted learner continues exactly
        model.learn_one(z)
        clone.learn_one(z)
        np.testing.assert_array_equal(model.forecast().mean, clone.forecast().mean)
    frozen = Forecaster.load(tmp_path / "m.npz")
    rt = StreamingRuntime(tmp_path / "m.onnx")
    for z in stream[20:60]:
        out = rt.push("s", z)
        frozen.update(z)
        np.testing.assert_allclose(out, frozen.forecast().mean, rtol=1e-4, atol=1e-4)
