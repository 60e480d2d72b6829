"""Serving ``auto`` (the aggregate of experts) vs its experts' bare onnxruntime calls.

``auto`` is fitted on the bundled NAB machine-temperature series with the servable
candidates naive, seasonal naive, linear and esn (horizon 1; the experts kept are
printed: seasonal naive needs a season the series may not have), calibrated and
exported as an aggregate.  In one process, interleaved (each repetition times every
contender once; the minimum over repetitions is reported), one onnxruntime
thread, BLAS threads pinned to 1:

- ``bare_experts``: the K experts' ONNX steps alone, each through an ``IOBinding``
  over preallocated buffers, inputs already transformed (the floor any code that
  serves these experts pays; no transform chains, no aggregation);
- ``engine``: :meth:`AggregateEngine.serve` with one reading of every sensor in
  engineering units (what the Kafka worker calls): the experts' engines
  (validation, chains, ONNX, inverse chains), batched BOA, the river drift
  detectors per sensor that restart the weights, intervals off;
- ``engine_no_drift``: the same without the drift detectors (their share);
- ``engine_intervals``: with the aggregate's conformal intervals;
- one sensor: ``bare_b1`` (the K steps at batch 1) against
  :meth:`StreamingRuntime.push` (the edge box's call).

    python benchmarks/aggregate_serving.py [--quick] [--sensors 64]

Last line: JSON with ``us_per_reading_engine``, ``us_per_reading_bare_experts``,
``ratio`` (their quotient, ``sensors`` sensors per call), ``n_experts``, the
one-sensor figures and every contender's microseconds per reading.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from engine_throughput import measure, raw_step

EXPERTS = "naive,seasonal_naive,linear,esn"
PARAMS = {"linear": {"window": 48}, "esn": {"reservoir": 64}}


def export(y: np.ndarray, folder: Path) -> Path:
    """Fit ``auto`` on ``y`` (intervals calibrated on the last 20 %) and export it."""
    import torch

    from tsforge.api import fit_calibrated
    from tsforge.export.aggregate import export_aggregate

    torch.set_num_threads(1)
    model = fit_calibrated(y, model="auto", horizon=1, calibration=0.2,
                           params={"experts": EXPERTS, "params": PARAMS, "prune": 100.0})
    return Path(export_aggregate(model, folder / "auto", sensor="m", parity_steps=100).out)


def bare(path: Path, batch: int) -> Callable[[np.ndarray], None]:
    """The experts' ONNX steps alone, one after the other, on the same inputs."""
    from tsforge.runtime.artifact import load_aggregate

    steps = [raw_step(a.path, batch) for a in load_aggregate(path).experts]

    def step(z: np.ndarray) -> None:
        for s in steps:
            s(z)

    return step


def contenders(path: Path, sensors: int) -> dict[str, tuple[int, Callable[[np.ndarray], None]]]:
    """name -> (sensors per call, step(readings))."""
    from tsforge.engine.aggregate import AggregateEngine
    from tsforge.runtime import StreamingRuntime
    from tsforge.runtime.artifact import load_aggregate

    names = [f"s{i}" for i in range(sensors)]
    idx = np.arange(sensors)
    out: dict[str, tuple[int, Callable[[np.ndarray], None]]] = {
        "bare_experts": (sensors, bare(path, sensors))}
    for label, kw in (("engine", {}), ("engine_no_drift", {"drift": False}),
                      ("engine_intervals", {"intervals": True})):
        eng = AggregateEngine(load_aggregate(path), **{"intervals": False, **kw})
        eng.indices(names)

        def step(v: np.ndarray, e: AggregateEngine = eng) -> None:
            e.serve(idx, v[:, None])

        out[label] = (sensors, step)
    out["bare_b1"] = (1, bare(path, 1))
    one = StreamingRuntime(path, intervals=False)
    out["push_b1"] = (1, lambda v: one.push("m", float(v[0])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (about a minute)")
    parser.add_argument("--sensors", type=int, default=64)
    args = parser.parse_args()
    import logging

    import tsforge.datasets  # BLAS threads: pinned to 1 by the environment set above

    logging.getLogger("tsforge.engine").setLevel(logging.ERROR)  # cold sensors: expected
    csv = Path(tsforge.datasets.__file__).parent / "machine_temperature_system_failure.csv"
    hist = np.genfromtxt(csv, delimiter=",", skip_header=1, usecols=1, max_rows=1500)
    steps, repeats = (60, 7) if args.quick else (300, 21)
    rng = np.random.default_rng(0)
    live = hist[-1] + np.cumsum(rng.normal(0, 0.5, (steps, args.sensors)), axis=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = export(hist, Path(tmp))
        from tsforge.runtime.artifact import load_aggregate

        kept = load_aggregate(path).families
        runs = contenders(path, args.sensors)
        measure(runs, live, min(steps, 30), 1)  # warm-up: bindings, first readings
        res = measure(runs, live, steps, repeats)
    print(f"{'contender':17} {'us/reading':>11} {'readings/s':>11} {'x bare':>7}")
    for k, v in res.items():
        base = res["bare_b1"] if k.endswith("b1") else res["bare_experts"]
        print(f"{k:17} {v * 1e6:11.2f} {1 / v:11.0f} {v / base:7.2f}")
    print(json.dumps({
        "benchmark": "aggregate_serving", "quick": args.quick, "sensors": args.sensors,
        "n_experts": len(kept), "experts": ",".join(kept), "steps": steps,
        "repeats": repeats, "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "us_per_reading_engine": round(res["engine"] * 1e6, 2),
        "us_per_reading_bare_experts": round(res["bare_experts"] * 1e6, 2),
        "ratio": round(res["engine"] / res["bare_experts"], 2),
        "ratio_no_drift": round(res["engine_no_drift"] / res["bare_experts"], 2),
        "us_per_reading_push_b1": round(res["push_b1"] * 1e6, 2),
        "us_per_reading_bare_b1": round(res["bare_b1"] * 1e6, 2),
        "ratio_b1": round(res["push_b1"] / res["bare_b1"], 2),
        "us_per_reading": {k: round(v * 1e6, 2) for k, v in res.items()},
    }))


if __name__ == "__main__":
    main()
