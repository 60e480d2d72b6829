"""Fast window form of DSF: one autograd node per layer, a blocked hand-written backward.

:class:`DSFLayer` computes the same gradient as the plain window form
(:meth:`~tsforge.models.dsf.core.DSFCore.dsf_sequence_reference`: graph-free fused
forward, one batched local step, :class:`~tsforge.models.dsf.scan.FixedFeedback`), with
less work:

- **forward**: the fused kernel runs the layer over the window without a graph (cuDNN
  on a GPU), as in the reference; the states are kept time-major for the backward;
- **backward**: over time-major blocks of positions, from the end of the window, the
  DSF filter ``g_t = e_t + a ⊙ g_{t+1}`` runs through the block (log-depth scan plus
  the decayed first value of the block after it), then the block's gate
  pre-activations are recomputed (two matrix products over its B·k rows) and its local
  derivatives written out (:func:`~tsforge.models.dsf.cells.activations`,
  :func:`~tsforge.models.dsf.cells.deltas`: no autograd, no graph), so the elementwise
  work stays in cache instead of streaming B·T·G·n tensors through memory a dozen
  times; the weight gradients are then one matrix product per weight over all B·T
  positions.  On CUDA the whole window is filtered first by one log-depth scan
  (:func:`~tsforge.models.dsf.scan.reverse_filter_parallel`).

``low`` (a dtype such as ``torch.bfloat16``) runs the matrix products with operands in
that precision and float32 results, while states, gates and gradients stay float32:
what :meth:`~tsforge.models.dsf.core.DSFCore.dsf_sequence` passes under CUDA autocast.
"""

from __future__ import annotations

from typing import Any

from tsforge.models.dsf.cells import activations, deltas, sequence_no_graph
from tsforge.models.dsf.scan import reverse_filter_parallel
from tsforge.optional import require

torch = require("torch", "DSF-trained recurrent models")

#: Bytes of one block of the backward's elementwise work: small enough to stay in cache,
#: large enough that the per-operation overhead of a block stays small (measured, 1 thread).
BLOCK_BYTES = 1 << 23
GATES = {"rnn": 1, "gru": 3, "lstm": 4, "diag": 1}


def _mm(x: Any, w_t: Any, low: Any, bias: Any = None) -> Any:
    """``x @ w_t (+ bias)``; with ``low``, operands in that dtype, the result in ``x``'s."""
    if low is None:
        return x @ w_t if bias is None else torch.addmm(bias, x, w_t)
    out = (x.to(low) @ w_t.to(low)).to(x.dtype)
    return out if bias is None else out + bias


def layer_forward(kind: str, layer: Any, u: Any) -> tuple[Any, Any]:
    """States ``H (T, B, n)`` and, for the LSTM, cell states ``C``, time-major, without a graph.

    ``u (T, B, d)``; the fused kernel runs batch-first (cuDNN on a GPU, in the autocast
    dtype under autocast); the states are returned in ``u``'s dtype (float32).
    """
    h_seq, c_seq = sequence_no_graph(kind, layer, u.transpose(0, 1))
    H = h_seq.transpose(0, 1).to(u.dtype).contiguous()
    return H, None if c_seq is None else c_seq.transpose(0, 1).to(u.dtype).contiguous()


def _filter_block(g: Any, a: Any, start: int, stop: int) -> None:
    """In place, ``g_t <- Σ_{s≥t} a^{s-t} e_s`` for ``start <= t < stop``, given ``g_stop``.

    The block is filtered by the log-depth scan; the rest of the window enters through
    its first filtered value ``g_stop`` as ``a^(stop-t) ⊙ g_stop``.
    """
    stop = min(stop, g.shape[0])
    block = g[start:stop]
    out = reverse_filter_parallel(block.transpose(0, 1), a).transpose(0, 1)
    if stop < g.shape[0]:
        powers = a ** torch.arange(stop - start, 0, -1, dtype=a.dtype, device=a.device)[:, None]
        out = torch.addcmul(out, powers[:, None, :], g[stop][None])
    block.copy_(out)


def layer_backward(kind: str, p: dict[str, Any], u: Any, H: Any, C: Any, e: Any, a: Any,
                   need_input: bool, low: Any = None,
                   parallel_filter: bool | None = None) -> tuple[Any, dict[str, Any]]:
    """Input gradient ``(T, B, d)`` (or None) and parameter gradients from errors ``e (T, B, n)``.

    Block by block from the end of the window: filter the errors (``e`` is overwritten
    by ``g``), recompute the block's gate pre-activations (two matrix products), its
    activations and local derivatives, and store ``δ ⊙ g``; then one matrix product per
    weight over all positions.  ``parallel_filter`` (default: on CUDA) filters the whole
    window first with one log-depth scan instead of block by block.
    """
    T, B, n = H.shape
    G = GATES[kind]
    filtered = not bool(a.any())  # a = 0: fully truncated BPTT, nothing to filter
    if not filtered and (e.is_cuda if parallel_filter is None else parallel_filter):
        e.copy_(reverse_filter_parallel(e.transpose(0, 1), a).transpose(0, 1))
        filtered = True
    prev = torch.cat([H.new_zeros(1, B, n), H[:-1]])
    c_prev = torch.cat([H.new_zeros(1, B, n), C[:-1]]) if kind == "lstm" else None
    D_i = H.new_empty(T, B, G * n)
    D_h = H.new_empty(T, B, G * n) if kind == "gru" else D_i
    d_nu = H.new_zeros(n) if kind == "diag" else None
    nu = p.get("nu")
    step = max(1, BLOCK_BYTES // (H.element_size() * B * G * n * 4))
    for start in reversed(range(0, T, step)):
        sl = slice(start, start + step)
        if not filtered:
            _filter_block(e, a, start, start + step)
        g = e[sl]
        rows = g.shape[0]
        h0 = prev[sl].reshape(rows * B, n)
        state = (h0, c_prev[sl].reshape(rows * B, n)) if kind == "lstm" else h0
        gi = _mm(u[sl].reshape(rows * B, -1), p["weight_ih_l0"].T, low, p["bias_ih_l0"])
        gh = None if kind == "diag" else _mm(h0, p["weight_hh_l0"].T, low, p["bias_hh_l0"])
        _, acts = activations(kind, gi, gh, state, nu)
        out = (D_i[sl].view(rows * B, -1), D_h[sl].view(rows * B, -1) if kind == "gru" else None)
        _, d_h = deltas(kind, acts, state, g.reshape(rows * B, n), out)
        if kind == "diag":
            d_nu += d_h.sum(0)
    Di = D_i.view(T * B, -1)
    grads = {"weight_ih_l0": _mm(Di.T, u.reshape(T * B, -1), low), "bias_ih_l0": Di.sum(0)}
    if kind == "diag":
        grads["nu"] = d_nu
    else:
        Dh = D_h.view(T * B, -1)
        grads["weight_hh_l0"] = _mm(Dh.T, prev.view(T * B, n), low)
        grads["bias_hh_l0"] = Dh.sum(0)
    d_u = _mm(Di, p["weight_ih_l0"], low).view(T, B, -1) if need_input else None
    return d_u, grads


class DSFLayer(torch.autograd.Function):
    """One recurrent layer over a window: forward = the recurrence, backward = DSF.

    ``apply(u, a, kind, layer, names, low, *params)``: ``layer`` is the fused module (or
    :class:`~tsforge.models.dsf.cells.DiagSSM`) whose parameters ``params`` are, by
    ``names``; ``u (B, T, d)``; returns ``h (B, T, n)`` (a time-major tensor seen
    batch-first).  Its gradients are those of the local step
    behind :class:`~tsforge.models.dsf.scan.FixedFeedback` with feedback ``a``.
    """

    @staticmethod
    def forward(ctx, u: Any, a: Any, kind: str, layer: Any, names: tuple[str, ...], low: Any,
                *params: Any) -> Any:
        u_tm = u.detach().transpose(0, 1).contiguous()
        H, C = layer_forward(kind, layer, u_tm)
        ctx.kind, ctx.names, ctx.low, ctx.a = kind, names, low, a.detach()
        ctx.p = dict(zip(names, (w.detach() for w in params), strict=True))
        ctx.u, ctx.H, ctx.C = u_tm, H, C
        return H.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad: Any) -> tuple[Any, ...]:
        e = grad.transpose(0, 1).contiguous()
        if e.data_ptr() == grad.data_ptr():
            e = e.clone()  # the filter writes in place
        d_u, grads = layer_backward(ctx.kind, ctx.p, ctx.u, ctx.H, ctx.C, e,
                                    ctx.a.to(e.dtype), ctx.needs_input_grad[0], ctx.low)
        d_u = None if d_u is None else d_u.transpose(0, 1)
        return (d_u, None, None, None, None, None, *(grads[k] for k in ctx.names))
