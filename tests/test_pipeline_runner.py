"""`tsforge run PIPELINE`: csv pipelines write results, models and the report; every
shipped pipeline spec loads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tsforge.errors import ConfigError
from tsforge.pipeline import load_spec, parse_spec
from tsforge.pipeline.runner import run_pipeline

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT / "examples" / "data" / "factory" / "machine_temperature_system_failure.csv"
TSFORGE = shutil.which("tsforge")


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_pipeline_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name and spec.use in ("csv", "kafka", "edge")
    if spec.use == "csv":
        assert Path(spec.source.path).exists(), f"{path.name}: [source] path does not exist"


def test_the_poc_pipeline_is_there() -> None:
    spec = load_spec(ROOT / "pipelines" / "factory-csv-poc.toml")
    assert spec.use == "csv" and spec.model.family == "auto"
    assert Path(spec.source.path) == (ROOT / "examples" / "data" / "factory").resolve()


def test_csv_pipeline_writes_results_models_figures_and_report(tmp_path: Path) -> None:
    toml = tmp_path / "plant.toml"
    toml.write_text(f"""
name = "plant"
use = "csv"
[source]
path = "{NAB.as_posix()}"
[model]
family = "auto"
horizon = 4
[drift]
detectors = ["adwin"]
[output]
path = "out"
""")
    lines: list[str] = []
    res = run_pipeline(load_spec(toml), last=600, log=lines.append)
    out = tmp_path / "out"
    assert res.output == out and res.report == out / "report.html"
    data = json.loads(res.results.read_text())
    (sensor,) = data["sensors"]
    assert sensor["pick"]["family"] in [s["model"] for s in sensor["backtest"]]
    assert sensor["pick"]["reasons"] and not sensor["pick"]["overridden"]
    assert {a["detector"] for a in sensor["drift"]["alarms"]} <= {"adwin"}
    assert data["files"][0]["validation"]["duplicates"] == 12  # the NAB clock change
    assert res.models == [out / "models" / "machine_temperature_system_failure__value.onnx"]
    assert (out / "models" / "machine_temperature_system_failure__value.json").exists()
    assert len(list((out / "figures").glob("*.png"))) == 3
    assert "data:image/png;base64," in res.report.read_text()
    assert any("picked" in line for line in lines)


@pytest.mark.parametrize(("use", "command"), [("kafka", "tsforge serve"),
                                               ("edge", "tsforge-edge")])
def test_service_pipelines_name_the_command_that_runs_them(use: str, command: str) -> None:
    with pytest.raises(ConfigError, match=command):
        run_pipeline(parse_spec({"name": "svc", "use": use}))


def test_run_cli_checks_a_spec_and_reports_errors(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        cmd = [TSFORGE, *args] if TSFORGE else [sys.executable, "-m", "tsforge.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    ok = cli("run", str(ROOT / "pipelines" / "factory-csv-poc.toml"), "--check")
    assert ok.returncode == 0 and "the spec is valid" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nuse = "csv"\n[model]\nfamily = "gpt"\n')
    err = cli("run", str(bad))
    assert err.returncode == 2 and "family = 'gpt'" in err.stderr
