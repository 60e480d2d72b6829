"""``auto`` on the edge box: exported as a bundle by the CLI, served by ``tsforge-edge run``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from test_engine_aggregate import _series

from tsforge.cli import main as tsforge_main
from tsforge.models.registry import model_class
from tsforge.runtime import EdgeService, verify_bundle
from tsforge.runtime.cli import main as edge_main


def _export(tmp_path: Path, y: np.ndarray) -> list[str]:
    data = tmp_path / "data.csv"
    data.write_text("timestamp,flow\n" + "".join(
        f"{np.datetime64('2024-01-01T00:00') + np.timedelta64(i, 'h')},{float(v)!r}\n"
        for i, v in enumerate(y)))
    params = {"experts": "naive,seasonal_naive,ets,linear",
              "params": {"linear": model_class("linear").test_params()}, "prune": 100.0}
    return ["export", str(data), "--model", "auto", "--params", json.dumps(params),
            "--horizon", "2", "--bundle", str(tmp_path / "b")]


def test_cli_exports_auto_as_a_bundle_and_the_edge_box_serves_it(tmp_path: Path,
                                                                  capsys) -> None:
    y = _series()
    args = _export(tmp_path, y[:700])
    assert tsforge_main([*args, "--int8"]) == 2  # refused before fitting
    assert "float32 only" in capsys.readouterr().err
    assert tsforge_main(args) == 0
    out = capsys.readouterr().out
    assert "left out, no ONNX step: ets" in out and "version 1 (v0001)" in out
    assert "experts kept: naive, seasonal_naive, linear" in out
    assert tsforge_main(args) == 0  # a second version: the first is kept for rollback
    index = verify_bundle(tmp_path / "b")
    assert (index["current"], index["previous"], index["model"]) == ("v0002", "v0001", "auto")
    assert "v0002/aggregate.json" in index["files"]
    assert "v0002/experts/2-linear/model.onnx" in index["files"]

    lines = [f"t{t},flow,{float(y[t])!r}" for t in range(700, 1000)]
    lines[50] = "t750,flow,nan"  # imputed by the experts, not a dead letter
    lines[60] = "t760,flow,oops"  # cannot be parsed: dead letter
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    code = edge_main(["run", str(tmp_path / "b"), "--input", str(tmp_path / "in.csv"),
                      "--output", str(tmp_path / "out.csv"), "--intervals",
                      "--dead-letter", str(tmp_path / "dead.txt"),
                      "--events", str(tmp_path / "events.jsonl")])
    assert code == 0
    rows = list(csv.reader((tmp_path / "out.csv").open()))
    assert rows[0][:4] == ["timestamp", "sensor", "step_1", "step_2"]
    assert "lower_0.8_step_1" in rows[0]
    assert len(rows) == 1 + 299 and "oops" in (tmp_path / "dead.txt").read_text()
    served = np.array([[float(v) for v in r[2:4]] for r in rows[1:]])
    assert np.isfinite(served).all()
    # the edge box's forecasts are the engine's, reading for reading
    service = EdgeService(tmp_path / "b", intervals=True, rollback=False)
    want = []
    for line in lines:
        try:
            want.append(service.push("flow", float(line.split(",")[2])).mean)
        except ValueError:
            continue
    np.testing.assert_allclose(served, np.array(want), rtol=1e-8)
    # and they follow the series: one step ahead beats the last reading's error scale
    truth = np.array([float(line.split(",")[2]) for line in lines if "oops" not in line])
    err = np.abs(served[:-1, 0] - truth[1:])
    assert np.nanmean(err) < 1.2 * np.nanmean(np.abs(np.diff(truth)))


def test_a_tampered_expert_is_refused_by_the_edge_box(tmp_path: Path, capsys) -> None:
    y = _series()
    assert tsforge_main(_export(tmp_path, y[:600])) == 0
    victim = tmp_path / "b" / "v0001" / "experts" / "0-naive" / "model.onnx"
    victim.write_bytes(victim.read_bytes()[:-8])
    (tmp_path / "in.csv").write_text("t0,flow,1.0\n")
    capsys.readouterr()
    assert edge_main(["run", str(tmp_path / "b"), "--input", str(tmp_path / "in.csv")]) == 2
    assert "modified after export" in capsys.readouterr().err
