"""Edge latency: onnxruntime vs PyTorch eager on the same streaming step, side by side.

Models: the lag-window MLP (64 units x 2 layers, window 32), a 64-unit GRU (BPTT) and a
64-unit GRU trained with fixed feedback (DSF), each fitted briefly on the bundled NAB
machine-temperature series and exported as a bundle (with its int8 step).  Both engines
run the identical step ``(x, state) -> (forecast, new_state)`` on one thread:

- single stream: per-call latency p50/p99 and mean seconds per step (batch 1);
- batched: sensor-steps per second for 1, 100 and 1,000 sensors in one call;
- tsforge's own serving next to bare onnxruntime: ``StreamingRuntime.push`` (one
  reading in engineering units: transform chain, bound ONNX call, inverse; intervals
  off, as ``tsforge-edge run`` without ``--intervals``) and the engine's batched step
  (:meth:`tsforge.engine.GroupEngine.step`) for the same batch sizes;
- int8: the quantised step's single-stream latency and its measured accuracy cost;
- the edge process: cold start (spawn to first forecast written) and peak RSS of
  ``tsforge-edge run BUNDLE --no-drift`` serving one reading (an edge box has no river,
  so no drift detector is loaded there; this machine has river installed).

The exported step is the cell form of the recurrent cores (:mod:`tsforge.export.cells`,
verified against them at export); the PyTorch baseline is the library's own core.

    python benchmarks/edge_latency.py [--quick]

Last line: JSON with ratio = PyTorch eager seconds per step / onnxruntime seconds per
step (median call, single stream, 64-unit GRU; the ratio of means is reported too), the
GRU's p99 and the batched throughput (best of 5 runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import tsforge.datasets
from tsforge.export import export_bundle
from tsforge.models import create
from tsforge.models.transformed import TransformedForecaster
from tsforge.runtime.artifact import session_options

MODELS = {
    "mlp": {"window": 32, "hidden": 64, "layers": 2, "epochs": 1},
    "gru": {"hidden": 64, "seq_len": 64, "epochs": 1},
    "dsf_gru": {"hidden": 64, "seq_len": 64, "epochs": 1},
}
BATCHES = (1, 100, 1000)
CHAIN = [{"kind": "difference"}, {"kind": "scale"}]


def series(n: int) -> np.ndarray:
    path = Path(tsforge.datasets.__file__).parent / "machine_temperature_system_failure.csv"
    return np.genfromtxt(path, delimiter=",", skip_header=1, usecols=1, max_rows=n)


def latencies(fn, steps: int) -> np.ndarray:
    """Seconds of each of ``steps`` calls (after a warm-up), with the GC paused."""
    for _ in range(min(200, steps)):
        fn()
    out = np.empty(steps)
    gc.disable()
    try:
        for i in range(steps):
            t0 = time.perf_counter()
            fn()
            out[i] = time.perf_counter() - t0
    finally:
        gc.enable()
    return out


def ort_step(session, x: np.ndarray, s: np.ndarray):
    feed = {"x": x, "state": s}

    def step() -> None:
        _, feed["state"] = session.run(None, feed)

    return step


def torch_step(core, x: np.ndarray, s: np.ndarray):
    xt, st = torch.as_tensor(x), [torch.as_tensor(s)]

    def step() -> None:
        with torch.inference_mode():
            _, st[0] = core(xt, st[0])

    return step


def throughput(make, batch: int, steps: int, repeats: int = 5) -> float:
    """Sensor-steps per second of ``make(batch)``: the best of ``repeats`` runs of ``steps``
    calls (the least disturbed by other processes on a shared machine)."""
    fn = make(batch)
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, time.perf_counter() - t0)
    return batch * steps / best


def edge_process(bundle: Path, reading: str) -> tuple[float, float]:
    """Cold start (s, spawn to first forecast) and peak RSS (MB) of ``tsforge-edge run``."""
    # VmHWM: this process's own peak (ru_maxrss would include the parent's before exec)
    code = ("import sys\nfrom tsforge.runtime.cli import main\n"
            f"rc = main(['run', {str(bundle)!r}, '--no-drift'])\nsys.stdout.flush()\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print('RSS', hwm.split()[1], file=sys.stderr)\nsys.exit(rc)\n")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.stdin.write(reading + "\n")
    proc.stdin.flush()
    proc.stdout.readline()  # header
    proc.stdout.readline()  # the first forecast
    cold = time.perf_counter() - t0
    proc.stdin.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    rss_kb = float(next(line.split()[1] for line in err.splitlines() if line.startswith("RSS")))
    return cold, rss_kb / 1024


def tsforge_figures(path: Path, y: np.ndarray, steps: int, batch_steps: int
                    ) -> tuple[dict, dict]:
    """What a user of tsforge gets: ``push`` latency and the engine's batched rate."""
    from tsforge.engine import GroupEngine
    from tsforge.runtime import StreamingRuntime
    from tsforge.runtime.artifact import load_artifact

    rt = StreamingRuntime(path, intervals=False)
    level = float(y[-1])
    lat = latencies(lambda: rt.push("m", level), steps)
    single = {"p50_us": 1e6 * float(np.median(lat)), "p99_us": 1e6 * float(np.percentile(lat, 99)),
              "mean_us": 1e6 * float(lat.mean())}

    def make(b: int):
        eng = GroupEngine(load_artifact(path), intervals=False, capacity=b)
        for i in range(b):
            eng.sensor_index(f"s{i}")
        values = np.full((b, 1), level)
        return lambda: eng.step(None, values)

    batched = {str(b): throughput(make, b, max(20, batch_steps // max(1, b // 10)))
               for b in BATCHES}
    return single, batched


def bench_model(name: str, params: dict, y: np.ndarray, tmp: Path, steps: int,
                batch_steps: int) -> dict:
    import onnxruntime as ort

    model = TransformedForecaster(create(name, horizon=1, **params), CHAIN).fit(y)
    rep = export_bundle(model, tmp / name, sensor="m", int8=True, parity_steps=300)
    core = model.model.streaming_core().eval()
    s0 = np.asarray(model.model.stream_state(), dtype=np.float32)
    sess = {k: ort.InferenceSession(str(tmp / name / "v0001" / f), session_options(1),
                                    providers=["CPUExecutionProvider"])
            for k, f in (("f32", "model.onnx"), ("int8", "model.int8.onnx"))}
    rng = np.random.default_rng(0)

    def inputs(b: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((b, 1)).astype(np.float32)
        return x, np.repeat(s0[None], b, axis=0)

    res = {"params": params, "parity_max_abs_error": rep.parity_max_abs_error,
           "int8_cost": {k: rep.int8[k] for k in ("max_abs_error", "rmse", "relative_rmse")}}
    for engine, fn in (("onnxruntime", ort_step(sess["f32"], *inputs(1))),
                       ("torch", torch_step(core, *inputs(1))),
                       ("onnxruntime_int8", ort_step(sess["int8"], *inputs(1)))):
        lat = latencies(fn, steps)
        res[engine] = {"p50_us": 1e6 * float(np.median(lat)),
                       "p99_us": 1e6 * float(np.percentile(lat, 99)),
                       "mean_us": 1e6 * float(lat.mean())}
    # seconds per step = median call: robust to other processes preempting this one
    res["ratio"] = res["torch"]["p50_us"] / res["onnxruntime"]["p50_us"]
    res["ratio_mean"] = res["torch"]["mean_us"] / res["onnxruntime"]["mean_us"]
    res["batched_sensor_steps_per_s"] = {
        engine: {str(b): throughput(lambda b, f=make: f(*inputs(b)), b,
                                    max(20, batch_steps // max(1, b // 10)))
                 for b in BATCHES}
        for engine, make in (("onnxruntime", lambda x, s: ort_step(sess["f32"], x, s)),
                             ("torch", lambda x, s: torch_step(core, x, s)))
    }
    res["tsforge"], res["tsforge_batched_sensor_steps_per_s"] = tsforge_figures(
        tmp / name / "v0001" / "model.onnx", y, steps, batch_steps)
    res["cold_start_s"], res["rss_mb"] = edge_process(tmp / name, f"0,m,{float(y[-1])!r}")
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (< 2 minutes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, batch_steps = (3000, 300) if args.quick else (20000, 2000)
    y = series(1500 if args.quick else 4000)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in MODELS.items():
            results[name] = bench_model(name, params, y, Path(tmp), steps, batch_steps)
    print(f"{'model':8} {'engine':17} {'p50 us':>8} {'p99 us':>8} {'mean us':>8} "
          + " ".join(f"{f'{b} sensors':>12}" for b in BATCHES) + "  (sensor-steps/s)")
    for name, r in results.items():
        for engine in ("onnxruntime", "tsforge", "torch", "onnxruntime_int8"):
            lat = r[engine]
            thr = (r["tsforge_batched_sensor_steps_per_s"] if engine == "tsforge"
                   else r["batched_sensor_steps_per_s"].get(engine, {}))
            print(f"{name:8} {engine:17} {lat['p50_us']:8.1f} {lat['p99_us']:8.1f} "
                  f"{lat['mean_us']:8.1f} " + " ".join(
                      f"{thr[str(b)]:12.3g}" if thr else f"{'':12}" for b in BATCHES))
        q = r["int8_cost"]
        print(f"{name:8} ratio torch/ort {r['ratio']:.2f}x; int8 cost RMSE {q['rmse']:.3g} "
              f"({100 * q['relative_rmse']:.2f}% of spread); edge cold start "
              f"{r['cold_start_s']:.2f} s, RSS {r['rss_mb']:.0f} MB")
    gru = results["gru"]
    print(json.dumps({
        "benchmark": "edge_latency", "quick": args.quick,
        "baseline": "PyTorch eager, 1 thread", "candidate": "onnxruntime, 1 thread",
        "ratio": round(gru["ratio"], 3), "ratio_mean": round(gru["ratio_mean"], 3),
        "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "gru64_ort_p50_us": round(gru["onnxruntime"]["p50_us"], 2),
        "gru64_ort_p99_us": round(gru["onnxruntime"]["p99_us"], 2),
        "gru64_torch_p99_us": round(gru["torch"]["p99_us"], 2),
        "gru64_batched_1000_sensor_steps_per_s": round(
            gru["batched_sensor_steps_per_s"]["onnxruntime"]["1000"]),
        "gru64_tsforge_push_p50_us": round(gru["tsforge"]["p50_us"], 2),
        "gru64_tsforge_push_p99_us": round(gru["tsforge"]["p99_us"], 2),
        "tsforge_batched_1000_sensor_steps_per_s": {
            k: round(v["tsforge_batched_sensor_steps_per_s"]["1000"]) for k, v in results.items()},
        "ratios": {k: round(v["ratio"], 3) for k, v in results.items()},
        "cold_start_s": {k: round(v["cold_start_s"], 3) for k, v in results.items()},
        "rss_mb": {k: round(v["rss_mb"], 1) for k, v in results.items()},
        "models": results,
    }, default=float))


if __name__ == "__main__":
    main()
