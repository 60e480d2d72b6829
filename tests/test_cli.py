"""The tsforge command line, run through its installed entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tsforge.checks import synthetic_series

TSFORGE = shutil.which("tsforge")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [TSFORGE, *args] if TSFORGE else [sys.executable, "-m", "tsforge.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    y, X = synthetic_series(n=700, n_covariates=1)
    path = tmp_path_factory.mktemp("cli") / "plant.csv"
    lines = ["timestamp,temp,load"] + [
        f"{1704067200 + 60 * i},{y[i]:.6f},{X[i, 0]:.6f}" for i in range(700)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_help_lists_working_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("demo", "analyze", "backtest", "export"):
        assert command in out.stdout


def test_analyze_prints_tests_and_writes_json_and_plot(csv_file, tmp_path):
    out = run("analyze", str(csv_file), "--json", str(tmp_path / "a.json"),
              "--plots", str(tmp_path / "plots"))
    assert out.returncode == 0, out.stderr
    assert "ADF" in out.stdout and "KPSS" in out.stdout
    report = json.loads((tmp_path / "a.json").read_text())
    assert set(report["sensors"]) == {"temp", "load"}
    assert (tmp_path / "plots" / "temp.png").read_bytes()[:4] == b"\x89PNG"


def test_backtest_json_contract(csv_file, tmp_path):
    out = run("backtest", str(csv_file), "--target", "temp", "--covariates", "load",
              "--horizon", "3", "--models", "naive,mlp", "--params", '{"mlp": {"epochs": 3}}',
              "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png"))
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [r["model"] for r in rows] == ["naive", "mlp"]
    for key in ("mae", "rmse", "mase", "fit_seconds", "predict_us_per_step", "transforms"):
        assert key in rows[0]
    assert (tmp_path / "b.png").exists()


def test_export_writes_verified_artifact(csv_file, tmp_path):
    out = run("export", str(csv_file), "--target", "temp", "--model", "mlp",
              "--params", '{"epochs": 2, "window": 8}', "--horizon", "2",
              "--out", str(tmp_path / "m.onnx"))
    assert out.returncode == 0, out.stderr
    assert "max |diff|" in out.stdout
    assert json.loads((tmp_path / "m.json").read_text())["model"] == "mlp"


def test_errors_are_short_and_actionable(csv_file, tmp_path):
    out = run("backtest", str(csv_file), "--target", "nope")
    assert out.returncode == 2 and "valid names: temp, load" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("backtest", str(csv_file), "--models", "prophet")
    assert out.returncode == 2 and "valid names" in out.stderr
    out = run("analyze", str(tmp_path / "missing.csv"))
    assert out.returncode == 2 and "file not found" in out.stderr


@pytest.mark.slow
def test_demo_runs_from_any_directory(tmp_path):
    out = run("demo", "--quick", "--out", "demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("backtest.png", "decomposition.png", "mlp.onnx", "summary.json"):
        assert (tmp_path / "demo" / name).exists(), name
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["runtime"]["max_abs_diff_vs_library"] < 1e-3
    assert {r["model"] for r in summary["backtest"]} == {"naive", "seasonal_naive", "mlp"}


def test_backtest_calendar_covariates(tmp_path):
    y, _ = synthetic_series(n=24 * 10)
    path = tmp_path / "hourly.csv"
    path.write_text("timestamp,temp\n" + "".join(
        f"{1704067200 + 3600 * i},{v:.6f}\n" for i, v in enumerate(y)))
    out = run("backtest", str(path), "--target", "temp", "--models", "naive,linear",
              "--horizon", "2", "--calendar")
    assert out.returncode == 0, out.stderr
    assert "calendar covariates: hour_of_day_sin, hour_of_day_cos" in out.stdout
