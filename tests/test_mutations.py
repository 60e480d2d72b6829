"""Tests that catch a wrong rule outside the online learners, each with its mutation check.

- DSF: the default ``linspace`` feedback is not zero and changes the training gradient
  (a feedback that silently returned zeros would make every nonlinear DSF cell fully
  truncated BPTT while every equivalence test still passed).
- Stable RNN: the projection bounds σ_max of ``weight_hh``, measured directly with
  ``torch.linalg`` rather than through the package's own helper (a projection applied
  to ``weight_ih`` passed the helper-based test).

The online learners' mutation checks live in ``tests/test_online_learners.py``.
"""

from __future__ import annotations

import torch
from mutants import mutated

from tsforge.checks import synthetic_series
from tsforge.models import create


# ---------------------------------------------------------------------- DSF feedback
def dsf_gradient(feedback: str) -> torch.Tensor:
    """Gradient of the DSF training loss w.r.t. the first recurrent matrix of a GRU stack."""
    model = create("dsf_gru", horizon=1, hidden=6, layers=1, seq_len=24, feedback=feedback)
    core = model.build_core(1).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 24, 1, generator=g, dtype=torch.float64)
    target = torch.randn(4, 24, 1, generator=g, dtype=torch.float64)
    mask = torch.ones(4, 24, 1, dtype=torch.bool)
    model.loss(core, (x, target, mask)).backward()
    grads = [p.grad for name, p in core.named_parameters() if "weight_hh" in name]
    return grads[0].detach().clone()


def dsf_feedback_acts() -> tuple[bool, str]:
    from tsforge.models.dsf.cells import feedback

    a = feedback("linspace", 8, 32)
    even = torch.allclose(a, torch.arange(8, dtype=a.dtype) / 8)
    gap = float((dsf_gradient("linspace") - dsf_gradient("zero")).norm())
    return even and gap > 1e-6, f"linspace feedback {a.tolist()}, gradient gap {gap:.3g}"


def test_dsf_linspace_feedback_is_not_zero_and_changes_gradients():
    ok, why = dsf_feedback_acts()
    assert ok, why


def test_mutation_dsf_feedback_returning_zeros_is_rejected(monkeypatch):
    from tsforge.models.dsf import cells, forecasters

    clone = mutated(cells, "return torch.linspace(0.0, 1.0, n + 1)[:-1]", "return torch.zeros(n)")
    monkeypatch.setattr(cells, "feedback", clone.feedback)
    monkeypatch.setattr(forecasters, "feedback", clone.feedback)
    ok, why = dsf_feedback_acts()
    assert not ok, why


# ---------------------------------------------------------------------- stable RNN
def max_recurrent_sigma(projection: str, lam: float = 0.8) -> float:
    """Largest σ_max of ``weight_hh_l0`` after any optimiser step (torch.linalg, direct)."""
    y, _ = synthetic_series(n=600)
    model = create("stable_rnn", horizon=1, lam=lam, projection=projection, hidden=12,
                   seq_len=32, epochs=2, batch_size=8, lr=1e-2)
    sigmas: list[float] = []
    step = model.after_step

    def recording(core):
        step(core)
        W = core.rnn.weight_hh_l0.detach()
        sigmas.append(float(torch.linalg.svdvals(W)[0]))

    model.after_step = recording
    model.fit(y - 10)
    assert len(sigmas) > 5
    return max(sigmas)


def test_stable_rnn_bounds_weight_hh_measured_directly():
    assert max_recurrent_sigma("svd") <= 0.8 + 1e-5


def test_mutation_projection_on_weight_ih_is_rejected(monkeypatch):
    from tsforge.models import stability

    clone = mutated(stability, 'getattr(core.rnn, f"weight_hh_l{i}")',
                    'getattr(core.rnn, f"weight_ih_l{i}")')
    monkeypatch.setattr(stability, "recurrent_matrices", clone.recurrent_matrices)
    sigma = max_recurrent_sigma("svd")
    assert sigma > 0.8 + 1e-3, sigma
