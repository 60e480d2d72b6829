"""DSF: the parallel filters equal their sequential references; exact on a diagonal linear cell."""

from __future__ import annotations

import pytest
import torch

from tsforge.models.dsf.cells import sequence_no_graph
from tsforge.models.dsf.scan import (
    FixedFeedback,
    forward_filter_parallel,
    forward_filter_sequential,
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


@pytest.mark.parametrize("T", [1, 2, 7, 100, 1000])
def test_forward_filter_parallel_equals_sequential_reference(T):
    g = torch.Generator().manual_seed(T)
    u = torch.randn(3, T, 4, dtype=torch.float64, generator=g)
    f = torch.rand(3, T, 4, dtype=torch.float64, generator=g)
    f[..., 0] = 0.0
    c0 = torch.randn(3, 4, dtype=torch.float64, generator=g)
    for init in (None, c0):
        ref = forward_filter_sequential(u, f, init)
        torch.testing.assert_close(forward_filter_parallel(u, f, init), ref, atol=1e-10,
                                   rtol=1e-10)
        # the differentiable path (used when BPTT runs through the scan) agrees too
        torch.testing.assert_close(forward_filter_parallel(u.requires_grad_(), f, init), ref,
                                   atol=1e-10, rtol=1e-10)
        u = u.detach()


def test_lstm_cell_states_from_the_scan_match_the_fused_kernel():
    """The graph-free LSTM forward recovers c_t by a parallel scan over the fused h_t."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5, batch_first=True).double()
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    h_seq, c_seq = sequence_no_graph("lstm", lstm, x)
    h, c = torch.zeros(1, 2, 5, dtype=torch.float64), torch.zeros(1, 2, 5, dtype=torch.float64)
    for t in range(40):
        _, (h, c) = lstm(x[:, t : t + 1], (h, c))
        torch.testing.assert_close(c_seq[:, t], c[0], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(h_seq[:, t], h[0], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", ["dsf_rnn", "dsf_gru", "dsf_lstm", "diag_ssm"])
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
