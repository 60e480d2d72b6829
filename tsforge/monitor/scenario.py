"""The rollback scenario on real data: a degraded version is promoted, caught, rolled back.

Data: NAB ``machine_temperature_system_failure.csv`` (bundled), a temperature sensor of
an industrial machine that runs into a known failure.  A lag MLP is fitted on the first
readings and exported (version 1, champion).  A deliberately degraded copy (its
transform chain mis-calibrated, as a preprocessing bug would do) is registered and
promoted by mistake (version 2).  :class:`MonitoredServing` then serves the rest of the
stream with version 1 running as the previous champion; the monitor raises an alarm and
rolls back by the documented rule.  Used by ``tests/test_rollback_nab.py`` and
``benchmarks/rollback.py``.  Training needs torch; serving and monitoring do not.
"""

from __future__ import annotations

import copy
import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.monitor.events import MonitorConfig, MonitorEvent
from tsforge.monitor.pipeline import MonitoredServing, ServingReport

SENSOR = "machine_temperature"
NAB_FILE = "machine_temperature_system_failure.csv"


def load_nab_temperature() -> tuple[np.ndarray, np.ndarray]:
    """Bundled NAB machine temperature: (epoch seconds, values), numpy and csv only."""
    from importlib import resources

    path = Path(str(resources.files("tsforge.datasets") / NAB_FILE))
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    stamps = np.array([r[0].replace(" ", "T") for r in rows], dtype="datetime64[s]")
    return stamps.astype(np.int64).astype(np.float64), np.array([float(r[1]) for r in rows])


def build_versions(registry: Any, y: np.ndarray, train_end: int, workdir: str | Path, *,
                   epochs: int = 3, degrade: float = 1.0, validation: int = 500,
                   timestamps: np.ndarray | None = None) -> tuple[str, str]:
    """Fit, export and register the champion and its degraded copy; return their names.

    ``degrade`` shifts the degraded copy's scale step by that many standard deviations.
    Both get their validation MAE over the ``validation`` readings after ``train_end``.
    """
    from tsforge.export import export_onnx
    from tsforge.models import create
    from tsforge.models.transformed import TransformedForecaster

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    chain = [{"kind": "difference"}, {"kind": "scale"}]
    good = TransformedForecaster(
        create("mlp", horizon=1, window=24, hidden=32, epochs=epochs, progress=False), chain)
    good.fit(y[:train_end])
    bad = copy.deepcopy(good)
    scale = bad.chain_.steps[-1]
    scale.mean = float(scale.mean) + degrade * float(scale.std)
    window = {"start_index": 0, "end_index": train_end, "readings": train_end}
    if timestamps is not None:
        window.update(start=float(timestamps[0]), end=float(timestamps[train_end - 1]))
    names = []
    for tag, model in (("champion", good), ("degraded", bad)):
        path = workdir / f"{tag}.onnx"
        export_onnx(model, path, sensor=SENSOR, parity_steps=200)
        mae = _stream_mae(path, y[train_end:train_end + validation])
        info = registry.register(
            onnx=path, metrics={"val_mae": mae, "val_readings": validation},
            data_window=window, parent=names[0] if names else None,
            notes=f"{tag} for the NAB rollback scenario")
        names.append(info.name)
    return names[0], names[1]


def _stream_mae(onnx_path: Path, ys: np.ndarray) -> float:
    from tsforge.runtime import StreamingRuntime

    rt = StreamingRuntime(onnx_path)
    f = np.array([rt.push(SENSOR, v)[0] for v in ys])
    return float(np.mean(np.abs(f[:-1] - ys[1:])))


@dataclass
class ScenarioResult:
    """What the scenario served and measured (errors in engineering units)."""

    report: ServingReport
    standalone: dict[str, np.ndarray]
    alarm: MonitorEvent | None
    rollback: MonitorEvent | None
    serve_seconds: float

    def figures(self, ys: np.ndarray, good: str, bad: str) -> dict[str, Any]:
        """Readings and seconds from alarm to rollback; MAEs after the rollback."""
        rb = self.rollback
        out: dict[str, Any] = {"rolled_back": rb is not None, "readings": int(ys.shape[0]),
                               "serve_seconds": round(self.serve_seconds, 3)}
        if rb is None:
            return out
        k = rb.step - 1  # the forecast served after reading index k is the good model's
        err = {v: np.abs(f[k:-1, 0] - ys[k + 1:]) for v, f in self.standalone.items()}
        served = np.abs(self.report.forecasts[k:-1, 0] - ys[k + 1:])
        out.update(
            rollback_at_reading=rb.step,
            readings_from_alarm_to_rollback=rb.readings_since_alarm,
            seconds_from_alarm_to_rollback=rb.seconds_since_alarm,
            stream_minutes_from_alarm_to_rollback=(
                None if rb.timestamp is None or self.alarm is None
                or self.alarm.timestamp is None else (rb.timestamp - self.alarm.timestamp) / 60),
            mae_served_after_rollback=float(served.mean()),
            mae_champion_after_rollback=float(err[good].mean()),
            mae_degraded_after_rollback=float(err[bad].mean()),
            p_value=rb.metrics.get("p_value"),
        )
        return out


def run_scenario(registry: Any, ys: np.ndarray, timestamps: np.ndarray | None = None, *,
                 config: MonitorConfig | None = None) -> ScenarioResult:
    """Serve ``ys`` from the registry's champion with the monitor, and each version alone.

    The standalone runs (one :class:`StreamingRuntime` per version, no monitor) are the
    reference the served forecasts are compared with, bit for bit.
    """
    from tsforge.runtime import StreamingRuntime

    versions = [v for v in (registry.champion, registry.previous) if v is not None]
    serving = MonitoredServing(registry, SENSOR, config=config)
    t0 = time.perf_counter()
    report = serving.run(ys, timestamps=timestamps)
    seconds = time.perf_counter() - t0
    standalone = {}
    for v in versions:
        rt = StreamingRuntime(registry.load_artifact(v))
        standalone[v] = np.array([rt.push(SENSOR, y) for y in ys])
    rollback = next((e for e in report.events if e.kind == "rollback"), None)
    alarms = [e for e in report.events if e.kind == "alarm"
              and (rollback is None or e.step <= rollback.step)]
    return ScenarioResult(report, standalone, alarms[-1] if alarms else None, rollback, seconds)
