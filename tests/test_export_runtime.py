"""ONNX export and the torch-free runtime: parity, metadata, integrity, isolation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tsforge.checks import synthetic_series
from tsforge.errors import ArtifactError, DataError
from tsforge.export import export_onnx
from tsforge.models import create
from tsforge.models.transformed import TransformedForecaster
from tsforge.runtime import StreamingRuntime, load_artifact

CHAIN = [{"kind": "deseasonalize", "period": 12}, {"kind": "difference"}, {"kind": "scale"}]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    y, X = synthetic_series(n=900, n_covariates=1)
    model = TransformedForecaster(create("mlp", horizon=4, window=16, epochs=4), CHAIN)
    model.fit(y[:600], X[:600])
    path = tmp_path_factory.mktemp("artifact") / "mlp.onnx"
    report = export_onnx(model, path, sensor="line-1")
    return model, path, report, y, X


def test_export_verifies_parity_and_describes_itself(exported):
    _, path, report, _, _ = exported
    assert report.parity_max_abs_error < 1e-4 and report.parity_steps == 2000
    meta = load_artifact(path).meta
    for key in ("tsforge_version", "model", "config", "transforms", "state_shape", "inputs",
                "outputs", "sha256", "covariate_scales"):
        assert key in meta, key
    assert meta["model"] == "mlp" and meta["config"]["window"] == 16
    assert [t["kind"] for t in meta["transforms"]] == ["deseasonalize", "difference", "scale"]
    import onnx

    embedded = json.loads({p.key: p.value for p in onnx.load(path).metadata_props}["tsforge"])
    assert embedded["config"] == meta["config"]


def test_runtime_reproduces_library_in_engineering_units(exported):
    model, path, _, y, X = exported
    runtime = StreamingRuntime(path)
    library = TransformedForecaster(model.model, CHAIN)
    library.chain_, library.covariate_scales_ = model.chain_.copy(), model.covariate_scales_
    for t in range(600, 800):
        out = runtime.push("line-1", y[t], X[t])
        library.learn_one(y[t], X[t])
        np.testing.assert_allclose(out, library.forecast().mean, rtol=1e-5, atol=1e-4)


def test_runtime_batches_many_sensors_in_one_call(exported):
    _, path, _, y, X = exported
    one = StreamingRuntime(path)
    many = StreamingRuntime(path)
    sensors = ["a", "b", "c"]
    for t in range(600, 700):
        batched = many.push_many(sensors, [y[t], y[t] + 1, y[t] - 1], [X[t]] * 3)
        single = one.push("b", y[t] + 1, X[t])
        np.testing.assert_allclose(batched[1], single, rtol=1e-5, atol=1e-5)
    assert many.latency.count == 100


def test_runtime_warns_once_for_a_sensor_it_was_not_exported_for(exported, caplog):
    _, path, _, y, X = exported
    runtime = StreamingRuntime(path)
    with caplog.at_level("WARNING", logger="tsforge.engine"):
        for t in range(600, 603):
            runtime.push("line-1", y[t], X[t])
            runtime.push("unknown-7", y[t], X[t])
    warned = [r.getMessage() for r in caplog.records if "unknown-7" in r.getMessage()]
    assert len(warned) == 1 and "initial model state" in warned[0]
    assert not [r for r in caplog.records if "'line-1' is not" in r.getMessage()]


def test_runtime_imputes_nonfinite_and_rejects_bad_shapes(exported):
    _, path, _, y, X = exported
    runtime = StreamingRuntime(path)
    runtime.push("s", y[600], X[600])
    out = runtime.push("s", float("nan"), X[601])
    assert np.all(np.isfinite(out)) and runtime.sensors["s"].imputed == 1
    with pytest.raises(DataError, match="covariate"):
        runtime.push("s", y[602], [1.0, 2.0])


def test_tampered_truncated_or_unverifiable_artifacts_are_rejected(exported, tmp_path):
    _, path, _, _, _ = exported
    data = path.read_bytes()
    bad = tmp_path / "mlp.onnx"
    (tmp_path / "mlp.json").write_text(path.with_suffix(".json").read_text())
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(bad)
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        load_artifact(bad)
    lonely = tmp_path / "other" / "mlp.onnx"
    lonely.parent.mkdir()
    lonely.write_bytes(data)
    with pytest.raises(ArtifactError, match="manifest"):
        load_artifact(lonely)
    assert load_artifact(lonely, verify=False).meta["model"] == "mlp"
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "missing.onnx")


BLOCKER = """
import sys
class Blocker:
    BLOCKED = {"torch", "statsmodels", "pandas", "polars", "river", "kafka", "matplotlib",
               "onnx", "tqdm"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
"""


def test_runtime_runs_without_torch_or_other_heavy_packages(exported, tmp_path):
    model, path, _, y, X = exported
    (tmp_path / "readings.csv").write_text(
        "timestamp,sensor,value,cov\n"
        + "".join(f"{t},line-1,{float(y[t])!r},{float(X[t, 0])!r}\n" for t in range(600, 650))
        + "650,line-1,not-a-number,1.0\n"
    )
    script = BLOCKER + textwrap.dedent(f"""
        import tsforge.runtime, tsforge.runtime.cli
        assert "torch" not in sys.modules
        sys.exit(tsforge.runtime.cli.main(["run", {str(path)!r},
            "--input", {str(tmp_path / "readings.csv")!r},
            "--output", {str(tmp_path / "out.csv")!r},
            "--dead-letter", {str(tmp_path / "dead.txt")!r}]))
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "out.csv").read_text().strip().splitlines()
    assert len(rows) == 51  # header + 50 forecasts
    assert "not-a-number" in (tmp_path / "dead.txt").read_text()
    library = TransformedForecaster(model.model, CHAIN)
    library.chain_, library.covariate_scales_ = model.chain_.copy(), model.covariate_scales_
    for t in range(600, 650):
        library.learn_one(y[t], X[t])
    last = np.array([float(v) for v in rows[-1].split(",")[2:]])
    np.testing.assert_allclose(last, library.forecast().mean, rtol=1e-4)
