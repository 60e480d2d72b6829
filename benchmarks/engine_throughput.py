"""Serving engine vs bare onnxruntime on the same exported step, side by side.

Models: a 64-unit GRU and the lag-window MLP (64 units x 2 layers), each fitted
briefly on the bundled NAB machine-temperature series with a difference -> scale
chain and exported (horizon 1, the library's default 80/95 % intervals).  In one
process, interleaved (each repetition times every contender once; the minimum
over repetitions is reported, the run least disturbed by other processes), with
one onnxruntime thread and BLAS threads pinned to 1:

- ``raw``: onnxruntime alone through an ``IOBinding`` over preallocated buffers
  (two bindings alternating over double-buffered state), the inputs already
  transformed: the floor any serving code on top of this model pays;
- ``engine``: :class:`tsforge.engine.GroupEngine.step` with every sensor's
  readings in engineering units (what the Kafka worker and ``push_many`` call):
  validation, transform chain, the ONNX call, inverse chain, and with
  ``intervals`` the adaptive conformal intervals;
- ``push_many``: :meth:`StreamingRuntime.push_many` (sensor names in, the
  library's call);
- one sensor: ``raw`` with batch 1 against :meth:`StreamingRuntime.push`.

    python benchmarks/engine_throughput.py [--quick] [--sensors 1000]

Last line: JSON with ``ratio`` (engine / raw seconds per sensor-step, GRU-64,
intervals off), ``ratio_intervals``, ``ratio_b1`` (push / raw batch 1),
``ratio_mlp`` and ``sensor_steps_per_s`` of each.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHAIN = [{"kind": "difference"}, {"kind": "scale"}]
MODELS = {"gru": {"hidden": 64, "seq_len": 64, "epochs": 1},
          "mlp": {"window": 32, "hidden": 64, "layers": 2, "epochs": 1}}


def export(name: str, params: dict, y: np.ndarray, folder: Path) -> Path:
    """Fit ``name`` briefly on ``y`` and export its streaming step; the ONNX path."""
    import torch

    from tsforge.export import export_onnx
    from tsforge.models import create
    from tsforge.models.transformed import TransformedForecaster

    torch.set_num_threads(1)
    model = TransformedForecaster(create(name, horizon=1, **params), CHAIN).fit(y)
    return Path(export_onnx(model, folder / name / "model.onnx", sensor="m",
                            parity_steps=100).onnx_path)


def raw_step(path: Path, batch: int) -> Callable[[np.ndarray], None]:
    """onnxruntime alone: IOBinding, preallocated buffers, double-buffered state."""
    import onnxruntime as ort

    from tsforge.runtime.artifact import load_artifact, session_options

    art = load_artifact(path)
    sess = ort.InferenceSession(str(path), session_options(1),
                                providers=["CPUExecutionProvider"])
    x = np.zeros((batch, art.n_channels), np.float32)
    out = np.zeros((batch, art.horizon), np.float32)
    states = [np.zeros((batch, *art.state_shape), np.float32) for _ in range(2)]
    binds = []
    for a in (0, 1):
        io = sess.io_binding()
        for name, buf, inp in (("x", x, True), ("state", states[a], True),
                               (sess.get_outputs()[0].name, out, False),
                               (sess.get_outputs()[1].name, states[1 - a], False)):
            value = ort.OrtValue.ortvalue_from_numpy(buf)  # no copy
            (io.bind_ortvalue_input if inp else io.bind_ortvalue_output)(name, value)
        binds.append(io)
    cur = [0]

    def step(z: np.ndarray) -> None:
        x[:, 0] = z
        sess.run_with_iobinding(binds[cur[0]])
        cur[0] = 1 - cur[0]

    return step


def contenders(path: Path, sensors: int) -> dict[str, tuple[int, Callable[[np.ndarray], None]]]:
    """name -> (sensors per call, step(readings)) for one exported model."""
    from tsforge.engine import GroupEngine
    from tsforge.runtime import StreamingRuntime
    from tsforge.runtime.artifact import load_artifact

    names = [f"s{i}" for i in range(sensors)]
    out: dict[str, tuple[int, Callable[[np.ndarray], None]]] = {
        "raw": (sensors, raw_step(path, sensors))}
    for label, intervals in (("engine", False), ("engine_intervals", True)):
        eng = GroupEngine(load_artifact(path), intervals=intervals, capacity=sensors)
        for s in names:
            eng.sensor_index(s)

        def step(v: np.ndarray, e: GroupEngine = eng) -> None:
            e.step(None, v[:, None])

        out[label] = (sensors, step)
    rt = StreamingRuntime(path, intervals=False)
    out["push_many"] = (sensors, lambda v: rt.push_many(names, v))
    out["raw_b1"] = (1, raw_step(path, 1))
    one = StreamingRuntime(path, intervals=False)
    out["push_b1"] = (1, lambda v: one.push("m", float(v[0])))
    return out


def measure(runs: dict[str, tuple[int, Callable[[np.ndarray], None]]], y: np.ndarray,
            steps: int, repeats: int) -> dict[str, float]:
    """Seconds per sensor-step of each contender: min over interleaved repetitions."""
    best = dict.fromkeys(runs, float("inf"))
    blocks = {k: y[:, :b] for k, (b, _) in runs.items()}
    for _ in range(repeats):
        for name, (batch, fn) in runs.items():
            data = blocks[name]
            t0 = time.perf_counter()
            for t in range(steps):
                fn(data[t])
            best[name] = min(best[name], (time.perf_counter() - t0) / (steps * batch))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (about a minute)")
    parser.add_argument("--sensors", type=int, default=1000)
    args = parser.parse_args()
    import tsforge.datasets  # BLAS threads: pinned to 1 by the environment set above

    csv = Path(tsforge.datasets.__file__).parent / "machine_temperature_system_failure.csv"
    hist = np.genfromtxt(csv, delimiter=",", skip_header=1, usecols=1, max_rows=1500)
    steps, repeats = (40, 15) if args.quick else (200, 31)
    rng = np.random.default_rng(0)
    # Live readings of every sensor: the series' level plus noise, (steps, sensors).
    live = hist[-1] + np.cumsum(rng.normal(0, 0.5, (steps, args.sensors)), axis=0)
    res: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in MODELS.items():
            runs = contenders(export(name, params, hist, Path(tmp)), args.sensors)
            measure(runs, live, min(steps, 30), 1)  # warm-up: bindings, first sensors
            res[name] = measure(runs, live, steps, repeats)
    print(f"{'model':5} {'contender':17} {'us/sensor-step':>15} {'sensor-steps/s':>15} "
          f"{'x raw':>7}")
    for name, r in res.items():
        for k, v in r.items():
            base = r["raw_b1"] if k.endswith("b1") else r["raw"]
            print(f"{name:5} {k:17} {v * 1e6:15.3f} {1 / v:15.0f} {v / base:7.2f}")
    gru, mlp = res["gru"], res["mlp"]
    print(json.dumps({
        "benchmark": "engine_throughput", "quick": args.quick, "sensors": args.sensors,
        "steps": steps, "repeats": repeats, "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "ratio": round(gru["engine"] / gru["raw"], 3),
        "ratio_intervals": round(gru["engine_intervals"] / gru["raw"], 3),
        "ratio_b1": round(gru["push_b1"] / gru["raw_b1"], 3),
        "ratio_mlp": round(mlp["engine"] / mlp["raw"], 3),
        "ratio_push_many": round(gru["push_many"] / gru["raw"], 3),
        "sensor_steps_per_s": {f"{m}_{k}": round(1 / v) for m, r in res.items()
                               for k, v in r.items()},
    }))


if __name__ == "__main__":
    main()
