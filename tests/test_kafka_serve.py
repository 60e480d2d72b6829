"""``tsforge serve`` against a real Kafka-protocol broker (Tansu, see kafka_broker.py).

Each test has its own topics and consumer group on the session's broker.  The
forecasts read back are checked against a reference: the same model fed each
sensor's readings in one uninterrupted sequence, so a worker that lost a
sensor's state across a crash or a partition move would fail the comparison.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kafka", reason="kafka-python is not installed: pip install 'tsforge[all]'")

from kafka_broker import free_port
from tsforge.connectors import KafkaSink, create_topics, read_topic

from tsforge.serve.output import forecast_id

GROUP_TIMEOUTS = {"session_timeout_ms": 10000, "max_poll_interval_ms": 15000}


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_config(path: Path, bootstrap: str, name: str, served, *, every_seconds: float = 1.0,
                 max_poll_records: int = 500, layout: str = "step", store: Path | None = None,
                 extra: str = "", model: tuple[str, ...] = ('family = "esn"',),
                 registry: bool = True) -> Path:
    """A pipeline spec for topics ``{name}-in/-out/-dlq`` and group ``{name}``; ``model``
    holds the ``[model]`` lines besides the horizon, ``registry`` False keeps the models
    under the checkpoint folder."""
    kafka = {"bootstrap_servers": [bootstrap], "input_topic": f"{name}-in",
             "output_topic": f"{name}-out", "dead_letter_topic": f"{name}-dlq",
             "group_id": name, "max_poll_records": max_poll_records, "poll_timeout_ms": 200,
             "output_layout": layout, **GROUP_TIMEOUTS}
    lines = [f'name = "{name}"', 'use = "kafka"', "[kafka]"]
    lines += [f"{k} = {_toml(v)}" for k, v in kafka.items()]
    lines += ["[model]", *model, f"horizon = {served.horizon}",
              "[intervals]", "levels = [0.8]", "[drift]", 'detectors = ["adwin"]',
              *(["[registry]", f'path = "{store or served.store}"'] if registry else []),
              "[checkpoint]", f'path = "{path.parent / (name + "-ckpt")}"',
              f"every_seconds = {every_seconds}", "[metrics]", "port = 0"]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def reading(served, sensor: str, t: int) -> bytes:
    return json.dumps({"sensor": sensor, "ts": served.start_ms + t * served.step_ms,
                       "value": float(served.stream[sensor][t])}).encode()


def produce(bootstrap: str, topic: str, served, t0: int, t1: int, extra=()) -> int:
    sink = KafkaSink(bootstrap, topic)
    n = 0
    for t in range(t0, t1):
        for s in served.sensors:
            sink.send(s.encode(), reading(served, s, t))
            n += 1
    for key, value in extra:
        sink.send(key, value)
    sink.close()
    return n


def reference(served, n: int) -> dict[str, np.ndarray]:
    """Forecasts ``(n, H)`` per sensor from one uninterrupted pass of the same model."""
    from tsforge.runtime import StreamingRuntime
    from tsforge.serve.models import load_groups

    out = {}
    for group in load_groups(served.store):
        rt = StreamingRuntime(group.onnx_path)
        for s, chain in group.sensors.items():
            rt.add_sensor(s, chain)
            out[s] = rt.push_series([s], [served.stream[s][:n, None]])[0][0]
    return out


def forecasts(bootstrap: str, topic: str) -> dict[str, list[dict]]:
    """Forecast messages of ``topic`` grouped by id."""
    by_id: dict[str, list[dict]] = {}
    for m in read_topic(bootstrap, topic):
        msg = json.loads(m["value"])
        assert m["key"].decode() == msg["id"]
        by_id.setdefault(msg["id"], []).append(msg)
    return by_id


def expected_ids(served, t0: int, t1: int, version: str) -> set[str]:
    return {forecast_id(s, served.start_ms + t * served.step_ms, k + 1, version)
            for s in served.sensors for t in range(t0, t1) for k in range(served.horizon)}


def check_against_reference(served, by_id: dict[str, list[dict]], n: int) -> None:
    ref = reference(served, n)
    for msgs in by_id.values():
        for msg in msgs:
            t = (msg["ts"] - served.start_ms) // served.step_ms
            expect = ref[msg["sensor"]][t, msg["step"] - 1]
            assert msg["mean"] == pytest.approx(expect, rel=1e-4, abs=1e-4), msg


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def spawn(config: Path, bootstrap: str, metrics_port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tsforge.cli", "serve", str(config), "--bootstrap-servers",
         bootstrap, "--metrics-port", str(metrics_port)],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env=env)


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return {}


def version_of(served) -> str:
    from tsforge.serve.models import load_groups

    (group,) = load_groups(served.store)
    return group.version


def run_in_process(config: Path, bootstrap: str, until_readings: int, metrics: bool = False):
    """Run a worker in this thread until it has forecast ``until_readings`` readings."""
    from tsforge.pipeline import load_spec
    from tsforge.serve import build_service

    spec = load_spec(config)
    if metrics:
        import dataclasses

        spec = spec.replace(metrics=dataclasses.replace(spec.metrics, port=free_port(),
                                                        host="127.0.0.1"))
    service = build_service(spec, bootstrap_servers=[bootstrap])
    done = {"readings": 0, "dead": 0}
    deadline = time.monotonic() + 60
    scraped = None
    try:
        for rep in service.worker.run(lambda: done["readings"] >= until_readings
                                      or time.monotonic() > deadline):
            done["readings"] += rep.readings
            done["dead"] += rep.dead_letters
            if metrics and done["readings"] >= until_readings:
                port = service.server.port
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                    scraped = r.read().decode()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                    assert json.loads(r.read())["partitions"] == [0, 1, 2, 3]
    finally:
        service.close()
    return done, scraped


def test_end_to_end_every_reading_has_its_forecasts(kafka_broker, served_models, tmp_path):
    name = "e2e"
    create_topics(kafka_broker, {f"{name}-in": 4, f"{name}-out": 4, f"{name}-dlq": 1})
    n = produce(kafka_broker, f"{name}-in", served_models, 0, 150)
    cfg = write_config(tmp_path / "e2e.toml", kafka_broker, name, served_models)
    done, scraped = run_in_process(cfg, kafka_broker, n, metrics=True)
    assert done == {"readings": n, "dead": 0}
    by_id = forecasts(kafka_broker, f"{name}-out")
    assert set(by_id) == expected_ids(served_models, 0, 150, version_of(served_models))
    assert all(len(v) == 1 for v in by_id.values())
    check_against_reference(served_models, by_id, 150)
    assert f"tsforge_readings_total {float(n)}" in scraped
    assert "tsforge_model_version_info{" in scraped and "tsforge_drift_alarms" in scraped
    assert read_topic(kafka_broker, f"{name}-dlq") == []


def test_bad_messages_go_to_the_dead_letter_topic(kafka_broker, served_models, tmp_path):
    name = "bad"
    create_topics(kafka_broker, {f"{name}-in": 2, f"{name}-out": 2, f"{name}-dlq": 1})
    s = served_models.sensors[0]
    bad = {
        b"{not json": "invalid JSON",
        b'{"sensor": "%s", "value": 1.0}' % s.encode(): "missing field 'ts'",
        b'{"sensor": "%s", "ts": 5, "value": NaN}' % s.encode(): "not finite",
        b'{"sensor": "%s", "ts": 5, "value": {"a": 1}}' % s.encode(): "must hold numbers",
        b'{"sensor": ["x"], "ts": 5, "value": 1.0}': "non-empty string",
        b'{"sensor": "nobody", "ts": 5, "value": 1.0}': "unknown sensor 'nobody'",
        b'{"sensor": "%s", "ts": 5, "value": 1.0, "pad": "%s"}' % (s.encode(), b"x" * 70000):
            "exceeds max_message_bytes",
    }
    n = produce(kafka_broker, f"{name}-in", served_models, 0, 60,
                extra=[(s.encode(), m) for m in bad])
    n += produce(kafka_broker, f"{name}-in", served_models, 60, 100)
    cfg = write_config(tmp_path / "bad.toml", kafka_broker, name, served_models)
    done, _ = run_in_process(cfg, kafka_broker, n)
    assert done["readings"] == n
    dead = read_topic(kafka_broker, f"{name}-dlq")
    assert sorted(m["value"] for m in dead) == sorted(bad)
    for m in dead:
        headers = dict(m["headers"])
        assert bad[m["value"]] in headers["reason"].decode()
        assert headers["source_topic"] == f"{name}-in".encode()
    by_id = forecasts(kafka_broker, f"{name}-out")
    assert set(by_id) == expected_ids(served_models, 0, 100, version_of(served_models))
    check_against_reference(served_models, by_id, 100)


def test_kill_9_then_a_new_worker_resumes_from_the_checkpoint(kafka_broker, served_models,
                                                              tmp_path):
    name = "crash"
    create_topics(kafka_broker, {f"{name}-in": 2, f"{name}-out": 2, f"{name}-dlq": 1})
    cfg = write_config(tmp_path / "crash.toml", kafka_broker, name, served_models,
                       every_seconds=1.0, max_poll_records=50)
    total = 300
    stop, killed = threading.Event(), threading.Event()

    def trickle() -> None:  # readings keep arriving while workers come and go
        for t0 in range(0, total, 10):
            if t0 == total // 2:
                killed.wait(120)  # the second half arrives after the crash
            produce(kafka_broker, f"{name}-in", served_models, t0, t0 + 10)
            if stop.wait(0.2):
                return

    producer = threading.Thread(target=trickle, daemon=True)
    a = spawn(cfg, kafka_broker, 0, tmp_path / "a.log")
    try:
        producer.start()
        wait_until(lambda: len(read_topic(kafka_broker, f"{name}-out")) > 200, 60,
                   "worker A's first forecasts")
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        killed.set()
        from tsforge.serve import CheckpointStore

        store = CheckpointStore(tmp_path / f"{name}-ckpt", topic=f"{name}-in", group_id=name)
        at_kill = {p: (store.load(p).offset if store.load(p) else 0) for p in (0, 1)}
        port = free_port()
        b = spawn(cfg, kafka_broker, port, tmp_path / "b.log")
        try:
            wait_until(lambda: health(port).get("partitions") == [0, 1], 60, "worker B joining")
            want = expected_ids(served_models, 0, total, version_of(served_models))
            wait_until(lambda: want <= set(forecasts(kafka_broker, f"{name}-out")), 90,
                       "every reading forecast after the restart")
        finally:
            b.send_signal(signal.SIGTERM)
            assert b.wait(30) == 0, (tmp_path / "b.log").read_text()[-2000:]
    finally:
        stop.set()
        producer.join(10)
        if a.poll() is None:
            a.kill()
    by_id = forecasts(kafka_broker, f"{name}-out")
    assert set(by_id) == want  # no reading without its forecasts
    position = {(json.loads(m["value"])["sensor"], json.loads(m["value"])["ts"]):
                (m["partition"], m["offset"]) for m in read_topic(kafka_broker, f"{name}-in")}
    duplicated = {i: v for i, v in by_id.items() if len(v) > 1}
    for msgs in duplicated.values():
        partition, offset = position[(msgs[0]["sensor"], msgs[0]["ts"])]
        assert offset >= at_kill[partition], "duplicate outside the uncommitted window"
        assert all(m["mean"] == pytest.approx(msgs[0]["mean"], rel=1e-5) for m in msgs)
    check_against_reference(served_models, by_id, total)


def test_two_workers_share_partitions_and_hand_over(kafka_broker, served_models, tmp_path):
    name = "pair"
    create_topics(kafka_broker, {f"{name}-in": 4, f"{name}-out": 4, f"{name}-dlq": 1})
    # No periodic checkpoint: what moves with a partition is the hand-over checkpoint.
    cfg = write_config(tmp_path / "pair.toml", kafka_broker, name, served_models,
                       every_seconds=3600)
    ports = [free_port(), free_port()]
    a = spawn(cfg, kafka_broker, ports[0], tmp_path / "a.log")
    b = spawn(cfg, kafka_broker, ports[1], tmp_path / "b.log")
    try:
        def split() -> bool:
            pa, pb = health(ports[0]).get("partitions"), health(ports[1]).get("partitions")
            return bool(pa) and bool(pb) and sorted(pa + pb) == [0, 1, 2, 3]

        wait_until(split, 60, "both workers holding partitions")
        produce(kafka_broker, f"{name}-in", served_models, 0, 120)
        version = version_of(served_models)
        wait_until(lambda: expected_ids(served_models, 0, 120, version)
                   <= set(forecasts(kafka_broker, f"{name}-out")), 60, "first half")
        assert health(ports[0])["readings"] > 0 and health(ports[1])["readings"] > 0
        b.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0, (tmp_path / "b.log").read_text()[-2000:]
        wait_until(lambda: health(ports[0]).get("partitions") == [0, 1, 2, 3], 60,
                   "worker A taking every partition")
        produce(kafka_broker, f"{name}-in", served_models, 120, 240)
        want = expected_ids(served_models, 0, 240, version)
        wait_until(lambda: want <= set(forecasts(kafka_broker, f"{name}-out")), 60,
                   "second half")
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        assert a.wait(30) == 0, (tmp_path / "a.log").read_text()[-2000:]
    by_id = forecasts(kafka_broker, f"{name}-out")
    assert set(by_id) == want
    assert all(len(v) == 1 for v in by_id.values())  # a graceful hand-over repeats nothing
    check_against_reference(served_models, by_id, 240)  # state moved with the partitions


def _versions_in_order(bootstrap: str, topic: str) -> dict[str, list[str]]:
    """Per sensor, the model version of each forecast message in stream order."""
    out: dict[str, list[tuple[int, str]]] = {}
    for m in read_topic(bootstrap, topic):
        msg = json.loads(m["value"])
        out.setdefault(msg["sensor"], []).append((msg["ts"], msg["version"]))
    return {s: [v for _, v in sorted(rows)] for s, rows in out.items()}


def test_serve_from_registry_keys_carry_the_champion_name(kafka_broker, served_models,
                                                          tmp_path):
    from tsforge.registry import Registry
    from tsforge.serve.models import load_groups

    (group,) = load_groups(served_models.store)
    champion = Registry(group.registry, create=False).champion
    assert group.version == champion == "v0001"
    name = "registry"
    create_topics(kafka_broker, {f"{name}-in": 2, f"{name}-out": 2, f"{name}-dlq": 1})
    n = produce(kafka_broker, f"{name}-in", served_models, 0, 20)
    cfg = write_config(tmp_path / "reg.toml", kafka_broker, name, served_models)
    done, _ = run_in_process(cfg, kafka_broker, n)
    assert done["readings"] == n
    keys = {m["key"].decode() for m in read_topic(kafka_broker, f"{name}-out")}
    assert keys == expected_ids(served_models, 0, 20, champion)


def test_bad_champion_is_rolled_back_to_the_previous_version(kafka_broker, served_models,
                                                             tmp_path):
    """A champion with wrong sensor statistics loses to the previous version in shadow."""
    from serve_fixtures import registry_with_bad_champion

    from tsforge.registry import Registry

    store = tmp_path / "models"
    registry, bad, good = registry_with_bad_champion(served_models, store)
    assert (registry.champion, registry.previous) == (bad, good)
    name = "rollback"
    create_topics(kafka_broker, {f"{name}-in": 1, f"{name}-out": 1, f"{name}-dlq": 1})
    n = produce(kafka_broker, f"{name}-in", served_models, 0, 60)
    monitor = ("[monitor]\nparams = { window = 30, min_readings = 10, patience = 3, "
               "alpha = 0.05, cooldown = 0 }\n")
    cfg = write_config(tmp_path / "rb.toml", kafka_broker, name, served_models, store=store,
                       extra=monitor)
    done, _ = run_in_process(cfg, kafka_broker, n)
    assert done["readings"] == n
    assert Registry(registry.root, create=False).champion == good
    assert any(e.get("action") == "rollback" for e in registry.events())
    for sensor, versions in _versions_in_order(kafka_broker, f"{name}-out").items():
        assert versions[0] == bad and versions[-1] == good, sensor
        switch = versions.index(good)
        assert set(versions[switch:]) == {good}, sensor
