"""The DSF streaming core: stacked recurrences with a DSF training forward.

Window form of DSF, per layer (Caillon, Fagnou & Allauzen 2025, §3), as the plain
reference form :meth:`DSFCore.dsf_sequence_reference` computes it (the training
forward :meth:`DSFCore.dsf_sequence` gets the same gradients with less work, see
:mod:`tsforge.models.dsf.window`):

1. the fused PyTorch kernel runs the layer over the window without a graph
   (:func:`~tsforge.models.dsf.cells.sequence_no_graph`; the LSTM's cell states
   and the diagonal SSM come from a parallel scan);
2. the previous states are shifted in and the cell is recomputed for all B·T
   positions at once, as one batched *local* step whose only graph is that step;
3. :class:`~tsforge.models.dsf.scan.FixedFeedback` replaces the state errors
   reaching that step by ``g_t = e_t + a ⊙ g_{t+1}`` (parallel scan), so the
   parameters and the layer's input (hence lower layers) receive DSF-filtered
   signals.

Stacking follows the reference design: residual connections between layers
(``y^l = h^l + y^{l-1}`` for ``l >= 1``) and, as an option, a layer norm on the
input of every layer above the first (pre-norm).  For the LSTM the reference
feeds back the state ``[h, c]`` with a diagonal ``A`` of size 2n; the loss reads
only ``h`` and a diagonal ``A`` never mixes ``h`` into ``c``, so the ``c`` errors
stay zero and only the ``h`` half acts: the feedback here is of size n.
Inference is the ordinary recurrence, so export and streaming are unchanged.
"""

from __future__ import annotations

from typing import Any

from tsforge.models.dsf.cells import cell_step, make_layer, sequence_no_graph
from tsforge.models.dsf.scan import FixedFeedback
from tsforge.models.dsf.window import DSFLayer
from tsforge.optional import require

torch = require("torch", "DSF-trained recurrent models")
nn = torch.nn


class DSFCore(nn.Module):
    """Stacked single-layer recurrences, optional residual/layer norm, and an H-step head.

    State ``(B, layers * S)`` with ``S = n`` (``2n`` for the LSTM: hidden then cell).
    """

    def __init__(self, kind: str, n_channels: int, hidden: int, layers: int, horizon: int,
                 a: torch.Tensor, residual: bool, layer_norm: bool) -> None:
        super().__init__()
        self.kind, self.hidden, self.n_layers, self.residual = kind, hidden, layers, residual
        self.rnns = nn.ModuleList(make_layer(kind, n_channels if i == 0 else hidden, hidden, a)
                                  for i in range(layers))
        self.norms = (nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers - 1))
                      if layer_norm and layers > 1 else None)
        self.head = nn.Linear(hidden, horizon)
        self.register_buffer("a", a)

    @property
    def per_layer(self) -> int:
        return self.hidden * (2 if self.kind == "lstm" else 1)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.n_layers * self.per_layer)

    def layer_feedback(self, i: int) -> torch.Tensor:
        """Feedback ``a`` of layer ``i``: the fixed buffer, or the diagonal SSM's own rates."""
        return self.rnns[i].a.detach() if self.kind == "diag" else self.a

    def layer_state(self, state: torch.Tensor, i: int) -> Any:
        """Layer ``i``'s slice of ``state`` as the fused module expects it (``(1, B, n)``)."""
        s = state[:, i * self.per_layer : (i + 1) * self.per_layer]
        if self.kind != "lstm":
            return s[None].contiguous()
        return s[None, :, : self.hidden].contiguous(), s[None, :, self.hidden :].contiguous()

    def _layer_input(self, inp: torch.Tensor, i: int) -> torch.Tensor:
        return self.norms[i - 1](inp) if self.norms is not None and i > 0 else inp

    def forward_sequence(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
        """Ordinary inference: ``x (B, T, C)`` -> forecasts ``(B, T, H)``, final state."""
        finals, inp = [], x
        for i, rnn in enumerate(self.rnns):
            out, last = rnn(self._layer_input(inp, i), self.layer_state(state, i))
            finals.append(torch.cat(last, -1)[0] if self.kind == "lstm" else last[0])
            inp = out + inp if self.residual and i > 0 else out
        return self.head(inp), torch.cat(finals, dim=1)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        y, new_state = self.forward_sequence(x_t[:, None, :], state)
        return y[:, 0], new_state

    def dsf_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Training forward whose backward is DSF: forecasts ``(B, T, H)`` from zero state.

        Each layer is one :class:`~tsforge.models.dsf.window.DSFLayer` node (its own
        forward loop and a hand-written DSF backward); the gradients equal
        :meth:`dsf_sequence_reference`'s.  Under CUDA autocast the layers' matrix
        products take the autocast dtype with float32 results and states.
        """
        low = (torch.get_autocast_dtype("cuda")
               if x.is_cuda and torch.is_autocast_enabled("cuda") else None)
        inp = x
        for i, rnn in enumerate(self.rnns):
            names, params = zip(*rnn.named_parameters(), strict=True)
            u = self._layer_input(inp, i)
            out = DSFLayer.apply(u.float() if low is not None else u, self.layer_feedback(i),
                                 self.kind, rnn, names, low, *params)
            inp = out + inp if self.residual and i > 0 else out
        return self.head(inp)

    def dsf_sequence_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The plain window form, kept as the reference :meth:`dsf_sequence` is tested against.

        Fused graph-free forward, one batched local step through autograd, and
        :class:`~tsforge.models.dsf.scan.FixedFeedback` on its output.
        """
        B, T, _ = x.shape
        inp = x
        for i, rnn in enumerate(self.rnns):
            u = self._layer_input(inp, i)  # (B, T, d)
            h_seq, c_seq = sequence_no_graph(self.kind, rnn, u.detach())
            zero = torch.zeros_like(h_seq[:, :1])
            prev = torch.cat([zero, h_seq[:, :-1]], 1).reshape(B * T, -1)
            if self.kind == "lstm":
                prev = (prev, torch.cat([zero, c_seq[:, :-1]], 1).reshape(B * T, -1))
            params = dict(rnn.named_parameters())
            local = cell_step(self.kind, params, u.reshape(B * T, -1), prev)
            h = (local[0] if self.kind == "lstm" else local).reshape(B, T, -1)
            out = FixedFeedback.apply(h, self.layer_feedback(i))
            inp = out + inp if self.residual and i > 0 else out
        return self.head(inp)

    def bptt_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Same forecasts with an ordinary graph through time (exact BPTT), for comparisons."""
        return self.forward_sequence(x, self.initial_state(x.shape[0]).to(x))[0]
