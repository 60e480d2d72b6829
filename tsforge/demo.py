"""``tsforge demo``: the whole product path on a real industrial series.

Bundled data: NAB ``machine_temperature_system_failure.csv`` (MIT licence), a
temperature sensor on an internal component of a large industrial machine that
runs into a known failure.  Steps: validate → analyse stationarity → choose the
transform chain → fit naive, seasonal naive and the lag MLP → walk-forward
backtest → export the MLP to ONNX → stream the held-out tail through the
torch-free runtime and check it reproduces the library → summary and plots.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

DEMO_FILE = "machine_temperature_system_failure.csv"
HORIZON = 12  # one hour ahead at 5-minute sampling
DAY = 288  # readings per day at 5-minute sampling


def bundled_csv() -> Path:
    """Path of the bundled NAB machine-temperature CSV."""
    return Path(str(resources.files("tsforge.datasets") / DEMO_FILE))


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(out_dir: str | Path = "tsforge-demo-out", *, quick: bool = False) -> dict[str, Any]:
    """Run the demo, print a summary and write plots, model and JSON to ``out_dir``."""
    from tsforge.backtest import backtest
    from tsforge.data import prepare, read_csv
    from tsforge.export import export_onnx
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.plotting import plot_backtest
    from tsforge.preprocess import analyze, plot_decomposition
    from tsforge.report.study import runtime_check

    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _say(f"tsforge demo: NAB machine temperature (bundled), output in {out.resolve()}\n")

    _say("1/6 validate")
    frame, report = prepare(read_csv(bundled_csv()))
    _say(report.summary())
    y = frame.column(frame.sensors[0])
    n_train = int(len(y) * 0.7)

    _say("\n2/6 analyse stationarity on the training part")
    stat = analyze(y[:n_train], name="machine temperature")
    _say(stat.summary())
    plot_decomposition(y[:n_train], stat, out / "decomposition.png", time=frame.time[:n_train],
                       title="NAB machine temperature: STL decomposition (training part)")

    _say(f"\n3/6 fit and backtest (horizon {HORIZON} = 1 hour, stream {len(y) - n_train} readings)")
    # quick is a smoke run: 5 passes of batch 256 (~300 steps), not a converged fit
    quick_size = {"epochs": 5, "batch_size": 256} if quick else {"epochs": 25}
    mlp_params = {"window": 48, "hidden": 64, "progress": True, **quick_size}
    exported: dict[str, Any] = {}

    def export_after_fit(model: TransformedForecaster) -> None:
        if model.name == "mlp":
            exported["report"] = export_onnx(model, out / "mlp.onnx", sensor="machine_temperature")

    # Seasonal naive repeats the same time of the previous day (288 readings): the
    # baseline a plant engineer would use, whether or not the analysis finds a season.
    models = ["naive", ("seasonal_naive", {"period": DAY}), ("mlp", mlp_params)]
    result = backtest(y, models=models, horizon=HORIZON, train_fraction=0.7,
                      transforms=stat.transforms, period=stat.period or 1,
                      on_fitted=export_after_fit)
    _say(result.table())
    plot_backtest(result, out / "backtest.png", time=frame.time,
                  title="NAB machine temperature", unit="°F")

    rep = exported["report"]
    _say(f"\n4/6 ONNX export: {rep.onnx_path} ({rep.size_bytes / 1024:.1f} KiB), "
         f"parity vs PyTorch {rep.parity_max_abs_error:.1e} over {rep.parity_steps} steps")

    _say("\n5/6 stream the held-out tail through the torch-free runtime")
    check = runtime_check(rep, result, "mlp", "machine_temperature")
    gap, lat50, lat99 = check["max_abs_diff_vs_library"], check["p50_us"], check["p99_us"]
    _say(f"runtime vs library forecasts: max |diff| = {gap:.2e} °F over {check['steps']} "
         f"steps; onnxruntime step latency p50 {lat50:.1f} µs, p99 {lat99:.1f} µs")

    elapsed = time.perf_counter() - t_start
    summary = {
        "data": {"file": DEMO_FILE, "readings": len(y), "validation": report.to_dict()},
        "analysis": stat.to_dict(),
        "backtest": result.to_json(),
        "export": rep.to_dict(),
        "runtime": {"max_abs_diff_vs_library": gap, "p50_us": lat50, "p99_us": lat99},
        "seconds": elapsed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    _say(f"\n6/6 done in {elapsed:.0f} s. Files: {files}")
    return summary
