"""DSF: the parallel filter equals the sequential reference; exact on the diagonal linear cell."""

from __future__ import annotations

import pytest
import torch

from tsforge.models.dsf.scan import (
    FixedFeedback,
    reverse_filter_parallel,
    reverse_filter_sequential,
)


@pytest.mark.parametrize("T", [1, 2, 7, 64, 100, 1000])
def test_parallel_filter_equals_sequential_reference(T):
    g = torch.Generator().manual_seed(T)
    e = torch.randn(3, T, 5, dtype=torch.float64, generator=g)
    a = torch.tensor([0.0, 1e-8, 0.3, 0.999, 1.0], dtype=torch.float64)
    torch.testing.assert_close(reverse_filter_parallel(e, a), reverse_filter_sequential(e, a),
                               atol=1e-10, rtol=1e-10)


def test_dsf_equals_bptt_on_the_diagonal_linear_cell():
    """h_t = a ⊙ h_{t-1} + tanh(W x_t + b): J_t = diag(a), so feedback A = a is exact."""
    torch.manual_seed(0)
    B, T, d, n = 2, 50, 3, 6
    x = torch.randn(B, T, d, dtype=torch.float64)
    target = torch.randn(B, T, n, dtype=torch.float64)
    a = torch.linspace(0.0, 0.95, n, dtype=torch.float64)
    W = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n, dtype=torch.float64, requires_grad=True)

    def loss_of(h):
        return ((h - target) ** 2).sum()

    # exact BPTT through the recurrence
    h, states = torch.zeros(B, n, dtype=torch.float64), []
    for t in range(T):
        h = a * h + torch.tanh(x[:, t] @ W.T + b)
        states.append(h)
    loss_of(torch.stack(states, 1)).backward()
    bptt = torch.cat([W.grad.flatten(), b.grad]).clone()
    W.grad, b.grad = None, None

    # DSF window form: forward without graph, local recompute, filtered state errors
    with torch.no_grad():
        h, states = torch.zeros(B, n, dtype=torch.float64), []
        for t in range(T):
            h = a * h + torch.tanh(x[:, t] @ W.T + b)
            states.append(h)
        seq = torch.stack(states, 1)
        prev = torch.cat([torch.zeros(B, 1, n, dtype=torch.float64), seq[:, :-1]], 1)
    local = a * prev + torch.tanh(x @ W.T + b)  # one batched step over all B*T positions
    loss_of(FixedFeedback.apply(local, a)).backward()
    dsf = torch.cat([W.grad.flatten(), b.grad])
    rel = (dsf - bptt).norm() / bptt.norm()
    assert rel <= 1e-6, rel


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_dsf_gradient_cosine_to_bptt_is_measured_and_positive(kind):
    """Fused sequence forward without graph, one batched local step, DSF-filtered errors."""
    torch.manual_seed(1)
    B, T, d, n = 4, 64, 2, 16
    fused = (torch.nn.RNN if kind == "rnn" else torch.nn.GRU)(d, n, batch_first=True).double()
    cell = (torch.nn.RNNCell if kind == "rnn" else torch.nn.GRUCell)(d, n).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in fused.state_dict().items()})
    head = torch.nn.Linear(n, 1).double()
    x = torch.randn(B, T, d, dtype=torch.float64)
    y = torch.roll(x[..., :1], -3, dims=1)  # needs memory of 3 steps

    out, _ = fused(x)
    ((head(out) - y) ** 2).mean().backward()
    bptt = torch.cat([p.grad.flatten() for p in fused.parameters()])

    with torch.no_grad():
        seq, _ = fused(x)
        prev = torch.cat([torch.zeros(B, 1, n, dtype=torch.float64), seq[:, :-1]], 1)
    local = cell(x.reshape(-1, d), prev.reshape(-1, n)).reshape(B, T, n)
    a = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)[:-1]  # reference init in [0, 1)
    ((head(FixedFeedback.apply(local, a)) - y) ** 2).mean().backward()
    dsf = torch.cat([p.grad.flatten() for p in cell.parameters()])
    cosine = float(torch.nn.functional.cosine_similarity(dsf, bptt, dim=0))
    print(f"DSF vs BPTT gradient cosine, {kind}: {cosine:.3f}")
    assert 0.0 < cosine <= 1.0


@pytest.mark.parametrize("name", ["dsf_rnn", "dsf_gru", "dsf_lstm"])
def test_dsf_training_forward_is_the_ordinary_forward_and_trains(name):
    import numpy as np

    from tsforge.checks import synthetic_series
    from tsforge.models import create

    y, _ = synthetic_series(n=400)
    model = create(name, horizon=2, hidden=8, layers=2, seq_len=32, epochs=2).fit(y - 10)
    core = model.core_
    x = torch.randn(3, 20, 1)
    with torch.no_grad():
        dsf = core.dsf_sequence(x)
        ordinary, _ = core.forward_sequence(x, core.initial_state(3))
    torch.testing.assert_close(dsf, ordinary, atol=1e-5, rtol=1e-5)
    losses = model.train_result_.train_losses
    assert np.isfinite(losses).all()
