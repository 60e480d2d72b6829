"""Cost of running the previous registry version in shadow in the Kafka service's engine.

Six stretches of the bundled NAB machine-temperature series are served by one ESN
group fitted at start-up and registered (v0001).  The same model is registered again
and promoted (v0002), so the registry holds a previous version.  Measured side by
side on the same batches of readings (the engine's ``step``, no broker):

- baseline: the champion alone (``OnnxEngine`` without a monitor: batched path);
- candidate: the champion with v0001 in shadow and the rollback rule scoring both
  (``OnnxEngine(..., monitor=MonitorConfig())``).

    python benchmarks/serve_shadow.py [--quick]

Last line: JSON with readings per second of each and ratio = candidate / baseline
seconds per reading.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SENSORS = 6
HISTORY = 600


def _series(n: int) -> dict[str, np.ndarray]:
    import polars as pl

    from tsforge.demo import bundled_csv

    y = pl.read_csv(bundled_csv())["value"].to_numpy().astype(float)
    return {f"machine-{i}": y[i * n:(i + 1) * n] for i in range(SENSORS)}


def _fit(root: Path, series: dict[str, np.ndarray]) -> None:
    import datetime as dt

    from tsforge.pipeline import parse_spec
    from tsforge.serve.models import prepare_models

    rows = ["timestamp," + ",".join(series)]
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    for t in range(HISTORY):
        stamp = (t0 + dt.timedelta(minutes=5 * t)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(stamp + "," + ",".join(repr(float(v[t])) for v in series.values()))
    (root / "history.csv").write_text("\n".join(rows) + "\n")
    spec = parse_spec({"name": "bench", "use": "kafka",
                       "model": {"family": "esn", "horizon": 12, "transforms": "auto",
                                 "params": {"reservoir": 64},
                                 "history": str(root / "history.csv")},
                       "intervals": {"levels": [0.8]},
                       "registry": {"path": str(root / "models")}})
    prepare_models(spec)


def _batches(series: dict[str, np.ndarray], steps: int, per_batch: int) -> list:
    from tsforge.connectors.base import ReadingBatch

    names = list(series)
    out = []
    for t0 in range(0, steps, per_batch):
        ts = np.arange(t0, min(steps, t0 + per_batch))
        sensor = np.repeat(np.asarray(names), len(ts)).reshape(len(names), -1).T.reshape(-1)
        values = np.stack([series[s][HISTORY + ts] for s in names], axis=1).reshape(-1, 1)
        stamps = np.repeat(ts, len(names)).astype(np.int64)
        out.append(ReadingBatch(sensor, stamps, values, np.arange(len(stamps))))
    return out


def _run(engine, batches: list) -> float:
    start = time.perf_counter()
    for b in batches:
        engine.step(b)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer readings (< 2 minutes)")
    args = parser.parse_args()
    steps = 300 if args.quick else 2000
    from tsforge.monitor import MonitorConfig
    from tsforge.registry import Registry
    from tsforge.serve.engine import OnnxEngine
    from tsforge.serve.models import load_groups

    series = _series(HISTORY + steps)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _fit(root, series)
        (group,) = load_groups(root / "models")
        registry = Registry(group.registry, create=False)
        again = registry.register(onnx=group.onnx_path, family=group.family,
                                  extra={"sensors": group.sensors, "group": group.name})
        registry.promote(again.name)
        (champion,) = load_groups(root / "models")
        batches = _batches(series, steps, per_batch=100)
        n = steps * SENSORS
        base = _run(OnnxEngine([champion]), batches)
        shadowed = OnnxEngine([champion], monitor=MonitorConfig())
        assert shadowed.shadows, "the previous version should run in shadow"
        cand = _run(shadowed, batches)
    rows = [("champion alone (baseline)", base), ("champion + previous in shadow", cand)]
    print(f"{'engine':32s} {'readings/s':>12s} {'us/reading':>11s}")
    for label, sec in rows:
        print(f"{label:32s} {n / sec:12.0f} {1e6 * sec / n:11.1f}")
    print(json.dumps({"benchmark": "serve_shadow", "readings": n, "sensors": SENSORS,
                      "baseline": "champion alone (batched)",
                      "candidate": "champion + previous version in shadow + rollback rule",
                      "baseline_readings_per_s": round(n / base, 1),
                      "candidate_readings_per_s": round(n / cand, 1),
                      "ratio": round(cand / base, 2)}))


if __name__ == "__main__":
    main()
