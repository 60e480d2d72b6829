"""Diagonal linear filters over time: the DSF backward filter and its forward twin.

Backward (the DSF error filter): ``g_t = e_t + a ⊙ g_{t+1}`` with a fixed
``a`` of shape ``(n,)`` and errors ``e`` of shape ``(B, T, n)`` (time on axis 1).
Forward (used to run diagonal recurrences without a Python loop):
``c_t = f_t ⊙ c_{t-1} + u_t`` with a per-step decay ``f`` of shape ``(B, T, n)``.

Both parallel forms are Hillis–Steele doubling scans: after round r every
position holds the filtered sum of the 2^r nearest terms, combined as
``g_t += a^(2^r) ⊙ g_{t+2^r}`` (backward) or ``c_t += F_t ⊙ c_{t-2^r}``,
``F_t *= F_{t-2^r}`` (forward).  Depth ``ceil(log2 T)``, work O(n T log T),
and no division by powers of the decay, which overflows when a decay is small.
The plain loops over time are kept as the references the scans are tested
against.
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
    """Log-depth parallel computation of the same filter (no Python loop over time).

    Two buffers are used in turn and every round writes with ``out=``, so a round
    costs one pass over memory and allocates nothing.
    """
    T = e.shape[1]
    g, buf = e.clone(), torch.empty_like(e)
    power = a.clone()  # a^(2^r)
    shift = 1
    while shift < T:
        # g_t <- g_t + a^shift * g_{t+shift}  (positions past the end contribute 0)
        torch.addcmul(g[:, : T - shift], power, g[:, shift:], out=buf[:, : T - shift])
        buf[:, T - shift :] = g[:, T - shift :]
        g, buf = buf, g
        power = power * power
        shift *= 2
    return g


def forward_filter_sequential(u: torch.Tensor, f: torch.Tensor,
                              c0: torch.Tensor | None = None) -> torch.Tensor:
    """Reference: ``c_t = f_t ⊙ c_{t-1} + u_t`` by a loop over time (``c_{-1} = c0`` or 0)."""
    f = f.expand_as(u)
    c = torch.zeros_like(u[:, 0]) if c0 is None else c0
    out = torch.empty_like(u)
    for t in range(u.shape[1]):
        c = f[:, t] * c + u[:, t]
        out[:, t] = c
    return out


def forward_filter_parallel(u: torch.Tensor, f: torch.Tensor,
                            c0: torch.Tensor | None = None) -> torch.Tensor:
    """Log-depth computation of ``c_t = f_t ⊙ c_{t-1} + u_t``; ``u (B, T, n)``, ``f`` broadcastable.

    After the scan ``F_t = f_0 ⋯ f_t``, so the initial state enters as ``F_t ⊙ c0``.
    """
    T = u.shape[1]
    F = f.expand_as(u)
    if torch.is_grad_enabled() and (u.requires_grad or F.requires_grad):
        c, shift = u, 1  # differentiable form (BPTT through the scan): fresh tensors per round
        while shift < T:
            c = torch.cat([c[:, :shift], c[:, shift:] + F[:, shift:] * c[:, :-shift]], dim=1)
            F = torch.cat([F[:, :shift], F[:, shift:] * F[:, :-shift]], dim=1)
            shift *= 2
        return c if c0 is None else c + F * c0[:, None]
    c, c_buf = u.clone(), torch.empty_like(u)
    F, f_buf = F.clone(), torch.empty_like(u)
    shift = 1
    while shift < T:
        torch.addcmul(c[:, shift:], F[:, shift:], c[:, :-shift], out=c_buf[:, shift:])
        c_buf[:, :shift] = c[:, :shift]
        torch.mul(F[:, shift:], F[:, :-shift], out=f_buf[:, shift:])
        f_buf[:, :shift] = F[:, :shift]
        c, c_buf, F, f_buf = c_buf, c, f_buf, F
        shift *= 2
    return c if c0 is None else c + F * c0[:, None]


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
        if not bool(a.any()):
            return grad, None  # a = 0: fully truncated BPTT, nothing to filter
        return reverse_filter_parallel(grad, a.to(grad.dtype)), None
