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


def _window_core(kind: str, layers: int, layer_norm: bool, fb: str = "linspace"):
    from tsforge.models.dsf.cells import feedback
    from tsforge.models.dsf.core import DSFCore

    torch.manual_seed(3)
    core = DSFCore(kind, 2, 6, layers, 2, feedback(fb, 6, 16), True, layer_norm).double()
    with torch.no_grad():  # non-trivial biases and layer norm parameters
        for p in core.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return core


def _window_grads(core, forward, x, target):
    core.zero_grad()
    pred = forward(x)
    ((pred - target) ** 2).sum().backward()
    return pred.detach(), {k: p.grad.clone() for k, p in core.named_parameters()}


@pytest.mark.parametrize("fb", ["linspace", "zero"])
@pytest.mark.parametrize("layers,layer_norm", [(1, False), (2, False), (3, True)])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm", "diag"])
def test_fast_window_form_equals_the_reference_window_form(kind, layers, layer_norm, fb):
    """DSFLayer (blocked hand-written backward) = fused forward + autograd local step + filter."""
    core = _window_core(kind, layers, layer_norm, fb)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 70, 2, dtype=torch.float64, generator=g)
    target = torch.randn(3, 70, 2, dtype=torch.float64, generator=g)
    fast = _window_grads(core, core.dsf_sequence, x, target)
    ref = _window_grads(core, core.dsf_sequence_reference, x, target)
    torch.testing.assert_close(fast[0], ref[0], rtol=1e-12, atol=1e-12)
    for k in ref[1]:
        assert float(ref[1][k].abs().max()) > 0, k
        torch.testing.assert_close(fast[1][k], ref[1][k], rtol=1e-10, atol=1e-12, msg=k)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_window_backward_blocks_and_filters_agree(kind, monkeypatch):
    """Small blocks, one block, and the log-depth filter (the CUDA path) give one gradient."""
    from tsforge.models.dsf import window

    core = _window_core(kind, 1, False)
    layer = core.rnns[0]
    p = {k: v.detach() for k, v in layer.named_parameters()}
    u = torch.randn(37, 3, 2, dtype=torch.float64)
    H, C = window.layer_forward(kind, layer, u)
    e = torch.randn(37, 3, 6, dtype=torch.float64)
    runs = []
    for block_bytes, parallel in ((1, False), (1 << 30, False), (1 << 30, True)):
        monkeypatch.setattr(window, "BLOCK_BYTES", block_bytes)
        runs.append(window.layer_backward(kind, p, u, H, C, e.clone(), core.a, True,
                                          parallel_filter=parallel))
    for d_u, grads in runs[1:]:
        torch.testing.assert_close(d_u, runs[0][0], rtol=1e-12, atol=1e-12)
        for k in grads:
            torch.testing.assert_close(grads[k], runs[0][1][k], rtol=1e-12, atol=1e-12)


def test_low_precision_products_keep_the_gradient_direction():
    """bf16 operands with float32 results (the CUDA autocast path), run on CPU."""
    from tsforge.models.dsf.window import DSFLayer

    core = _window_core("gru", 1, False).float()
    layer = core.rnns[0]
    names, params = zip(*layer.named_parameters(), strict=True)
    x = torch.randn(4, 50, 2)
    grads = []
    for low in (None, torch.bfloat16):
        out = DSFLayer.apply(x, core.a, "gru", layer, names, low, *params)
        grads.append(torch.autograd.grad(out.pow(2).sum(), params))
    flat = [torch.cat([g.flatten() for g in gs]) for gs in grads]
    assert flat[1].dtype == torch.float32
    assert float(torch.nn.functional.cosine_similarity(flat[0], flat[1], dim=0)) > 0.99
    assert not torch.equal(flat[0], flat[1])  # the bf16 products really ran
