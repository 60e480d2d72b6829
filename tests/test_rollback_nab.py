"""The monitored pipeline on real data: rollback on NAB, promotion in shadow, bit-identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _linear_onnx import fit_ar, write_linear_ar

from tsforge.monitor import MonitorConfig
from tsforge.monitor.pipeline import MonitoredServing
from tsforge.monitor.scenario import SENSOR, build_versions, load_nab_temperature, run_scenario
from tsforge.registry import Registry

pytest.importorskip("torch")
pytest.importorskip("onnx")
TRAIN, STREAM = 3000, 2000


def test_degraded_version_promoted_on_nab_is_detected_and_rolled_back(tmp_path):
    ts, y = load_nab_temperature()
    reg = Registry(tmp_path / "reg")
    good, bad = build_versions(reg, y, TRAIN, tmp_path / "work", epochs=2, timestamps=ts)
    assert reg.show(bad).parent == good and reg.show(good).data_window["readings"] == TRAIN
    reg.promote(good)
    reg.promote(bad)  # the mistake the monitor must undo
    ys, stamps = y[TRAIN:TRAIN + STREAM], ts[TRAIN:TRAIN + STREAM]
    result = run_scenario(reg, ys, stamps, config=MonitorConfig(coverage_level=0.8))
    rb = result.rollback
    assert rb is not None and (rb.from_version, rb.to_version) == (bad, good)
    assert result.alarm is not None and result.alarm.step <= rb.step
    assert reg.champion == good and reg.show(bad).stage == "rejected"
    logged = [e for e in reg.events() if e["action"] == "rollback"]
    assert logged and logged[-1]["evidence"]["metrics"]["p_value"] < MonitorConfig().alpha
    assert 0.0 < rb.metrics["coverage"] <= 1.0  # the champion's 80 % interval hits
    # Rollback serves exactly the earlier model's forecasts (bit-identical, same stream),
    # and before it exactly the degraded model's.
    k = rb.step - 1
    assert np.array_equal(result.report.forecasts[k:], result.standalone[good][k:])
    assert np.array_equal(result.report.forecasts[:k], result.standalone[bad][:k])
    assert set(result.report.versions[k:]) == {good}
    figures = result.figures(ys, good, bad)
    assert figures["mae_champion_after_rollback"] < figures["mae_degraded_after_rollback"]
    print("NAB rollback:", json.dumps(figures))


@pytest.fixture()
def ar_registry(tmp_path) -> tuple[Registry, np.ndarray]:
    _, y = load_nab_temperature()
    coef, b, m, s = fit_ar(y[:3000], 8)
    good = write_linear_ar(tmp_path / "good.onnx", coef, b, m, s, sensor=SENSOR)
    worse = write_linear_ar(tmp_path / "worse.onnx", coef, b + 0.15, m, s, sensor=SENSOR)
    reg = Registry(tmp_path / "reg")
    reg.register(onnx=worse, name="old")
    reg.promote("old")
    reg.register(onnx=good, name="new")
    return reg, y[3000:5000]


def test_better_challenger_in_shadow_is_promoted_through_the_registry(ar_registry):
    reg, ys = ar_registry
    serving = MonitoredServing(reg, SENSOR, challenger="new", config=MonitorConfig())
    report = serving.run(ys)
    promos = [e for e in report.events if e.kind == "promote"]
    assert len(promos) == 1 and promos[0].to_version == "new"
    assert (reg.champion, reg.previous) == ("new", "old") and serving.champion == "new"
    assert serving.monitor.previous == "old"  # the old champion keeps running as fallback
    assert not [e for e in report.events if e.kind == "rollback"]


def test_unloadable_previous_disables_rollback_but_serving_goes_on(ar_registry, caplog):
    reg, ys = ar_registry
    reg.promote("new")
    (reg.show("old").path / "model.onnx").write_bytes(b"tampered")
    serving = MonitoredServing(reg, SENSOR)
    assert serving.monitor.previous is None and "rollback disabled" in caplog.text
    report = serving.run(ys[:100])
    assert np.all(np.isfinite(report.forecasts)) and reg.champion == "new"


BLOCKER = """
import sys
class Blocker:
    BLOCKED = {"torch", "statsmodels", "pandas", "polars", "river", "kafka", "matplotlib",
               "onnx", "tqdm", "scipy"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
"""


def test_rollback_runs_without_torch_or_other_heavy_packages(ar_registry, tmp_path):
    """What the edge box does: hold champion and previous, monitor, roll back."""
    reg, ys = ar_registry
    reg.promote("new")
    reg.promote("old")  # the worse one, by mistake
    np.save(tmp_path / "ys.npy", ys)
    script = BLOCKER + textwrap.dedent(f"""
        import numpy as np
        from tsforge.monitor import MonitoredServing
        from tsforge.registry import Registry
        reg = Registry({str(reg.root)!r})
        report = MonitoredServing(reg, {SENSOR!r}).run(np.load({str(tmp_path / "ys.npy")!r}))
        kinds = [e.kind for e in report.events]
        assert "rollback" in kinds and reg.champion == "new", kinds
        assert not any(m in sys.modules for m in ("torch", "onnx", "pandas", "river"))
        print("rolled back at", [e.step for e in report.events if e.kind == "rollback"])
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "rolled back at" in proc.stdout
