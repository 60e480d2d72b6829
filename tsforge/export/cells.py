"""A leaner graph for the exported step of recurrent models: the same math as cells.

``nn.GRU``/``nn.LSTM``/``nn.RNN`` run on a one-step sequence export to the ONNX
recurrent operators wrapped in reshapes and transposes; onnxruntime executes those
operators well for long sequences but a streaming step is a single time step.  The
equivalent ``nn.GRUCell``/``nn.LSTMCell``/``nn.RNNCell`` export to two ``Gemm`` and a
few element-wise nodes, which onnxruntime runs faster at every batch size (see
``benchmarks/edge_latency.py``).  :func:`step_module` builds that equivalent module
from a fitted core with the very same weights and state layout; export checks it
against the original core, so the rewrite is verified on every export.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}


def _cell(kind: str, rnn: nn.Module, layer: int) -> nn.Module:
    """The ``layer``-th layer of ``rnn`` as a cell module holding copies of its weights."""
    extra = {"nonlinearity": rnn.nonlinearity} if kind == "rnn" else {}
    n_in = getattr(rnn, f"weight_ih_l{layer}").shape[1]
    cell = CELLS[kind](n_in, rnn.hidden_size, bias=rnn.bias, **extra)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ()):
            getattr(cell, name).copy_(getattr(rnn, f"{name}_l{layer}"))
    return cell


class CellStep(nn.Module):
    """``forward(x (B, C), state (B, S)) -> (forecast (B, H), state)`` built from cells.

    Parameters
    ----------
    kind
        ``"rnn"``, ``"gru"`` or ``"lstm"``.
    cells
        One cell per layer, bottom first.
    head
        The linear H-step head.
    layout
        ``"stacked"``: state ``[h_1..h_L, c_1..c_L]`` (:class:`RecurrentCore`);
        ``"per_layer"``: ``[h_1, c_1, ..., h_L, c_L]`` (DSF cores).
    residual
        Add each layer's input to its output from the second layer on (DSF option).
    """

    def __init__(self, kind: str, cells: list[nn.Module], head: nn.Module, layout: str,
                 residual: bool = False) -> None:
        super().__init__()
        self.kind, self.layout, self.residual = kind, layout, residual
        self.cells = nn.ModuleList(cells)
        self.head = head
        self.n = cells[0].hidden_size

    def _slices(self, layer: int) -> tuple[slice, slice | None]:
        n, L = self.n, len(self.cells)
        if self.kind != "lstm":
            return slice(layer * n, (layer + 1) * n), None
        if self.layout == "stacked":
            return slice(layer * n, (layer + 1) * n), slice((L + layer) * n, (L + layer + 1) * n)
        return slice(2 * layer * n, (2 * layer + 1) * n), slice((2 * layer + 1) * n,
                                                               (2 * layer + 2) * n)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        hs, cs, inp = [], [], x_t
        for i, cell in enumerate(self.cells):
            sh, sc = self._slices(i)
            if self.kind == "lstm":
                h, c = cell(inp, (state[:, sh], state[:, sc]))
                cs.append(c)
            else:
                h = cell(inp, state[:, sh])
            hs.append(h)
            inp = h + inp if self.residual and i > 0 else h
        if self.kind != "lstm":
            parts = hs
        elif self.layout == "stacked":
            parts = hs + cs
        else:
            parts = [t for pair in zip(hs, cs) for t in pair]
        return self.head(inp), torch.cat(parts, dim=1)


def step_module(core: Any) -> Any:
    """The cell form of a recurrent core (BPTT or DSF), or ``core`` itself for other models."""
    from tsforge.models.dsf.forecasters import DSFCore
    from tsforge.models.recurrent import RecurrentCore

    if isinstance(core, RecurrentCore):
        cells = [_cell(core.kind, core.rnn, i) for i in range(core.layers)]
        return CellStep(core.kind, cells, core.head, "stacked").eval()
    if isinstance(core, DSFCore) and core.kind in CELLS and core.norms is None:
        # the diagonal SSM cell and layer-normed stacks keep their own step graph
        cells = [_cell(core.kind, rnn, 0) for rnn in core.rnns]
        return CellStep(core.kind, cells, core.head, "per_layer", core.residual).eval()
    return core
