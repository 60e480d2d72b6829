"""The cell form of recurrent cores that export writes: identical to the library core."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tsforge.export import export_onnx  # noqa: E402
from tsforge.export.cells import CellStep, step_module  # noqa: E402
from tsforge.models import create  # noqa: E402
from tsforge.models.dsf.forecasters import DSFCore  # noqa: E402
from tsforge.models.recurrent import RecurrentCore  # noqa: E402


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_cell_step_equals_the_core(kind, layers):
    torch.manual_seed(layers)
    cores = [RecurrentCore(kind, 2, 8, layers, 3, 0.0),
             DSFCore(kind, 2, 8, layers, 3, torch.zeros(8), residual=True,
                     layer_norm=False)]
    for core in cores:
        core.eval()
        step = step_module(core)
        assert isinstance(step, CellStep)
        state = torch.randn(4, core.initial_state(1).shape[1])
        with torch.no_grad():
            for _ in range(20):  # a stream: each carries its own state
                x = torch.randn(4, 2)
                (ya, sa), (yb, sb) = core(x, state), step(x, state)
                torch.testing.assert_close(yb, ya, atol=1e-6, rtol=1e-6)
                torch.testing.assert_close(sb, sa, atol=1e-6, rtol=1e-6)
                state = sa


def test_cores_without_a_cell_form_export_their_own_step():
    """The diagonal SSM and layer-normed DSF stacks have no built-in cell: kept as they are."""
    for core in (DSFCore("diag", 2, 8, 1, 3, torch.zeros(8), residual=False, layer_norm=False),
                 DSFCore("gru", 2, 8, 2, 3, torch.zeros(8), residual=True, layer_norm=True)):
        assert step_module(core) is core


def test_exported_gru_step_uses_gemm_not_the_recurrent_operator(tmp_path):
    onnx = pytest.importorskip("onnx")
    y = np.sin(np.arange(400) / 7.0)
    model = create("gru", hidden=8, seq_len=32, epochs=1, horizon=2).fit(y)
    rep = export_onnx(model, tmp_path / "gru.onnx", parity_steps=100)
    assert rep.parity_max_abs_error < 1e-5  # checked against the library's nn.GRU core
    ops = {n.op_type for n in onnx.load(tmp_path / "gru.onnx").graph.node}
    assert "GRU" not in ops and ("Gemm" in ops or "MatMul" in ops)
    assert step_module(model.streaming_core()) is not model.streaming_core()
