"""A data scientist's first afternoon on the command line: the steel plant's export in
every data command, progress, tables, and the small things that used to trip users."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tsforge import progress
from tsforge.cli import main

STEEL = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "steel"
         / "Steel_industry_data.csv")
FACTORY = Path(__file__).resolve().parents[1] / "examples" / "data" / "factory"


@pytest.fixture(autouse=True)
def quiet_afterwards():
    yield
    progress.enable(False)  # main() turns progress on; leave the library default behind


def steel_head(folder: Path, rows: int) -> Path:
    """The first ``rows`` readings of the steel plant's export, byte for byte (BOM,
    day-first dates, text columns), so that the CLI tests stay fast."""
    if not STEEL.exists():
        pytest.skip("../shared/datasets not available")
    path = folder / f"steel{rows}.csv"
    path.write_bytes(b"".join(STEEL.read_bytes().splitlines(keepends=True)[:rows + 1]))
    return path


@pytest.fixture(scope="module")
def steel(tmp_path_factory) -> Path:
    return steel_head(tmp_path_factory.mktemp("steel"), 1200)


@pytest.mark.parametrize("columns", [[], ["--columns", "Usage_kWh"]])
def test_steel_file_in_analyze_backtest_and_export(steel, tmp_path, capsys, columns):
    # analyze studies every sensor read: 7 without --columns, so a shorter cut of the file
    short = steel_head(tmp_path, 300)
    assert main(["analyze", str(steel if columns else short), *columns, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Usage_kWh" in out and "kWh" in out and "recommended" in out
    if not columns:
        assert "text columns not read as sensors: WeekStatus, Day_of_week, Load_Type" in out
        assert "CO2(tCO2)" in out and "tCO2" in out
    assert main(["backtest", str(steel), "--target", "Usage_kWh", *columns, "--models",
                 "naive,seasonal_naive", "--horizon", "4", "--plot",
                 str(tmp_path / "bt.png")]) == 0
    out = capsys.readouterr().out
    assert "seasonal_naive" in out and (tmp_path / "bt.png").stat().st_size > 10_000
    assert main(["export", str(steel), "--target", "Usage_kWh", *columns, "--model", "naive",
                 "--horizon", "4", "--bundle", str(tmp_path / "bundle")]) == 0
    manifest = json.loads((tmp_path / "bundle" / "v0001" / "model.json").read_text())
    count = manifest["intervals"]["state"]["count"]
    assert min(count) >= 20  # residuals exported: the box issues intervals from the start
    mode = stat.S_IMODE(os.stat(tmp_path / "bundle" / "v0001" / "model.onnx").st_mode)
    assert mode & 0o044 == 0o044  # readable by the service user, not 0600


def test_steel_file_in_report(steel, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(steel), "--columns", "Usage_kWh", "--family", "naive",
                 "--horizon", "4", "--out", str(out), "--no-progress"]) == 0
    html = out.read_text()
    assert "Usage_kWh" in html and "data:image/png;base64" in html


def test_progress_lines_off_a_terminal(steel, capsys):
    assert main(["backtest", str(steel), "--columns", "Usage_kWh", "--models", "naive",
                 "--horizon", "2"]) == 0
    err = capsys.readouterr().err
    assert "stream naive:" in err and "steps in" in err  # one line per finished stage
    assert main(["backtest", str(steel), "--columns", "Usage_kWh", "--models", "naive",
                 "--no-progress"]) == 0
    assert "stream naive" not in capsys.readouterr().err


def test_training_epochs_show_progress(capsys):
    import numpy as np

    from tsforge.models import create

    progress.enable(True)
    y = np.sin(np.arange(300) / 7.0)
    create("mlp", window=8, hidden=8, epochs=3, patience=None, progress=False).fit(y)
    err = capsys.readouterr().err
    assert "fit mlp: 3 epochs in" in err and "loss" in err  # one line when training ends


def test_bad_timestamps_and_quotes_are_clear_on_the_cli(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("when,x\n2024-13-45 99:00,1\n2024-13-46 99:00,2\n")
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "column 'when'" in err and "--time-format" in err and "Traceback" not in err
    quote = tmp_path / "quote.csv"
    quote.write_text('timestamp,x\n2024-01-01,"1\n2024-01-02,2\n')
    assert main(["analyze", str(quote)]) == 2
    assert "--separator" in capsys.readouterr().err


def test_twenty_rows_and_dead_target_say_what_to_do(tmp_path, capsys):
    short = tmp_path / "short.csv"
    short.write_text("t,x\n" + "".join(f"2024-01-01 00:{m:02d},{m % 3}\n" for m in range(20)))
    assert main(["backtest", str(short), "--models", "naive"]) == 2
    err = capsys.readouterr().err
    assert "training part (70%) holds 14" in err and "at least 30 readings" in err
    dead = tmp_path / "dead.csv"
    dead.write_text("t,x,y\n" + "".join(f"2024-01-01 00:{m:02d},,{m}\n" for m in range(40)))
    assert main(["backtest", str(dead), "--target", "x", "--models", "naive"]) == 2
    assert "'x' holds no finite reading" in capsys.readouterr().err


def test_constant_series_warns_that_mase_is_undefined(tmp_path, capsys):
    flat = tmp_path / "flat.csv"
    flat.write_text("t,x\n" + "".join(f"2024-01-01 {h:02d}:{m:02d},5\n"
                                      for h in range(3) for m in range(60)))
    assert main(["backtest", str(flat), "--models", "naive"]) == 0
    assert "MASE is undefined" in capsys.readouterr().out


def test_models_available_is_a_table_without_markup(capsys):
    assert main(["models-available"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert "ONNX export" in head and "online" in head and "``" not in out
    assert any(line.startswith("esn") and " yes " in line for line in out.splitlines())


def test_models_list_on_an_empty_registry_exits_0(tmp_path, capsys):
    assert main(["models", "list", "--root", str(tmp_path / "none")]) == 0
    assert "no versions" in capsys.readouterr().out


def test_run_without_out_writes_to_the_current_folder(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "specs" / "p.toml"
    spec.parent.mkdir()
    spec.write_text(f'name = "poc"\nuse = "csv"\n[source]\npath = "{FACTORY}"\n'
                    'columns = ["value"]\n[model]\nfamily = "naive"\nhorizon = 2\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec), "--last", "600", "--no-progress"]) == 0
    out = capsys.readouterr().out
    where = tmp_path / "tsforge-out" / "poc"
    assert f"results go to {where}" in out and where.is_dir()
    assert not any(p.name != "p.toml" for p in spec.parent.iterdir())  # nothing beside the spec


def test_edge_verify_says_ok(steel, tmp_path, capsys):
    from tsforge.runtime.cli import main as edge_main

    assert main(["export", str(steel), "--columns", "Usage_kWh", "--model", "naive",
                 "--bundle", str(tmp_path / "b"), "--no-progress"]) == 0
    capsys.readouterr()
    assert edge_main(["verify", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
