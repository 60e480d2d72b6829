"""DSF: window form = trace form; exact BPTT on the diagonal SSM; gradient cosines; learn_one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsforge.models.dsf.cells import feedback
from tsforge.models.dsf.core import DSFCore
from tsforge.models.dsf.trace import TraceForm


def _core(kind: str, layers: int, layer_norm: bool, fb: str = "linspace") -> DSFCore:
    torch.manual_seed(3)
    core = DSFCore(kind, 2, 6, layers, 2, feedback(fb, 6, 16), True, layer_norm).double()
    with torch.no_grad():  # non-trivial layer norm parameters
        for p in core.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return core


def _data(B: int = 2, T: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, 2, dtype=torch.float64, generator=g)
    return x, torch.randn(B, T, 2, dtype=torch.float64, generator=g)


def _grads(core: DSFCore, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    core.zero_grad()
    ((pred - target) ** 2).sum().backward()
    return {k: p.grad.clone() for k, p in core.named_parameters() if not k.startswith("head")}


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm", "diag"])
@pytest.mark.parametrize("layers", [1, 2])
def test_window_form_equals_trace_form(kind, layer_norm, layers):
    """Frozen parameters: Σ_t e_t · P_t (online traces) = filtered errors through local steps.

    The window side is the plain reference form (autograd through the local step): the
    trace form's hand-written local derivatives are checked against autograd here.
    """
    core = _core(kind, layers, layer_norm)
    x, target = _data()
    window = _grads(core, core.dsf_sequence_reference(x), target)

    trace = TraceForm(core, batch=x.shape[0], dtype=torch.float64)
    state = core.initial_state(x.shape[0]).double()
    total = {k: torch.zeros_like(v) for k, v in window.items()}
    W = core.head.weight.detach()
    for t in range(x.shape[1]):
        grads_before = trace.gradient(torch.zeros(x.shape[0], 6, dtype=torch.float64))
        assert all(float(g.abs().max()) == 0.0 for g in grads_before.values())
        top, state = trace.step(x[:, t], state)
        e = 2 * (core.head(top).detach() - target[:, t]) @ W  # dℓ_t/dy_t, (B, n)
        for k, g in trace.gradient(e).items():
            total[k] += g
    assert set(total) == set(window)
    for k in window:
        torch.testing.assert_close(total[k], window[k], rtol=1e-10, atol=1e-10, msg=k)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_dsf_is_exactly_bptt_on_the_diagonal_ssm_model(layer_norm):
    """The model ``diag_ssm``: feedback = its own transition, so DSF = autograd BPTT (fp64)."""
    core = _core("diag", 3, layer_norm)
    x, target = _data(T=60)
    bptt = _grads(core, core.bptt_sequence(x), target)
    dsf = _grads(core, core.dsf_sequence(x), target)
    flat_b = torch.cat([g.flatten() for g in bptt.values()])
    flat_d = torch.cat([dsf[k].flatten() for k in bptt])
    assert float((flat_d - flat_b).norm() / flat_b.norm()) <= 1e-6
    assert float(bptt["rnns.0.nu"].abs().max()) > 0  # the trained rates get their gradient


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_dsf_cosine_to_bptt_is_measured_and_positive(kind):
    """Same model, same data: cosine between the DSF and the exact BPTT gradient."""
    torch.manual_seed(1)
    core = DSFCore(kind, 1, 16, 1, 1, feedback("linspace", 16, 64), True, False).double()
    x = torch.randn(4, 64, 1, dtype=torch.float64)
    target = torch.roll(x, 3, dims=1)  # recall the reading of 3 steps ago
    bptt = _grads(core, core.bptt_sequence(x), target)
    dsf = _grads(core, core.dsf_sequence(x), target)
    cosine = float(torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in dsf.values()]),
        torch.cat([bptt[k].flatten() for k in dsf]), dim=0))
    print(f"DSF vs BPTT gradient cosine, {kind}: {cosine:.3f}")
    assert 0.0 < cosine <= 1.0 + 1e-12


def test_zero_feedback_is_fully_truncated_bptt():
    """a = 0: the error filter is the identity, the gradient of one-step truncation."""
    core = _core("gru", 1, False, fb="zero")
    x, target = _data()
    dsf = _grads(core, core.dsf_sequence(x), target)
    state, preds = core.initial_state(2).double(), []
    for t in range(x.shape[1]):
        y, state = core(x[:, t], state.detach())
        preds.append(y)
    ft = _grads(core, torch.stack(preds, 1), target)
    for k in dsf:
        torch.testing.assert_close(dsf[k], ft[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["dsf_gru", "diag_ssm"])
def test_learn_one_learns_online_with_the_trace_form(name):
    """A regime change after fit: online DSF lowers the one-step error, a frozen copy does not."""
    from tsforge.models import create

    rng = np.random.default_rng(0)
    t = np.arange(1400)
    y = np.sin(2 * np.pi * t / 24) + 0.05 * rng.standard_normal(t.size)
    y[800:] = 0.5 * np.sin(2 * np.pi * t[800:] / 24) + 0.8
    params = {"hidden": 8, "seq_len": 48, "epochs": 3, "seed": 1}
    online = create(name, online_lr=1e-2, **params).fit(y[:800])
    frozen = create(name, online_lr=0.0, **params).fit(y[:800])
    assert online.online and not frozen.online
    errors = {"online": [], "frozen": []}
    for step in range(800, 1400):
        for key, model in (("online", online), ("frozen", frozen)):
            errors[key].append((model.forecast().mean[0] - y[step]) ** 2)
            model.learn_one(y[step])
    late = {k: float(np.mean(v[-200:])) for k, v in errors.items()}
    assert late["online"] < 0.7 * late["frozen"], late
