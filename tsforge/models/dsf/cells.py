"""Cells of the DSF stacks as pure functions, the diagonal SSM layer, and feedback choices.

Every cell is written once as :func:`cell_step`, a function of its parameters
(a dict named like PyTorch's fused modules: ``weight_ih_l0`` …), its input and
its previous state.  The window form calls it once on all B·T positions (the
*local* step), the trace form differentiates it per reading, and the fused
PyTorch kernels use the same parameters for the graph-free sequence forward.

Each cell is *unit-local*: a parameter in row ``g·n + i`` of a gate matrix (or
bias) reaches only unit ``i`` within one step, which is what lets the trace form
keep one eligibility trace per parameter.
"""

from __future__ import annotations

import math
from typing import Any

from tsforge.errors import ConfigError
from tsforge.models.dsf.scan import forward_filter_parallel
from tsforge.optional import require

torch = require("torch", "DSF-trained recurrent models")
nn = torch.nn

FEEDBACKS = ("linspace", "logspace", "zero")
CELL_KINDS = ("rnn", "gru", "lstm", "diag")


def feedback(kind: str, n: int, seq_len: int) -> torch.Tensor:
    """The fixed diagonal feedback ``a`` (n decay rates in [0, 1)).

    - ``"linspace"``: evenly spread rates ``0, 1/n, …, (n-1)/n`` (the reference choice);
    - ``"logspace"``: time constants ``τ`` from 1 to ``seq_len`` spaced geometrically,
      ``a = exp(-1/τ)``: more units remember long, as slow sensor dynamics need;
    - ``"zero"``: ``a = 0``, no error carried back in time: fully truncated BPTT
      (FT-BPTT) computed by the same code path, the baseline DSF improves on.
    """
    if kind == "linspace":
        return torch.linspace(0.0, 1.0, n + 1)[:-1]
    if kind == "logspace":
        tau = torch.logspace(0.0, math.log10(max(seq_len, 2)), n)
        return torch.exp(-1.0 / tau)
    if kind == "zero":
        return torch.zeros(n)
    raise ConfigError(f"feedback '{kind}' unknown; valid: {', '.join(FEEDBACKS)}")


def pre_activations(kind: str, p: dict[str, torch.Tensor], x: torch.Tensor,
                    state: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Input-side and state-side gate pre-activations ``(N, G·n)`` of one step.

    The diagonal SSM has no state-side matrix (``None``).
    """
    gi = x @ p["weight_ih_l0"].T + p["bias_ih_l0"]
    if kind == "diag":
        return gi, None
    h = state[0] if kind == "lstm" else state
    return gi, h @ p["weight_hh_l0"].T + p["bias_hh_l0"]


def cell_from_pre(kind: str, gi: torch.Tensor, gh: torch.Tensor | None, state: Any,
                  nu: torch.Tensor | None = None) -> Any:
    """The new state from the pre-activations (``nu``: the diagonal SSM's rate logits)."""
    if kind == "diag":
        a = torch.sigmoid(nu)
        return a * state + (1 - a) * torch.tanh(gi)
    if kind == "rnn":
        return torch.tanh(gi + gh)
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, -1)
        c_new = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_new), c_new
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    return (1 - z) * torch.tanh(i_n + r * h_n) + z * state


def cell_step(kind: str, p: dict[str, torch.Tensor], x: torch.Tensor, state: Any) -> Any:
    """One step of cell ``kind`` for a batch of positions ``x (N, d)``.

    ``p`` holds the layer's parameters by name; ``state`` is ``h (N, n)``, or
    ``(h, c)`` for the LSTM (which returns ``(h, c)``).
    """
    gi, gh = pre_activations(kind, p, x, state)
    return cell_from_pre(kind, gi, gh, state, p.get("nu"))


class DiagSSM(nn.Module):
    """Diagonal linear recurrence ``h_t = a ⊙ h_{t-1} + (1 - a) ⊙ tanh(W x_t + b)``.

    ``a = sigmoid(ν)`` is trained (one rate per unit, kept in (0, 1)); the
    ``(1 - a)`` gain keeps ``|h| <= 1``.  Its state Jacobian is ``diag(a)`` at every
    step, so DSF with feedback ``a`` is exactly BPTT.  The sequence forward is a
    parallel scan (no loop over time); the call signature mirrors ``nn.RNN``.
    """

    def __init__(self, input_size: int, hidden_size: int, a_init: torch.Tensor) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(hidden_size, input_size))
        self.bias_ih_l0 = nn.Parameter(torch.zeros(hidden_size))
        nn.init.xavier_uniform_(self.weight_ih_l0)
        a = a_init.clamp(0.01, 0.999)
        self.nu = nn.Parameter(torch.log(a) - torch.log1p(-a))

    @property
    def a(self) -> torch.Tensor:
        return torch.sigmoid(self.nu)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                               torch.Tensor]:
        """``x (B, T, d)``, ``h0 (1, B, n)`` -> outputs ``(B, T, n)``, final state ``(1, B, n)``."""
        a = self.a
        u = (1 - a) * torch.tanh(x @ self.weight_ih_l0.T + self.bias_ih_l0)  # (B, T, n)
        if x.shape[1] == 1:  # streaming step: plain arithmetic (what ONNX export traces)
            h = u if h0 is None else a * h0[0][:, None] + u
        else:
            h = forward_filter_parallel(u, a, None if h0 is None else h0[0])
        return h, h[:, -1][None]


def make_layer(kind: str, n_in: int, n: int, a_init: torch.Tensor) -> nn.Module:
    """One single-layer recurrence of ``kind`` (fused PyTorch module or :class:`DiagSSM`)."""
    if kind == "diag":
        return DiagSSM(n_in, n, a_init)
    fused = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
    layer = fused(n_in, n, batch_first=True)
    with torch.no_grad():
        for block in layer.weight_hh_l0.chunk(layer.weight_hh_l0.shape[0] // n):
            nn.init.orthogonal_(block)
        nn.init.xavier_uniform_(layer.weight_ih_l0)
        layer.bias_ih_l0.zero_()
        layer.bias_hh_l0.zero_()
    return layer


def sequence_no_graph(kind: str, layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """States ``h_1..h_T`` (and ``c_1..c_T`` for the LSTM) from zero, without a graph.

    The fused kernel returns only ``h`` for the LSTM; its cell states follow from
    ``h`` in parallel: the gates at every step depend on ``(x_t, h_{t-1})`` only, and
    ``c_t = σ(f_t) ⊙ c_{t-1} + σ(i_t) ⊙ tanh(g_t)`` is a diagonal linear recurrence
    with a time-varying decay, run by :func:`forward_filter_parallel`.
    """
    with torch.no_grad():
        h_seq, _ = layer(x)
        if kind != "lstm":
            return h_seq, None
        h_prev = torch.cat([torch.zeros_like(h_seq[:, :1]), h_seq[:, :-1]], 1)
        pre = (x @ layer.weight_ih_l0.T + layer.bias_ih_l0 + h_prev @ layer.weight_hh_l0.T
               + layer.bias_hh_l0)
        i, f, g, _ = pre.chunk(4, -1)
        c_seq = forward_filter_parallel(torch.sigmoid(i) * torch.tanh(g), torch.sigmoid(f))
        return h_seq, c_seq



def activations(kind: str, gi: torch.Tensor, gh: torch.Tensor | None, state: Any,
                nu: torch.Tensor | None = None) -> tuple[Any, tuple[torch.Tensor, ...]]:
    """New state and the activations :func:`deltas` needs, from the pre-activations.

    ``rnn``: ``(h,)``; ``gru``: ``(σ[r z], tanh candidate, W_hn h + b_hn)``; ``lstm``:
    ``([σi σf tanh g σo], tanh c)``; ``diag``: ``(tanh(W x + b), a)``.  The window form's
    forward loop stores the same tensors for all steps.
    """
    if kind == "diag":
        a, th = torch.sigmoid(nu), torch.tanh(gi)
        return a * state + (1 - a) * th, (th, a)
    if kind == "rnn":
        h = torch.tanh(gi + gh)
        return h, (h,)
    if kind == "lstm":
        n = gi.shape[-1] // 4
        act = torch.sigmoid(gi + gh)
        act[..., 2 * n : 3 * n] = torch.tanh((gi + gh)[..., 2 * n : 3 * n])
        c = act[..., n : 2 * n] * state[1] + act[..., :n] * act[..., 2 * n : 3 * n]
        tc = torch.tanh(c)
        return (act[..., 3 * n :] * tc, c), (act, tc)
    n = gi.shape[-1] // 3
    rz = torch.sigmoid(gi[..., : 2 * n] + gh[..., : 2 * n])
    h_n = gh[..., 2 * n :]
    cand = torch.tanh(gi[..., 2 * n :] + rz[..., :n] * h_n)
    return torch.lerp(cand, state, rz[..., n:]), (rz, cand, h_n)


def deltas(kind: str, acts: tuple[torch.Tensor, ...], state: Any, scale: Any = None,
           out: tuple[Any, Any] = (None, None)) -> tuple[torch.Tensor, torch.Tensor]:
    """Derivatives of each unit's new ``h`` by its own pre-activations, written out by hand.

    Returns ``(δ_i, δ_h)`` with ``δ_i[:, g·n + k] = ∂h_k/∂gi[:, g·n + k]`` and the same for
    ``gh`` (for the diagonal SSM, ``δ_h = ∂h/∂ν``).  The cells are unit-local, so these
    vectors are the whole local Jacobian: the trace form uses them one reading at a
    time, the window form's backward for all positions (no autograd in either).
    ``scale`` (shape of ``h``) multiplies every gate's derivative of unit ``k`` by
    ``scale[..., k]``: the window form passes the filtered errors, so the result is the
    pre-activation gradient; ``out`` receives ``δ_i`` and ``δ_h`` (except the diagonal
    SSM's ``δ_h``, returned as a new tensor).
    """
    one = 1.0 if scale is None else scale
    if kind == "diag":
        th, a = acts
        return (torch.mul(one * (1 - a), 1 - th * th, out=out[0]),
                (state - th) * a * (1 - a) * one)
    if kind == "rnn":
        d = torch.mul(one, 1 - acts[0] * acts[0], out=out[0])
        return d, d
    if kind == "lstm":
        act, tc = acts
        si, sf, tg, so = act.chunk(4, -1)
        dc = one * so * (1 - tc * tc)
        d = _join([dc * tg * si * (1 - si), dc * state[1] * sf * (1 - sf),
                   dc * si * (1 - tg * tg), one * tc * so * (1 - so)], out[0])
        return d, d
    rz, cand, h_n = acts
    n = cand.shape[-1]
    r, z = rz[..., :n], rz[..., n:]
    d_n = (one * (1 - z)) * (1 - cand * cand)
    d_hn = d_n * r
    d_r, d_z = d_hn * h_n * (1 - r), one * (state - cand) * z * (1 - z)
    return _join([d_r, d_z, d_n], out[0]), _join([d_r, d_z, d_hn], out[1])


def _join(parts: list[torch.Tensor], out: Any) -> torch.Tensor:
    """``parts`` side by side on the last axis, into ``out`` when given (no slow ``cat(out=)``)."""
    if out is None:
        return torch.cat(parts, -1)
    start = 0
    for part in parts:
        out[..., start : start + part.shape[-1]].copy_(part)
        start += part.shape[-1]
    return out
