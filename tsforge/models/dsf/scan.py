"""The DSF backward filter ``g_t = e_t + a ⊙ g_{t+1}``: parallel scan and sequential reference.

``e`` has shape ``(B, T, n)`` (time on axis 1) and ``a`` shape ``(n,)`` with
entries in [0, 1].  The parallel form is a Hillis–Steele doubling scan over
reversed time: after round r every position holds the filtered sum of the next
2^r errors, combined as ``g_t += a^(2^r) ⊙ g_{t+2^r}``.  Depth ``ceil(log2 T)``,
work O(n T log T), and no division by powers of ``a`` (which would overflow for
small ``a``).
"""

from __future__ import annotations

from tsforge.optional import require

torch = require("torch", "the DSF backward filter")


def reverse_filter_sequential(e: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Reference: the plain backward loop over time."""
    g = torch.empty_like(e)
    carry = torch.zeros_like(e[:, 0])
    for t in range(e.shape[1] - 1, -1, -1):
        carry = e[:, t] + a * carry
        g[:, t] = carry
    return g


def reverse_filter_parallel(e: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Log-depth parallel computation of the same filter (no Python loop over time)."""
    T = e.shape[1]
    g = e.clone()
    power = a.clone()  # a^(2^r)
    shift = 1
    while shift < T:
        # g_t <- g_t + a^shift * g_{t+shift}  (positions past the end contribute 0)
        g = torch.cat([g[:, : T - shift] + power * g[:, shift:], g[:, T - shift :]], dim=1)
        power = power * power
        shift *= 2
    return g


class FixedFeedback(torch.autograd.Function):
    """Identity forward; backward replaces the incoming state errors by the DSF filter.

    Place it on the sequence of hidden states that feeds a *local* (one-step)
    recomputation: the gradients flowing into the local graph then become
    ``g_t = e_t + a ⊙ g_{t+1}`` instead of BPTT's ``e_t + g_{t+1} J_{t+1}``.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (a,) = ctx.saved_tensors
        return reverse_filter_parallel(grad, a), None
