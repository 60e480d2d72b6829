"""The PoC notebook runs top to bottom in quick mode, every figure present, no cell failing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "factory_poc.ipynb"
KERNEL = "tsforge-test-python"


@pytest.fixture
def kernel_of_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that starts ipykernel with the interpreter running the tests."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tsforge tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def _outputs(cell: dict, kind: str) -> list[dict]:
    return [o for o in cell.get("outputs", []) if kind in o.get("data", {})]


@pytest.mark.slow
def test_notebook_runs_in_quick_mode_with_every_figure(kernel_of_this_interpreter: str,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("TSFORGE_POC_QUICK", "1")
    monkeypatch.setenv("TSFORGE_POC_OUT", str(out))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook with its outputs cleared"
    client = nbclient.NotebookClient(nb, kernel_name=kernel_of_this_interpreter, timeout=600,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError naming the cell if any cell fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(str(o.get("text", "")) for c in code for o in c.outputs)
    assert "QUICK=True" in text
    # Two sensors in quick mode: a decomposition, a forecast and a drift figure each.
    for marker, per_sensor in (("decomposition_png", 2), ("forecast_png", 2),
                               ("drift_png", 2)):
        cell = next(c for c in code if marker in c.source)
        pngs = _outputs(cell, "image/png")
        assert len(pngs) == per_sensor, f"{marker}: {len(pngs)} figure(s)"
        assert all(len(p["data"]["image/png"]) > 10_000 for p in pngs)
    tables = [o for c in code for o in _outputs(c, "text/html") if "<table" in
              o["data"]["text/html"]]
    assert len(tables) >= 5  # validation, profile, two backtests, export, summary
    assert (out / "report.html").stat().st_size > 100_000
    assert len(list((out / "models").glob("*.onnx"))) == 2
