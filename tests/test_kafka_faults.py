"""Fault injection against the real broker (Tansu): poison messages, broken checkpoints,
a broker outage through a TCP proxy the test controls, and a recreated topic.

Helpers (config, producing, reading back, the uninterrupted reference) are those of
test_kafka_serve.py.  Forecast values are compared with the reference run wherever
the sensor's state survived, so a worker that lost state, or dropped or double-fed a
reading, fails the comparison.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.request

import pytest

pytest.importorskip("kafka", reason="kafka-python is not installed: pip install 'tsforge[all]'")

from kafka_broker import free_port
from test_kafka_serve import (
    check_against_reference,
    expected_ids,
    forecasts,
    health,
    produce,
    spawn,
    version_of,
    wait_until,
    write_config,
)
from tsforge.connectors import create_topics, read_topic

#: Messages that are not readings: undecodable (400-digit numbers, bad JSON, deep
#: nesting, NaN strings, wrong types) and decodable but unusable (a value of 1e300
#: outside the physical range, a sensor nobody serves).
POISON_UNDECODABLE = [
    b'{"sensor":"%(s)s","ts":1,"value":' + b"9" * 400 + b"}",
    b'{"sensor":"%(s)s","ts":' + b"9" * 400 + b',"value":1.0}',
    b'{"sensor":"%(s)s","ts":1,"value":1e400}',
    b'{"sensor":"%(s)s","ts":1,"value":"nan"}',
    b'{"sensor":"%(s)s","ts":1,"value":' + b"[" * 30000 + b"]" * 30000 + b"}",
    b'{"sensor":"%(s)s","ts":true,"value":-0}',
    b"\xff\xfe garbage",
    b"[1, 2, 3]",
]
POISON_DECODABLE = [
    b'{"sensor":"%(s)s","ts":1,"value":1e300}',
    b'{"sensor":"%(s)s","ts":1,"value":-1.7e308}',
    b'{"sensor":"nobody","ts":1,"value":1.0}',
]


def poison_messages(sensor: str) -> list[bytes]:
    return [m.replace(b"%(s)s", sensor.encode()) for m in
            POISON_UNDECODABLE + POISON_DECODABLE]


def partition_of(bootstrap: str, topic: str, sensors: list[str]) -> dict[str, int]:
    """Each sensor's input partition (producers key by sensor)."""
    out = {}
    for m in read_topic(bootstrap, topic):
        if m["key"] is not None and m["key"].decode("latin-1") in sensors:
            out[m["key"].decode()] = m["partition"]
    return out


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def stop(proc, log) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()[-3000:]


def test_poison_and_broken_checkpoints(kafka_broker, served_models, tmp_path):
    """Poison of both kinds among valid readings, then a kill -9, a truncated checkpoint
    (previous generation used: replayed forecasts equal) and an empty one with no
    readable generation (fresh state: ids tagged ~r)."""
    name = "faults"
    create_topics(kafka_broker, {f"{name}-in": 2, f"{name}-out": 2, f"{name}-dlq": 1})
    cfg = write_config(tmp_path / "f.toml", kafka_broker, name, served_models,
                       every_seconds=0.0, max_poll_records=40)
    sensors = served_models.sensors
    poison = [(s.encode(), m) for s in sensors[:2] for m in poison_messages(s)]
    produce(kafka_broker, f"{name}-in", served_models, 0, 60, extra=poison)
    produce(kafka_broker, f"{name}-in", served_models, 60, 120)
    version = version_of(served_models)
    from tsforge.serve import CheckpointStore

    store = CheckpointStore(tmp_path / f"{name}-ckpt", topic=f"{name}-in", group_id=name)
    port = free_port()
    a = spawn(cfg, kafka_broker, port, tmp_path / "a.log")
    try:
        wait_until(lambda: all(store.previous_path(p).exists() and store.path(p).exists()
                               for p in (0, 1)), 90,
                   "two checkpoint generations of both partitions")
        a.send_signal(signal.SIGKILL)  # mid-stream: the checkpoint generations differ
        a.wait(10)
    finally:
        if a.poll() is None:
            a.kill()
    data = store.path(0).read_bytes()
    store.path(0).write_bytes(data[: len(data) // 2])  # truncated: previous generation used
    store.path(1).write_bytes(b"")  # empty, and no readable previous generation either
    store.previous_path(1).write_bytes(b"")
    produce(kafka_broker, f"{name}-in", served_models, 120, 150)
    part = partition_of(kafka_broker, f"{name}-in", sensors)
    cold = [s for s in sensors if part[s] == 1]
    warm = [s for s in sensors if part[s] == 0]
    assert cold and warm

    def all_forecast() -> bool:
        ids = set(forecasts(kafka_broker, f"{name}-out"))
        plain = {re.sub(r"~r\d+\.\d+", "", i) for i in ids}
        return expected_ids(served_models, 0, 150, version) <= plain

    b = spawn(cfg, kafka_broker, port, tmp_path / "b.log")
    try:
        wait_until(all_forecast, 120, "every valid reading forecast after the restart")
        assert metric(port, "tsforge_checkpoints_quarantined_total") == 3
        assert b.poll() is None  # no exit on any poison message
    finally:
        stop(b, tmp_path / "b.log")
    assert a.returncode == -signal.SIGKILL
    assert len(list(store.path(0).parent.glob("p*.npz.corrupt-*"))) == 3
    dead = read_topic(kafka_broker, f"{name}-dlq")
    # Every poison message dead-lettered (twice for those replayed after the kill).
    assert {m["value"] for m in dead} == {m for _, m in poison}
    for m in dead:
        assert dict(m["headers"])["reason"]
    by_id = forecasts(kafka_broker, f"{name}-out")
    # Partition 0 resumed from the previous generation: everything it replayed equals
    # the uninterrupted reference (same ids, same numbers).
    warm_ids = {i: v for i, v in by_id.items() if i.split("|")[0] in warm}
    check_against_reference(served_models, warm_ids, 150)
    assert any(len(v) > 1 for v in warm_ids.values())  # there was a replay to compare
    # Partition 1 restarted fresh: forecasts since carry ~r1.<offset>, the earlier ones not.
    tagged = [i for i in by_id if "~r1." in i]
    assert tagged and all(i.split("|")[0] in cold for i in tagged)
    assert not [i for i in by_id if "~r0." in i]


@pytest.fixture
def proxied_broker():
    """A Tansu broker reachable only through a TCP proxy the test cuts and restores."""
    from tsforge.connectors.local_broker import LocalBroker, TcpProxy

    proxy = TcpProxy().start()
    broker = LocalBroker(advertised_port=proxy.port)
    try:
        broker.start()
    except Exception as exc:
        proxy.close()
        pytest.skip(f"the bundled Tansu broker cannot run here: {exc}")
    proxy.restore(upstream=broker.port)
    state = {"proxy": proxy, "broker": broker}
    yield state
    state["broker"].stop()
    proxy.close()


def test_broker_outage_and_recreated_topic(proxied_broker, served_models, tmp_path):
    """A 15 s outage mid-stream (worker waits, /healthz degraded, nothing lost), then the
    broker is replaced by an empty one (offsets reset, new readings forecast)."""
    from tsforge.connectors.local_broker import LocalBroker

    proxy = proxied_broker["proxy"]
    bootstrap = proxied_broker["broker"].bootstrap
    name = "outage"
    topics = {f"{name}-in": 2, f"{name}-out": 2, f"{name}-dlq": 1}
    create_topics(bootstrap, topics)
    cfg = write_config(tmp_path / "o.toml", bootstrap, name, served_models, every_seconds=0.5,
                       max_poll_records=30, extra="")
    text = cfg.read_text().replace("[model]", "outage_limit_seconds = 60\n[model]")
    cfg.write_text(text)
    version = version_of(served_models)
    port = free_port()
    w = spawn(cfg, bootstrap, port, tmp_path / "w.log")
    try:
        wait_until(lambda: health(port).get("partitions") == [0, 1], 90, "worker joining")
        produce(bootstrap, f"{name}-in", served_models, 0, 150)
        proxy.cut()  # mid-stream: readings are waiting to be forecast
        t0, states = time.monotonic(), set()
        while time.monotonic() - t0 < 15:
            states.add(health(port).get("status"))
            time.sleep(0.5)
        proxy.restore()
        assert w.poll() is None, (tmp_path / "w.log").read_text()[-3000:]
        assert "degraded" in states
        want = expected_ids(served_models, 0, 150, version)
        wait_until(lambda: want <= set(forecasts(bootstrap, f"{name}-out")), 120,
                   "every reading forecast after the outage")
        check_against_reference(served_models, forecasts(bootstrap, f"{name}-out"), 150)
        wait_until(lambda: health(port).get("status") == "ok", 30, "health back to ok")

        # The broker is recreated: empty, the checkpointed offsets are past its end.
        proxy.cut()
        proxied_broker["broker"].stop()
        fresh = LocalBroker(advertised_port=proxy.port).start()
        proxied_broker["broker"] = fresh
        proxy.restore(upstream=fresh.port)
        create_topics(bootstrap, topics)
        produce(bootstrap, f"{name}-in", served_models, 150, 170)
        want = expected_ids(served_models, 150, 170, version)
        wait_until(lambda: want <= set(forecasts(bootstrap, f"{name}-out")), 120,
                   "new readings forecast on the recreated topic")
        assert metric(port, "tsforge_offset_resets_total") >= 1
        assert w.poll() is None
    finally:
        stop(w, tmp_path / "w.log")
    assert read_topic(bootstrap, f"{name}-dlq") == []


def test_worker_exits_non_zero_past_the_outage_limit(proxied_broker, served_models, tmp_path):
    proxy = proxied_broker["proxy"]
    bootstrap = proxied_broker["broker"].bootstrap
    name = "limit"
    create_topics(bootstrap, {f"{name}-in": 1, f"{name}-out": 1, f"{name}-dlq": 1})
    cfg = write_config(tmp_path / "l.toml", bootstrap, name, served_models, every_seconds=0.5,
                       max_poll_records=30)
    cfg.write_text(cfg.read_text().replace("[model]", "outage_limit_seconds = 3\n[model]"))
    port = free_port()
    w = spawn(cfg, bootstrap, port, tmp_path / "w.log")
    try:
        wait_until(lambda: health(port).get("partitions") == [0], 90, "worker joining")
        produce(bootstrap, f"{name}-in", served_models, 0, 300)
        proxy.cut()  # a backlog in hand: the next produce or commit meets the outage
        assert w.wait(90) == 2
    finally:
        if w.poll() is None:
            w.kill()
        proxy.restore()
    log = (tmp_path / "w.log").read_text()
    assert "outage_limit_seconds = 3" in log
