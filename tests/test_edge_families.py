"""Every exportable family goes into a bundle and streams a real series on the edge runtime
exactly like the library, in process and in a fresh torch-free virtual environment.

Tolerance: ``|edge - library| / (1 + |library|) < 1e-4`` per forecast value (the
ONNX step computes in float32, the library partly in float64).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tsforge.datasets
from tsforge.checks import build
from tsforge.export import export_bundle
from tsforge.models import available, model_class
from tsforge.models.transformed import TransformedForecaster
from tsforge.runtime import EdgeService

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = [n for n in available() if model_class(n).exportable]
CHAIN = [{"kind": "difference"}, {"kind": "scale"}]
FIT, STREAM = 700, 120
TOL = 1e-4


def real_series() -> np.ndarray:
    """NAB machine temperature (bundled with the package), 5-minute readings."""
    path = Path(tsforge.datasets.__file__).parent / "machine_temperature_system_failure.csv"
    return np.genfromtxt(path, delimiter=",", skip_header=1, usecols=1, max_rows=FIT + STREAM)


def gap(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(a - ref) / (1.0 + np.abs(ref))))


@pytest.fixture(scope="module")
def family_bundles(tmp_path_factory):
    """``{family: (bundle folder, library forecasts (STREAM, H))}`` on the real series."""
    y = real_series()
    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for name in FAMILIES:
        model = TransformedForecaster(build(name), CHAIN).fit(y[:FIT])
        export_bundle(model, root / name, sensor="machine-temp", parity_steps=100)
        refs = []
        for t in range(FIT, FIT + STREAM):
            # the runtime serves the exported weights: online learners do not learn here
            (model.update if model.model.online else model.learn_one)(y[t])
            refs.append(model.forecast().mean)
        out[name] = (root / name, np.asarray(refs))
    return out


def test_every_exportable_family_is_checked():
    assert {"mlp", "gru", "dsf_gru", "esn", "uoro"} <= set(FAMILIES)


@pytest.mark.parametrize("name", FAMILIES)
def test_bundle_streams_like_the_library(family_bundles, name):
    folder, refs = family_bundles[name]
    service = EdgeService(folder)
    y = real_series()
    served = np.asarray([service.push("machine-temp", y[t]).mean
                         for t in range(FIT, FIT + STREAM)])
    assert gap(served, refs) < TOL, name


def _network_failure(text: str) -> bool:
    signs = ("No matching distribution", "Could not find a version", "NewConnectionError",
             "Temporary failure in name resolution", "Network is unreachable")
    return any(s in text for s in signs)


@pytest.mark.slow
def test_fresh_torch_free_venv_serves_every_family(family_bundles, tmp_path):
    """deploy/edge/install.sh builds a venv with only the bundle's requirements + tsforge
    (--no-deps); its tsforge-edge serves each family's bundle like the library."""
    first = family_bundles[FAMILIES[0]][0]
    prefix = tmp_path / "edge"
    env = {**os.environ, "PYTHON": sys._base_executable, "TSFORGE_SRC": str(ROOT)}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["sh", str(ROOT / "deploy/edge/install.sh"), str(first), str(prefix)],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0 and _network_failure(proc.stderr + proc.stdout):
        pytest.skip(f"PyPI unreachable for numpy/onnxruntime: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    py = prefix / "venv" / "bin" / "python"
    for heavy in ("torch", "statsmodels", "river", "pandas", "polars", "onnx"):
        probe = subprocess.run([str(py), "-c", f"import {heavy}"], capture_output=True)
        assert probe.returncode != 0, f"{heavy} must not be installed in the edge venv"
    y = real_series()
    readings = tmp_path / "readings.csv"
    readings.write_text("timestamp,sensor,value\n" + "".join(
        f"{t},machine-temp,{float(y[t])!r}\n" for t in range(FIT, FIT + STREAM)))
    for name in FAMILIES:
        folder, refs = family_bundles[name]
        out = tmp_path / f"{name}.csv"
        run = subprocess.run([str(prefix / "venv/bin/tsforge-edge"), "run", str(folder),
                              "--input", str(readings), "--output", str(out)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert run.returncode == 0, f"{name}: {run.stderr}"
        rows = out.read_text().strip().splitlines()[1:]
        served = np.asarray([[float(v) for v in r.split(",")[2:]] for r in rows])
        assert served.shape == refs.shape and gap(served, refs) < TOL, name
    # on-device adaptation and rollback bookkeeping run there too
    adaptive = tmp_path / "esn-bundle"
    shutil.copytree(family_bundles["esn"][0], adaptive)
    run = subprocess.run([str(prefix / "venv/bin/tsforge-edge"), "run", str(adaptive),
                          "--input", str(readings), "--output", str(tmp_path / "adapt.csv"),
                          "--adapt", "--save-every", "100", "--events",
                          str(tmp_path / "events.jsonl")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    saved = [json.loads(line)["version"] for line in
             (tmp_path / "events.jsonl").read_text().splitlines()]
    assert saved == ["v0002", "v0003"]
    index = json.loads((adaptive / "bundle.json").read_text())
    assert (index["current"], index["previous"]) == ("v0003", "v0002")
    assert index["versions"]["v0003"]["adaptation"]["readings"] == STREAM
