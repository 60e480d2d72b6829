"""The accuracy benchmark's summary: headline ratio, its fallback, and the coverage check."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load("accuracy_report")


def _row(series, h, model, mase, cov8=0.8, cov95=0.95, width=1.0):
    return {"series": series, "horizon": h, "model": model, "mae": mase, "mase": mase,
            "fit_seconds": 0.1, "us_per_step": 10.0, "coverage_0.8": cov8,
            "coverage_0.95": cov95, "width_0.8": width, "width_0.95": 2 * width}


def _rows(models):
    rows = []
    for s, scale in (("A", 1.0), ("B", 2.0)):
        for h in (1, 24):
            for name, (mase, cov8) in models.items():
                rows.append(_row(s, h, name, mase * scale, cov8=cov8))
    return rows


def test_ratio_falls_back_to_best_single_family_and_says_so():
    rows = _rows({"naive": (1.0, 0.8), "seasonal_naive": (2.0, 0.8), "mlp": (0.5, 0.8),
                  "gru": (0.8, 0.8), "ets": (0.1, 0.8)})
    s = report.summarise(rows, ["naive", "seasonal_naive", "mlp", "gru", "ets"], (0.8, 0.95))
    assert s["candidate"] == "mlp"  # a peer (ets) never stands in for tsforge
    assert "auto" in s["candidate_label"] and "not registered" in s["candidate_label"]
    assert s["ratio"] == pytest.approx(4.0)


def test_ratio_uses_auto_when_present():
    rows = _rows({"seasonal_naive": (2.0, 0.8), "auto": (1.0, 0.8), "mlp": (0.5, 0.8)})
    s = report.summarise(rows, ["seasonal_naive", "auto", "mlp"], (0.8, 0.95))
    assert s["candidate"] == "auto" and s["ratio"] == pytest.approx(2.0)
    assert s["ratio_oracle"] == pytest.approx(4.0)


def test_coverage_check_flags_a_family_off_by_more_than_two_points():
    rows = _rows({"naive": (1.0, 0.79), "seasonal_naive": (2.0, 0.75)})
    fams = report.summarise(rows, ["naive", "seasonal_naive"], (0.8, 0.95))["families"]
    assert fams["naive"]["calibrated"] and fams["naive"]["cells_over_tolerance"] == 0
    assert not fams["seasonal_naive"]["calibrated"]
    assert fams["seasonal_naive"]["pooled_coverage_error"] == pytest.approx(0.05)
    assert fams["seasonal_naive"]["cells_over_tolerance"] == 4


def test_failed_cells_are_reported_and_json_is_strict(tmp_path):
    rows = _rows({"naive": (1.0, 0.8), "seasonal_naive": (2.0, 0.8)})
    rows.append({"series": "A", "horizon": 1, "model": "mlp", "error": "DataError: too short"})
    s = report.summarise(rows, ["naive", "seasonal_naive", "mlp"], (0.8, 0.95))
    assert s["families"]["mlp"]["failed"] == ["A h=1: DataError: too short"]
    assert math.isnan(s["ratio"])  # no tsforge family scored: no ratio, not a made-up one
    settings = {"mode": {"name": "quick"}, "levels": [0.8, 0.95], "seconds": 1.0}
    text = report.markdown(rows, s, settings)
    assert "Failed cells" in text and "| naive |" in text
    line = json.dumps(report.last_line(s, settings, tmp_path), allow_nan=False)
    assert json.loads(line)["failed_cells"] == 1


def test_candidate_is_compared_with_the_best_baseline_or_peer_of_each_cell():
    rows = [_row("A", 1, "naive", 1.0), _row("A", 1, "ets", 0.8), _row("A", 1, "auto", 0.7),
            _row("B", 1, "naive", 1.0), _row("B", 1, "auto", 0.95),
            _row("C", 1, "seasonal_naive", 0.5), _row("C", 1, "auto", 0.6),
            _row("D", 1, "mlp", 0.1), _row("D", 1, "auto", 0.6)]  # no reference in D
    vs = report.summarise(rows, ["naive", "seasonal_naive", "ets", "mlp", "auto"],
                          (0.8, 0.95))["versus_reference"]
    assert vs["compared"] == 3 and vs["at_or_below"] == 2 and vs["margin_below"] == 1
    a = vs["cells"][0]
    assert a["reference"] == "ets" and a["ratio"] == pytest.approx(0.8 / 0.7)


def test_regret_is_against_the_best_other_tsforge_family_of_each_cell():
    rows = [_row("A", 1, "naive", 1.0), _row("A", 1, "mlp", 0.5), _row("A", 1, "esn", 0.4),
            _row("A", 1, "auto", 0.44),
            _row("B", 1, "naive", 1.0), _row("B", 1, "mlp", 0.5), _row("B", 1, "auto", 0.4)]
    vs = report.summarise(rows, ["naive", "mlp", "esn", "auto"], (0.8, 0.95))["versus_reference"]
    assert vs["cells"][0]["best_family"] == "esn"  # ets-like peers never count as ours
    assert vs["regret_worst"] == pytest.approx(1.1) and vs["regret_at_or_below_1"] == 1
    assert vs["regret_median"] == pytest.approx((1.1 + 0.8) / 2)
