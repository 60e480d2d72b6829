"""Ground truth for the online learners: RTRL = BPTT, UORO unbiased, RLS = least squares.

References are independent of the package: autograd through hand-written tanh cells
and through ``torch.nn.GRUCell``, ``numpy.linalg.solve`` for least squares.  The
mutation checks at the end break a learning rule in place (monkeypatch) and assert
that the ground-truth criterion above it rejects the broken rule.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mutants import mutated

from tsforge.checks import synthetic_series
from tsforge.errors import ConfigError, DataError
from tsforge.models import create
from tsforge.models.online import rnn
from tsforge.models.online.cells import GRUCell, TanhCell
from tsforge.models.online.learners import UOROBatch


def fitted(name: str, **params):
    y, _ = synthetic_series(n=300)
    if name != "esn":
        params.setdefault("fit_readings", 200)
    params.setdefault("horizon", 3)
    model = create(name, **params).fit(y[:200] - 10.0)
    return model, y[200:] - 10.0


def gru_reference(n: int, d: int):
    """``f(theta, h, x)`` through ``torch.nn.GRUCell`` with weights sliced from ``theta``."""
    cell = torch.nn.GRUCell(d, n).double()
    sizes = [3 * n * d, 3 * n * n, 3 * n, 3 * n]

    def f(theta, h, x):
        w_ih, w_hh, b_ih, b_hh = torch.split(theta, sizes)
        params = {"weight_ih": w_ih.reshape(3 * n, d), "weight_hh": w_hh.reshape(3 * n, n),
                  "bias_ih": b_ih, "bias_hh": b_hh}
        return torch.func.functional_call(cell, params, (x[None], h[None]))[0]

    return f


def tanh_reference(n: int, d: int):
    def f(theta, h, x):
        W = theta[: n * n].reshape(n, n)
        U = theta[n * n : n * n + n * d].reshape(n, d)
        return torch.tanh(W @ h + U @ x + theta[n * n + n * d :])

    return f


def torch_cell(model):
    ref = gru_reference if model.config.cell == "gru" else tanh_reference
    return ref(model.config.hidden, 1)


def bptt_gradient(model, zs: np.ndarray) -> np.ndarray:
    """Autograd (fp64) gradient of sum_t ½ (z_{t-1} + V0·h_{t-1} + c0 - z_t)^2 w.r.t. θ
    (without the ``z_{t-1}`` term for a level readout)."""
    theta = torch.tensor(model.theta_, dtype=torch.float64, requires_grad=True)
    V, c = model._readout()
    V0, c0 = torch.tensor(V[0]), float(c[0])
    cell = torch_cell(model)
    h = torch.tensor(model.h_)
    state = model.state_dict()
    a0 = 1.0 if model.config.residual else 0.0
    last = float(state["past_y"][0])
    loss = torch.zeros((), dtype=torch.float64)
    for z in zs:
        loss = loss + 0.5 * (V0 @ h + c0 + a0 * last - z) ** 2
        h = cell(theta, h, torch.tensor([z], dtype=torch.float64))
        last = float(z)
    loss.backward()
    return theta.grad.numpy()


def rtrl_relative_error(model, zs: np.ndarray) -> float:
    expected = bptt_gradient(model, zs)
    model.M_[:] = 0.0  # the stream starts here: h_0 is a constant, as in the BPTT reference
    total = np.zeros_like(model.theta_)
    for z in zs:
        total += model.gradients(z)[0]
        model.update(z)  # frozen parameters
    return float(np.linalg.norm(total - expected) / np.linalg.norm(expected))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("residual", [True, False])
def test_rtrl_gradient_equals_bptt(cell, residual):
    model, stream = fitted("rtrl", hidden=5, cell=cell, residual=residual)
    rel = rtrl_relative_error(model, stream[:40])
    assert rel <= 1e-6, rel


@pytest.mark.parametrize("kind", [TanhCell, GRUCell])
def test_cell_products_match_autograd_of_reference_cell(kind):
    """JVP, VJP and the RTRL recursion of each cell against autograd Jacobians
    (``torch.nn.GRUCell`` for the GRU), for a batch of 3 sensors at once."""
    rng = np.random.default_rng(1)
    n, d, S = 4, 2, 3
    cell = kind(n, d)
    theta = rng.normal(0, 0.5, (S, cell.n_params()))
    h, x = rng.normal(size=(S, n)), rng.normal(size=(S, d))
    v, u = rng.normal(size=(S, n)), rng.normal(size=(S, n))
    M_prev = rng.normal(size=(S, n, theta.shape[1]))
    h_new, aux = cell.step(theta, h, x)
    M = cell.rtrl_update(M_prev, aux)
    ref = (gru_reference if kind is GRUCell else tanh_reference)(n, d)
    for s in range(S):
        args = (torch.tensor(theta[s]), torch.tensor(h[s]), torch.tensor(x[s]))
        np.testing.assert_allclose(h_new[s], ref(*args).numpy(), atol=1e-13)
        J_theta, J_h = torch.autograd.functional.jacobian(
            lambda th, hh, x_s=args[2]: ref(th, hh, x_s), args[:2])
        J_theta, J_h = J_theta.numpy(), J_h.numpy()
        np.testing.assert_allclose(cell.jvp_h(aux, u)[s], J_h @ u[s], atol=1e-12)
        np.testing.assert_allclose(cell.vjp_theta(aux, v)[s], v[s] @ J_theta, atol=1e-12)
        np.testing.assert_allclose(M[s], J_h @ M_prev[s] + J_theta, atol=1e-12)


# ---------------------------------------------------------------------- UORO
def uoro_estimates(model, zs: np.ndarray, draws: int, chunk: int = 500) -> np.ndarray:
    """``draws`` independent UORO estimates of the summed gradient over ``zs``, frozen θ.

    Each draw is one sensor of a batch with its own step counter, hence its own signs.
    """
    out = []
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        batch = UOROBatch.from_models([model] * size)
        batch.steps[:] = 1_000_000 * (start + np.arange(size) + 1)
        batch.reset_estimator()
        total = np.zeros_like(batch.theta)
        for z in zs:
            total += batch.gradients(np.full(size, z))[0]
            batch.update_many(np.full(size, z))
        out.append(total)
    return np.concatenate(out)


def chi2_per_coordinate(estimates: np.ndarray, exact: np.ndarray) -> float:
    """Mean over coordinates of ``z_i² = (mean_i - exact_i)² / (var_i / R)``: about 1 when
    the estimator is unbiased, larger with a bias (the z_i are t statistics over R draws)."""
    R = estimates.shape[0]
    sd = estimates.std(axis=0, ddof=1)
    keep = sd > 1e-9 * np.abs(exact).max()
    z = (estimates.mean(axis=0)[keep] - exact[keep]) / (sd[keep] / np.sqrt(R))
    return float(np.mean(z**2))


UORO_N, UORO_STEPS, UORO_DRAWS = 96, 3, 3000
#: draws for the mutation checks: their biases (10 % and more) show with fewer
MUTANT_DRAWS = 1500


@pytest.fixture(scope="module")
def uoro_problem():
    """A UORO learner with n = 96 units, its exact gradient over a short stream (3
    readings), and 3,000 independent estimates of it.

    The readout reads one unit (a one-hot V0): the exact gradient then lives mostly on
    the parameters that feed that unit, where the per-coordinate signal-to-noise
    ratio is high enough for 3,000 draws to see a 5 % bias (mean z² about 1.0
    unbiased, about 2 with the estimates scaled by 0.95 or 1.05).
    """
    model, stream = fitted("uoro", hidden=UORO_N, horizon=1)
    model.readout_[:] = 0.0
    model.readout_[0] = 1.0
    zs = stream[:UORO_STEPS]
    return model, zs, bptt_gradient(model, zs), uoro_estimates(model, zs, UORO_DRAWS)


def uoro_verdict(estimates: np.ndarray, exact: np.ndarray) -> tuple[bool, str]:
    """Unbiased within Monte-Carlo error, coordinate by coordinate, and along ``exact``.

    Under unbiasedness each z_i is a t statistic, so the mean of z_i² is about 1; its
    spread over seeds was ±0.15 at 1,000 draws.  1.4 sits between the unbiased value
    and the 5 %-bias value at 3,000 draws.
    """
    chi2 = chi2_per_coordinate(estimates, exact)
    u = exact / np.linalg.norm(exact)
    along = estimates @ u
    z_along = (along.mean() - np.linalg.norm(exact)) / (along.std(ddof=1) / np.sqrt(len(along)))
    ok = chi2 < 1.4 and abs(z_along) < 4.0
    return ok, f"mean z² {chi2:.3f}, z along the gradient {z_along:.2f}"


def test_uoro_estimate_is_unbiased_at_96_units(uoro_problem):
    _model, _zs, exact, estimates = uoro_problem
    ok, why = uoro_verdict(estimates, exact)
    assert ok, why
    # power: the same draws with a 5 % bias are rejected
    biased_ok, biased_why = uoro_verdict(0.95 * estimates, exact)
    assert not biased_ok, biased_why
    # variance bound on the single-draw relative variance E|g^ - g|^2 / |g|^2: 4.4e3 on
    # this problem (the noise of ±1 signs spreads over all 9,408 coordinates while the
    # one-hot gradient is concentrated); a broken ρ balancing or sign scale moves it by
    # far more than the factor 2 allowed here
    rel_variance = np.mean(np.sum((estimates - exact) ** 2, axis=1)) / np.sum(exact**2)
    print(f"UORO n={UORO_N}: {why}; single-estimate relative variance {rel_variance:.3g}")
    assert 0 < rel_variance < 9000, rel_variance


def test_random_signs_are_balanced_and_independent_across_steps():
    """±1 signs with no overlap between the words of consecutive steps (n = 256)."""
    n, steps = 256, 400
    signs = np.array([rnn.random_signs(0, t, 0, n) for t in range(steps)])
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(signs.mean()) < 4 / np.sqrt(signs.size)
    # correlation of every coordinate of step t with every coordinate of step t+1
    cross = signs[:-1].T @ signs[1:] / (steps - 1)  # (n, n), each entry ~ N(0, 1/steps)
    assert np.abs(cross).max() < 5.5 / np.sqrt(steps - 1), np.abs(cross).max()
    assert not np.array_equal(rnn.random_signs(0, 5, 0, n), rnn.random_signs(0, 5, 1, n))
    np.testing.assert_array_equal(rnn.random_signs(3, 7, 0, n), rnn.random_signs(3, 7, 0, n))


# ---------------------------------------------------------------------- ESN / RLS
def rls_stream(lam: float, ridge: float, residual: bool):
    """An ESN whose readout restarts from w = 0, P = I / ridge, then learns 240 readings;
    returns the model and the features, targets seen by head 0."""
    y, _ = synthetic_series(n=400)
    model = create("esn", horizon=1, reservoir=15, forgetting=lam, ridge=ridge, washout=5,
                   residual=residual).fit(y[:60] - 10)
    model.W_out_[:] = 0.0
    model.P_[:] = np.eye(16) / ridge
    model.batch_.steps[:] = 0
    feats, targets = [], []
    last = y[59] - 10
    for z in y[60:300] - 10:
        feats.append(model.past_phi_[0].copy())
        targets.append(z - last if residual else z)
        model.learn_one(z)
        last = z
    return model, np.array(feats), np.array(targets)


@pytest.mark.parametrize("residual", [True, False])
def test_esn_online_rls_equals_batch_least_squares(residual):
    model, Phi, t = rls_stream(1.0, 1e-3, residual)
    batch = np.linalg.solve(Phi.T @ Phi + 1e-3 * np.eye(Phi.shape[1]), Phi.T @ t)
    np.testing.assert_allclose(model.W_out_[0], batch, rtol=1e-6, atol=1e-8)


def weighted_ridge(Phi: np.ndarray, t: np.ndarray, lam: float, ridge: float) -> np.ndarray:
    """argmin Σ_i λ^(T-1-i) [(t_i - w·φ_i)² + r w_{i mod m}²] + λ^T ridge |w|²,
    with ``r = (1-λ) ridge m``."""
    T, m = Phi.shape
    weights = lam ** np.arange(T - 1, -1, -1)
    A = (Phi * weights[:, None]).T @ Phi + lam**T * ridge * np.eye(m)
    r = (1 - lam) * ridge * m
    for i in range(T):
        A[i % m, i % m] += weights[i] * r
    return np.linalg.solve(A, (Phi * weights[:, None]).T @ t)


def test_esn_rls_with_forgetting_equals_exponentially_weighted_ridge():
    lam, ridge = 0.97, 1e-2
    model, Phi, t = rls_stream(lam, ridge, residual=True)
    np.testing.assert_allclose(model.W_out_[0], weighted_ridge(Phi, t, lam, ridge),
                               rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------- behaviour
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


# ---------------------------------------------------------------------- mutation checks
def test_mutation_uoro_theta_tilde_scaled_by_0_9_is_rejected(uoro_problem, monkeypatch):
    """Shrinking θ̃ by 0.9 per step (a biased estimator) fails the unbiasedness criterion."""
    model, zs, exact, _ = uoro_problem
    clone = mutated(rnn, "    return rho0 * s_prop + rho1 * nu, theta_g\n",
                    "    return rho0 * s_prop + rho1 * nu, 0.9 * theta_g\n")
    monkeypatch.setattr(rnn, "uoro_combine", clone.uoro_combine)
    ok, why = uoro_verdict(uoro_estimates(model, zs, MUTANT_DRAWS), exact)
    assert not ok, why


def test_mutation_overlapping_sign_words_are_rejected(uoro_problem, monkeypatch):
    """The old generator's defect (words of step t+1 reused words of step t) is rejected."""
    model, zs, exact, _ = uoro_problem
    draw = rnn.random_signs

    def overlapping(seed, step, draw_index, n):  # word k of step t = word k-1 of step t+1
        words = [draw(seed, step + k, draw_index, 64) for k in range((n + 63) // 64)]
        return np.concatenate(words)[:n]

    monkeypatch.setattr(rnn, "random_signs", overlapping)
    ok, why = uoro_verdict(uoro_estimates(model, zs, MUTANT_DRAWS), exact)
    assert not ok, why


def test_mutation_rls_without_division_by_lambda_is_rejected(monkeypatch):
    """RLS that forgets to divide P by λ no longer equals exponentially weighted ridge."""
    from tsforge.models.online import esn

    clone = mutated(esn, "    inv = np.where(valid, 1.0 / lam, 1.0)[..., None]",
                    "    inv = valid[..., None] * 1.0")
    monkeypatch.setattr(esn, "rls_step", clone.rls_step)
    lam, ridge = 0.97, 1e-2
    model, Phi, t = rls_stream(lam, ridge, residual=True)
    gap = np.abs(model.W_out_[0] - weighted_ridge(Phi, t, lam, ridge)).max()
    assert gap > 1e-3, gap


def test_mutation_gru_reference_is_torch_not_the_package():
    """The GRU reference is ``torch.nn.GRUCell``: a cell with swapped gates disagrees."""
    n, d = 3, 1
    cell = GRUCell(n, d)
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 0.5, (1, cell.n_params()))
    h, x = rng.normal(size=(1, n)), rng.normal(size=(1, d))
    ref = gru_reference(n, d)(torch.tensor(theta[0]), torch.tensor(h[0]), torch.tensor(x[0]))
    swapped = theta.copy()
    w_ih = cell.unpack(swapped)[0]
    w_ih[0, [0, n]] = w_ih[0, [n, 0]]  # r and z rows of one unit exchanged
    assert not np.allclose(cell.step(swapped, h, x)[0][0], ref.numpy())
    np.testing.assert_allclose(cell.step(theta, h, x)[0][0], ref.numpy(), atol=1e-13)
