"""Streaming (trace) form of DSF: the same gradient as the window form, online, constant memory.

Swapping the two sums of the DSF parameter gradient (ALGORITHMS.md §1.6)::

    Σ_t g_t ∂h_t/∂θ|local = Σ_t Σ_{s≥t} e_s a^{s-t} ∂h_t/∂θ|local = Σ_s e_s · P_s,
    P_s = a ⊙ P_{s-1} + ∂h_s/∂θ|local

turns the anti-causal error filter into a causal eligibility trace ``P``.  The
cells are unit-local (a parameter in row ``g·n + i`` reaches only unit ``i`` in
one step), so ``P`` has exactly the shape of the layer's parameters: entry ``k``
decays with the rate of its unit ``unit[k]``.  The local Jacobian of one step is
the gradient of ``Σ_i h_i`` (each parameter touches one unit), one backward pass
to the gate pre-activations.

Stacked layers: the input of layer ``l`` is the output ``y`` of layer ``l-1`` (after
an optional layer norm), whose own influence ``M(y)`` on lower parameters is
known, so layer ``l`` keeps a *cross* trace per lower block::

    C_s = a ⊙ C_{s-1} + (∂h_s/∂u_s|local) · M(u_s)      shape (n, p_lower)

These are dense (the n×n input Jacobian mixes units), so a stack costs
O(n·p_lower) memory and O(n²·p_lower) time per reading; a single layer needs
only its own trace, O(p).  Residual connections add ``M(y^{l-1})`` to
``M(y^l)`` unfiltered.  With frozen parameters the gradients equal the window
form's exactly (tests/test_dsf_trace.py).
"""

from __future__ import annotations

from typing import Any

from tsforge.models.dsf.cells import activations, deltas, pre_activations
from tsforge.optional import require

torch = require("torch", "the DSF trace form")


def unit_index(params: dict[str, Any], n: int) -> Any:
    """For each flattened parameter entry, the unit it reaches within one step, ``(p,)``."""
    parts = []
    for value in params.values():
        rows = torch.arange(value.shape[0]) % n
        parts.append(rows.repeat_interleave(value[0].numel() if value.dim() > 1 else 1))
    return torch.cat(parts)


class TraceForm:
    """Eligibility traces of a :class:`~tsforge.models.dsf.core.DSFCore` for ``batch`` streams.

    ``step`` advances the core state and the traces by one reading; ``gradient``
    turns the errors on the top layer's output into parameter gradients.  The
    parameters are read at every step (they may change between steps, as in any
    online learner; the equality with the window form holds while they are frozen).
    """

    def __init__(self, core: Any, batch: int, dtype: Any = None) -> None:
        self.core, self.batch = core, batch
        self.dtype = dtype or next(core.parameters()).dtype
        self.n = core.hidden
        self.units = [unit_index(dict(layer.named_parameters()), self.n) for layer in core.rnns]
        #: block -> (parameter names in the core, shapes), in the order of the flat traces
        self.layout = {}
        blocks = [(f"rnn{i}", f"rnns.{i}", m) for i, m in enumerate(core.rnns)]
        blocks += [(f"norm{i + 1}", f"norms.{i}", m) for i, m in enumerate(core.norms or ())]
        for block, prefix, module in blocks:
            named = list(module.named_parameters())
            self.layout[block] = ([f"{prefix}.{k}" for k, _ in named], [v.shape for _, v in named])
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Zero traces (the stream restarts or parameters were reloaded)."""
        B, dt = self.batch, self.dtype
        self.own = [torch.zeros(B, u.numel(), dtype=dt) for u in self.units]
        self.cross: list[dict[str, Any]] = [{} for _ in self.units]

    def state_dict(self) -> dict[str, Any]:
        out = {f"own{i}": p for i, p in enumerate(self.own)}
        for i, blocks in enumerate(self.cross):
            out.update({f"cross{i}/{b}": c for b, c in blocks.items()})
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        for key, value in state.items():
            t = torch.as_tensor(value, dtype=self.dtype)
            if key.startswith("own"):
                self.own[int(key[3:])] = t
            else:
                layer, block = key[len("cross"):].split("/", 1)
                self.cross[int(layer)][block] = t

    # ------------------------------------------------------------------ one reading
    def _out_influence(self, i: int, m_prev: dict[str, Any]) -> dict[str, Any]:
        """Influence ``M(y^i)`` of every lower block on layer ``i``'s output, from the traces.

        ``m_prev`` is ``M(y^{i-1})``.  The top layer's own block stays in its sparse
        trace (see :meth:`gradient`).
        """
        m = dict(self.cross[i])
        if i < len(self.core.rnns) - 1:
            m[f"rnn{i}"] = self._dense(i)
        if self.core.residual and i > 0:
            for block, prev in m_prev.items():
                m[block] = m[block] + prev if block in m else prev
        return m

    def _dense(self, i: int) -> Any:
        """Own trace of layer ``i`` as its influence on the layer output, ``(B, n, p)``."""
        own = self.own[i]
        dense = torch.zeros(own.shape[0], self.n, own.shape[1], dtype=own.dtype)
        index = self.units[i].view(1, 1, -1).expand(own.shape[0], 1, -1)
        return dense.scatter_(1, index, own[:, None])

    def step(self, x_t: Any, state: Any) -> tuple[Any, Any]:
        """Read ``x_t (B, C)`` from ``state (B, S)``; returns top output ``(B, n)``, new state."""
        core = self.core
        inp, m_inp = x_t.to(self.dtype), {}
        finals = []
        for i, layer in enumerate(core.rnns):
            u, m_u = inp, m_inp
            if core.norms is not None and i > 0:
                u, m_u = self._norm(i, inp, m_inp)
            prev = core.layer_state(state, i)
            prev = tuple(s[0].to(self.dtype) for s in prev) if core.kind == "lstm" else \
                prev[0].to(self.dtype)
            params = {k: v.detach().to(self.dtype) for k, v in layer.named_parameters()}
            out, local, j_in = self._local(params, u, prev, need_input=bool(m_u))
            h = out[0] if core.kind == "lstm" else out
            finals.append(torch.cat(out, -1) if core.kind == "lstm" else out)
            a = core.layer_feedback(i).to(self.dtype)
            self.own[i] = a[self.units[i]] * self.own[i] + local
            for block, m in m_u.items():
                c = self.cross[i].get(block)
                self.cross[i][block] = j_in @ m if c is None else a[:, None] * c + j_in @ m
            m_inp = self._out_influence(i, m_inp)
            inp = h + inp if core.residual and i > 0 else h
        return inp, torch.cat(finals, dim=1).to(state.dtype)

    def _local(self, params: dict[str, Any], u: Any, prev: Any,
               need_input: bool) -> tuple[Any, Any, Any]:
        """Per stream: new state, local Jacobian entries ``(B, p)``, input Jacobian ``(B, n, d)``.

        The local derivatives ``δ = ∂h_unit/∂pre`` are written out by hand
        (:func:`~tsforge.models.dsf.cells.deltas`, the same as the window form's backward);
        the weight entries are then ``δ ⊗ input`` and the input Jacobian is
        ``Σ_g δ_g ⊙ W_ih[g]`` (only ``need_input``: lower blocks exist).
        """
        kind, n = self.core.kind, self.n
        gi, gh = pre_activations(kind, params, u, prev)
        out, acts = activations(kind, gi, gh, prev, params.get("nu"))
        d_gi, d_gh = deltas(kind, acts, prev)
        local = {"weight_ih_l0": d_gi[:, :, None] * u[:, None, :], "bias_ih_l0": d_gi}
        if kind == "diag":
            local["nu"] = d_gh
        else:
            h_prev = prev[0] if kind == "lstm" else prev
            local["weight_hh_l0"] = d_gh[:, :, None] * h_prev[:, None, :]
            local["bias_hh_l0"] = d_gh
        flat = torch.cat([local[name].reshape(u.shape[0], -1) for name in params], dim=1)
        if not need_input:
            return out, flat, None
        w_ih = params["weight_ih_l0"]
        j_in = (d_gi[:, :, None] * w_ih).reshape(u.shape[0], -1, n, w_ih.shape[1]).sum(1)
        return out, flat, j_in

    def _norm(self, i: int, inp: Any, m_inp: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Layer norm before layer ``i``: its output and influences (incl. its own parameters).

        ``u = γ ⊙ x̂ + β`` with ``x̂ = (x - mean) / σ``, so
        ``∂u/∂x = diag(γ) (I - 1/n - x̂ x̂ᵀ/n) / σ``, ``∂u/∂γ = diag(x̂)``, ``∂u/∂β = I``.
        """
        norm = self.core.norms[i - 1]
        gamma = norm.weight.detach().to(self.dtype)
        beta = norm.bias.detach().to(self.dtype)
        n = inp.shape[1]
        centred = inp - inp.mean(1, keepdim=True)
        sigma = torch.sqrt(centred.pow(2).mean(1, keepdim=True) + norm.eps)  # (B, 1)
        xhat = centred / sigma
        eye = torch.eye(n, dtype=self.dtype)
        j_x = gamma[None, :, None] * (eye - 1.0 / n - xhat[:, :, None] * xhat[:, None, :] / n)
        j_x = j_x / sigma[:, :, None]
        m_u = {block: j_x @ m for block, m in m_inp.items()}
        m_u[f"norm{i}"] = torch.cat([torch.diag_embed(xhat), eye.expand(inp.shape[0], n, n)],
                                    dim=2)
        return gamma * xhat + beta, m_u

    # ------------------------------------------------------------------ gradient
    def gradient(self, e: Any) -> dict[str, Any]:
        """Gradients from errors ``e (B, n)`` on the top output at the last step, by parameter name.

        Keys are the core's parameter names (the head is not included: its gradient
        is immediate).  Sum these over the steps of a window to get the window form's
        gradient.
        """
        core = self.core
        e = e.to(self.dtype)
        top = len(core.rnns) - 1
        m_top: dict[str, Any] = {}
        for i in range(top + 1):
            m_top = self._out_influence(i, m_top)
        flat = {f"rnn{top}": (e[:, self.units[top]] * self.own[top]).sum(0)}
        for block, m in m_top.items():
            flat[block] = torch.einsum("bi,bip->p", e, m)
        out = {}
        for block, g in flat.items():
            names, shapes = self.layout[block]
            for name, shape, part in zip(names, shapes, g.split([s.numel() for s in shapes]),
                                         strict=True):
                out[name] = part.view(shape)
        return out
