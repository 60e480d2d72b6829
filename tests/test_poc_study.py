"""Pieces of the PoC study: folder reading, drift alarms and the family pick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tsforge.data import read_folder
from tsforge.errors import ConfigError, DataError
from tsforge.preprocess import analyze
from tsforge.report.alarms import watch
from tsforge.report.pick import pick_family


def _csv(path: Path, header: str, rows: int, step_s: int = 60) -> None:
    rng = np.random.default_rng(0)
    n_cols = header.count(",")
    lines = [header] + [
        f"{1704067200 + step_s * i}," + ",".join(f"{v:.4f}" for v in rng.normal(size=n_cols))
        for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_folder_is_read_file_by_file_with_columns_and_last(tmp_path: Path) -> None:
    _csv(tmp_path / "b_press.csv", "timestamp,pressure,flow", 300)
    _csv(tmp_path / "a_oven.csv", "timestamp,temp", 200, step_s=3600)
    (tmp_path / "notes.txt").write_text("not data")
    files = read_folder(tmp_path)
    assert [f.name for f in files] == ["a_oven", "b_press"]
    assert files[0].report.freq == "1h" and files[1].frame.sensors == ["pressure", "flow"]
    only = read_folder(tmp_path, columns=["flow"], last=50)
    assert [(f.name, f.frame.sensors, len(f.frame)) for f in only] == [("b_press", ["flow"], 50)]
    assert only[0].report.n_rows_out == 300  # validated on the whole file
    with pytest.raises(DataError, match=r"\['flwo'\] are in no CSV file"):
        read_folder(tmp_path, columns=["flwo"])
    (tmp_path / "known_events.json").write_text(
        '{"b_press.csv": [{"start": "2024-01-01 01:00", "end": "2024-01-01 02:00", '
        '"label": "valve stuck"}]}')
    oven, press = read_folder(tmp_path)
    assert oven.events == [] and press.events == [
        (np.datetime64("2024-01-01T01:00", "ns"), np.datetime64("2024-01-01T02:00", "ns"),
         "valve stuck")]
    (tmp_path / "known_events.json").write_text('{"b_press.csv": [{"begin": "x"}]}')
    with pytest.raises(DataError, match="not a valid events file"):
        read_folder(tmp_path)
    (tmp_path / "known_events.json").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no \.csv file"):
        read_folder(tmp_path / "empty")


def test_drift_alarms_fire_after_a_level_step_and_an_error_jump_not_before() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(0.0, 1.0, 1000)
    y[600:] += 4.0  # the process level steps up at 600
    forecast = y[500:] + rng.normal(0.0, 0.3, 500)  # a good model on the streamed part ...
    forecast[300:] += rng.normal(0.0, 3.0, 200)  # ... that gets worse from reading 800
    tl = watch(y, 500, forecast, detectors=["adwin", "page_hinkley"], sensor="s")
    for det in ("adwin", "page_hinkley"):
        first_input = min(a.index for a in tl.alarms if a.detector == det and a.signal == "input")
        assert 600 <= first_input < 700, det
    residual = [a.index for a in tl.alarms if a.signal == "residual" and a.detector == "adwin"]
    assert residual and 800 <= min(residual) < 900
    assert tl.residual is not None and tl.residual.shape == (500,)
    assert all(a.sensor == "s" for a in tl.alarms)
    only_input = watch(y, 500, None, detectors=["adwin"])
    assert only_input.residual is None and only_input.count("residual") == 0
    with pytest.raises(ConfigError, match="adwin, page_hinkley, kswin"):
        watch(y, 500, detectors=["cusum"])


def test_pick_applies_the_selection_policy_and_explains_itself() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(1200)
    seasonal = 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, t.size)
    stat = analyze(seasonal, name="s")
    pick = pick_family(seasonal, stat, params={"epochs": 2, "reservoir": 50}, sensor="s")
    assert (pick.family, pick.role) == ("mlp", "windowed") and not pick.overridden
    assert pick.params == {"epochs": 2}
    assert pick.explanation.startswith("picked mlp")
    assert any("['reservoir'] do not apply to mlp" in r for r in pick.reasons)
    assert dict(pick.profile_rows())["stationarity"] == "stationary"

    walk = np.cumsum(rng.normal(0, 1, 1200)) * np.linspace(1, 8, 1200)
    pick = pick_family(walk, analyze(walk, name="w"), family="gru", params={"hidden": 8})
    assert (pick.family, pick.params, pick.rule, pick.overridden) == ("gru", {"hidden": 8},
                                                                      "R0", True)


def test_a_family_without_onnx_step_is_backtested_and_says_why(tmp_path: Path) -> None:
    from tsforge.pipeline import parse_spec
    from tsforge.report.html import render_html
    from tsforge.report.study import Study, study_sensor

    t = np.arange(400)
    rng = np.random.default_rng(2)
    lines = ["timestamp,flow"] + [f"{1704067200 + 3600 * i},{v:.4f}" for i, v in
                                  enumerate(10 + np.sin(2 * np.pi * t / 24)
                                            + rng.normal(0, 0.1, t.size))]
    (tmp_path / "line.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "known_events.json").write_text(
        '{"line.csv": [{"start": "2024-01-10", "end": "2024-01-12", "label": "pump swap"}, '
        '{"start": "2025-01-01", "end": "2025-01-02", "label": "after the data"}]}')
    spec = parse_spec({"name": "hw", "use": "csv", "source": {"path": str(tmp_path)},
                       "model": {"family": "holt_winters", "horizon": 3},
                       "drift": {"detectors": ["page_hinkley"]}})
    (prepared,) = read_folder(tmp_path)
    s = study_sensor(prepared, "flow", spec, export_dir=tmp_path / "models")
    assert s.pick.family == "holt_winters" and s.pick.overridden and s.export is None
    assert "no ONNX streaming step" in s.runtime["note"]
    assert {sc.model for sc in s.backtest.scores} == {"naive", "seasonal_naive",
                                                      "holt_winters"}
    assert s.backtest.period == 24
    assert all(a.detector == "page_hinkley" for a in s.drift.alarms)
    page = render_html(Study(name="hw", source=str(tmp_path), files=[prepared], sensors=[s],
                             settings={"horizon": 3, "family": "holt_winters",
                                       "levels": [0.8, 0.95]}))
    assert "Not exported: holt_winters has no ONNX streaming step" in page
    (event,) = s.event_alarms()  # the event after the data is left out
    assert (event["label"], event["start"]) == ("pump swap", "2024-01-10T00:00")
    inside = [a for a in s.drift.alarms if np.datetime64("2024-01-10") <= s.time[a.index]
              <= np.datetime64("2024-01-12")]
    assert event["input_alarms"] + event["residual_alarms"] == len(inside)
    assert "Known events in this period" in page and "pump swap" in page
    assert not list((tmp_path / "models").glob("*.onnx"))


def test_report_plots_the_weights_of_the_aggregate(tmp_path: Path) -> None:
    from tsforge.pipeline import parse_spec
    from tsforge.report.html import render_html
    from tsforge.report.study import Study, study_sensor

    t = np.arange(400)
    rng = np.random.default_rng(3)
    lines = ["timestamp,flow"] + [f"{1704067200 + 3600 * i},{v:.4f}" for i, v in
                                  enumerate(10 + np.sin(2 * np.pi * t / 24)
                                            + rng.normal(0, 0.1, t.size))]
    (tmp_path / "line.csv").write_text("\n".join(lines) + "\n")
    spec = parse_spec({"name": "agg", "use": "csv", "source": {"path": str(tmp_path)},
                       "model": {"family": "naive", "horizon": 2}})
    (prepared,) = read_folder(tmp_path)
    s = study_sensor(prepared, "flow", spec, aggregate=True)
    names, w = s.backtest.weights["auto"]
    assert "seasonal_naive" in names and w.shape[1] == len(names)
    assert s.figures["weights"][:4] == b"\x89PNG"
    page = render_html(Study(name="agg", source=str(tmp_path), files=[prepared], sensors=[s],
                             settings={"horizon": 2, "family": "naive",
                                       "levels": [0.8, 0.95]}))
    assert "Online aggregation of families (auto)" in page
    assert "aggregate of " in page and "weights 1 step ahead" in page
