"""Faults of the serving path without a broker: fuzzed messages through the decoder and
the worker, checkpoint quarantine, the outage guard, forecast-id tags, physical ranges.
The same faults against the real broker are in test_kafka_faults.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tsforge.connectors import DeadLetterSink, JsonDecoder, MemorySink, MemorySource, RawBatch

hypothesis = pytest.importorskip("hypothesis", reason="pip install 'tsforge[dev]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SENSOR = "s00"


def _raw(messages: list[bytes]) -> RawBatch:
    return RawBatch(messages, np.zeros(len(messages), np.int32), np.arange(len(messages)))


# ------------------------------------------------------------------ message generators
EXTREME = st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 1e308, -0.0, 0,
                           5e-324, True, None, "nan", "NaN", "inf", "-Infinity", "1e400", ""])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
                    | EXTREME,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


def _literal(value: object) -> bytes:
    """JSON text of ``value`` the way a sloppy producer writes it (NaN, 1e400 as written)."""
    if isinstance(value, float) and not math.isfinite(value):
        return b"1e400" if value > 0 else (b"-1e400" if value < 0 else b"NaN")
    return json.dumps(value).encode()


@st.composite
def poison(draw) -> bytes:
    """One message that must not become a reading."""
    kind = draw(st.sampled_from(["bytes", "json", "value", "ts", "sensor", "deep", "range"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40)) + b"\xff"
    if kind == "json":
        return json.dumps(draw(JSON)).encode() + b" x"
    if kind == "deep":
        depth = draw(st.sampled_from([50, 5000, 200000]))
        return b'{"sensor":"s00","ts":1,"value":' + b"[" * depth + b"]" * depth + b"}"
    if kind == "range":
        return b'{"sensor":"s00","ts":1,"value":%s}' % draw(st.sampled_from(
            [b"1e300", b"-1e300", b"1.7976931348623157e308", b"9" * 400]))
    bad = draw(st.sampled_from([10**400, "nan", "NaN", None, True, [1, 2], {"a": 1}, "1e400",
                                b"1e400", b"NaN", b"-Infinity"]))
    text = bad if isinstance(bad, bytes) else _literal(bad)
    if kind == "value":
        return b'{"sensor":"s00","ts":1,"value":' + text + b"}"
    if kind == "ts":
        return b'{"sensor":"s00","ts":' + text + b',"value":1.0}'
    return b'{"sensor":' + text + b',"ts":1,"value":1.0}'


ANY_MESSAGE = st.one_of(poison(), st.binary(max_size=60), JSON.map(lambda v: _literal(v)),
                        st.builds(lambda t, v: json.dumps({"sensor": SENSOR, "ts": t,
                                                           "value": v}).encode(),
                                  st.integers(-(2**70), 2**70),
                                  st.floats(allow_nan=False, allow_infinity=False)))


# ------------------------------------------------------------------ decoder
def test_issue_reproduction_400_digit_value_is_a_dead_letter():
    good, bad = JsonDecoder().decode(_raw([b'{"sensor":"s00","ts":1,"value":' + b"9" * 400
                                           + b"}"]))
    assert len(good) == 0 and bad.index == [0] and "float64 range" in bad.reasons[0]
    good, bad = JsonDecoder().decode(_raw([b'{"sensor":"s00","ts":' + b"9" * 400
                                           + b',"value":1}']))
    assert len(good) == 0 and "int64 range" in bad.reasons[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_MESSAGE, min_size=1, max_size=12))
def test_decoder_never_raises_and_accounts_for_every_message(messages):
    good, bad = JsonDecoder().decode(_raw(messages))
    rows = sorted(good.index.tolist() + bad.index)
    assert rows == list(range(len(messages)))  # each message decoded or rejected, once
    assert np.isfinite(good.values).all() and good.ts.dtype == np.int64
    assert all(isinstance(r, str) and r for r in bad.reasons)
    for reason in bad.reasons:
        reason.encode("utf-8", "backslashreplace")


@settings(max_examples=100, deadline=None)
@given(poison())
def test_every_poison_message_is_rejected_alone_and_among_valid_ones(message):
    valid = b'{"sensor":"s00","ts":5,"value":1.5}'
    good, bad = JsonDecoder().decode(_raw([valid, message, valid]))
    rows = good.index.tolist()
    assert 0 in rows and 2 in rows  # its neighbours are unaffected
    if 1 in rows:  # decodes: an absurd value ([validate] range) or a sensor nobody serves
        i = rows.index(1)
        assert np.abs(good.values[i]).max() > 1e9 or good.sensor[i] != "s00"
    else:
        assert bad.index == [1]


# ------------------------------------------------------------------ worker
class FlakyEngine:
    """An engine whose model raises on readings with the value 13.37 (a poison reading
    that decodes), after feeding the poll's readings before it; every other call goes
    to the real engine."""

    def __init__(self, engine):
        self.inner = engine

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step(self, batch):
        bad = np.flatnonzero(batch.values[:, 0] == 13.37)
        if len(bad):  # the readings before it went through: the state moved, then it raised
            self.inner.step(batch.take(np.arange(bad[0])))
            raise FloatingPointError("model blew up")
        return self.inner.step(batch)


class ExplodingDecoder(JsonDecoder):
    """A custom decoder with a bug: it raises on messages containing b'boom'."""

    def decode(self, batch):
        if any(b"boom" in (v or b"") for v in batch.values):
            raise RuntimeError("decoder bug")
        return super().decode(batch)


def _worker(served, messages, store=None):
    from tsforge.pipeline.spec import ValidateSpec
    from tsforge.serve import OnnxEngine, Worker
    from tsforge.serve.models import load_groups

    out, dead = MemorySink(), MemorySink()
    engine = FlakyEngine(OnnxEngine(load_groups(served.store)))
    worker = Worker(MemorySource(messages, max_records=17), ExplodingDecoder(), engine, out,
                    DeadLetterSink(dead), store, checkpoint_every_s=0.0,
                    validate=ValidateSpec())
    seen = [0]
    for rep in worker.run(lambda: seen[0] >= len(messages)):
        seen[0] += rep.messages
    return worker, out, dead


@pytest.fixture(scope="module")
def valid_stream(served_models):
    s = served_models.sensors[0]
    return [json.dumps({"sensor": s, "ts": served_models.start_ms + t * served_models.step_ms,
                        "value": float(served_models.stream[s][t])}).encode()
            for t in range(40)]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(poison(), st.just(b"boom"), st.just(b"13.37")), min_size=1,
                max_size=8), st.randoms(use_true_random=False))
def test_worker_dead_letters_every_poison_message_and_forecasts_every_valid_one(
        served_models, valid_stream, poisons, rnd):
    s = served_models.sensors[0]
    bad = [json.dumps({"sensor": s, "ts": 7, "value": 13.37}).encode() if p == b"13.37"
           else (b'{"boom": 1}' if p == b"boom" else p.replace(b'"s00"', json.dumps(s).encode()))
           for p in poisons]
    messages = list(valid_stream)
    for p in bad:
        messages.insert(rnd.randrange(len(messages) + 1), p)
    worker, out, dead = _worker(served_models, messages)
    H = served_models.horizon
    assert len(out.messages) == len(valid_stream) * H  # every valid reading forecast
    assert sorted(v for _, v, _ in dead.messages) == sorted(bad)  # every poison dead-lettered
    reasons = [dict(h)["reason"].decode() for _, _, h in dead.messages]
    assert all(reasons)
    assert any("model blew up" in r for r in reasons) == (b"13.37" in poisons)
    assert any("decoder bug" in r for r in reasons) == (b"boom" in poisons)
    assert worker.source.committed == {0: len(messages)}


def test_poison_leaves_the_valid_forecasts_unchanged(served_models, valid_stream):
    """Forecasts with poison in the stream equal those of the clean stream: a reading that
    raised in the model left no trace in its sensor's state."""
    s = served_models.sensors[0]
    _, clean, _ = _worker(served_models, list(valid_stream))
    dirty = list(valid_stream)
    dirty.insert(10, json.dumps({"sensor": s, "ts": 1, "value": 13.37}).encode())
    dirty.insert(25, b'{"sensor":"%s","ts":2,"value":1e300}' % s.encode())
    _, out, dead = _worker(served_models, dirty)
    assert len(dead.messages) == 2
    got = [json.loads(v) for _, v, _ in out.messages]
    want = [json.loads(v) for _, v, _ in clean.messages]
    assert [m["id"] for m in got] == [m["id"] for m in want]
    np.testing.assert_allclose([m["mean"] for m in got], [m["mean"] for m in want], rtol=1e-6)


# ------------------------------------------------------------------ checkpoints
def _store(tmp_path):
    from tsforge.serve import CheckpointStore

    return CheckpointStore(tmp_path, topic="t", group_id="g")


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04garbage", "truncate", b"\x00" * 64])
def test_unreadable_checkpoint_is_quarantined_and_the_previous_generation_used(tmp_path,
                                                                              damage):
    store = _store(tmp_path)
    state = {"model_state": np.arange(3.0)}
    store.save(1, 100, {"a": ("v1", state)}, extra={"last_ts": {"a": 5}})
    store.save(1, 200, {"a": ("v1", state)})
    path = store.path(1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else damage)
    ckpt, quarantined = store.recover(1)
    assert ckpt.offset == 100 and ckpt.extra == {"last_ts": {"a": 5}}
    assert len(quarantined) == 1 and quarantined[0].name.startswith("p1.npz.corrupt-")
    assert quarantined[0].exists() and not path.exists()


def test_no_readable_generation_gives_none_and_content_refused_is_quarantined(tmp_path):
    store = _store(tmp_path)
    store.save(0, 10, {"a": ("v1", {"x": np.zeros(2)})})
    store.save(0, 20, {"a": ("v1", {"x": np.zeros(2)})})
    store.previous_path(0).write_bytes(b"")

    def refuse(ckpt):
        raise ValueError("state does not fit the model")

    ckpt, quarantined = store.recover(0, refuse)
    assert ckpt is None and len(quarantined) == 2
    assert store.recover(0) == (None, [])  # nothing left: a fresh start, not an error


# ------------------------------------------------------------------ outage guard
def test_guard_waits_out_an_outage_and_reports_degraded():
    from kafka.errors import KafkaConnectionError

    from tsforge.serve.metrics import Health
    from tsforge.serve.outage import BrokerGuard

    health, seen = Health(), []
    attempts = iter([KafkaConnectionError("down")] * 3 + [None])

    def commit():
        seen.append(health.report()[1]["status"])
        exc = next(attempts)
        if exc is not None:
            raise exc
        return "ok"

    guard = BrokerGuard(60, health=health, sleep=lambda s: None)
    assert guard.call("commit", commit) == "ok"
    assert seen == ["ok", "degraded", "degraded", "degraded"]
    assert health.report() == (200, health.report()[1]) and health.degraded is None


def test_guard_gives_up_past_the_limit_and_passes_other_errors():
    import time

    from tsforge.connectors.base import SinkError

    from tsforge.serve.outage import BrokerGuard, BrokerUnavailable

    guard = BrokerGuard(0.3, sleep=time.sleep)

    def down():
        raise SinkError("not acknowledged")

    with pytest.raises(BrokerUnavailable, match=r"outage_limit_seconds = 0\.3"):
        guard.call("produce forecasts", down)
    with pytest.raises(ZeroDivisionError):  # a bug is not an outage: no retry
        guard.call("commit", lambda: 1 / 0)


# ------------------------------------------------------------------ ids and ranges
def test_duplicate_and_out_of_order_timestamps_get_their_own_stable_ids():
    from tsforge.serve.output import IdTags

    ids = IdTags()
    s = np.array(["a", "a", "a", "b", "a"])
    ts = np.array([10, 10, 20, 10, 15])
    parts, offs = np.zeros(5, np.int32), np.arange(5)
    assert ids.tags(s, ts, parts, offs) == ["", "#0.1", "", "", "#0.4"]
    saved = ids.extra(["a", "b"])
    again = IdTags()
    again.restore(json.loads(json.dumps(saved)))
    assert again.tags(s[4:], ts[4:], parts[4:], offs[4:]) == ["#0.4"]  # same on a replay
    cold = IdTags()
    cold.cold.add(0)
    assert cold.tags(s[:3], ts[:3], parts[:3], offs[:3]) == ["~r0.0", "~r0.0#0.1", "~r0.0"]


def test_range_check_rejects_or_clips():
    from tsforge.connectors.base import ReadingBatch, Rejected

    from tsforge.pipeline.spec import ValidateSpec
    from tsforge.serve.poison import RangeCheck

    batch = ReadingBatch(np.array(["a", "b", "a"]), np.arange(3), np.array([[1.0], [50.0],
                                                                            [-1e300]]),
                         np.arange(3))
    spec = ValidateSpec(range=[-100.0, 100.0], sensors={"b": [0, 10]})
    rejected = Rejected()
    kept = RangeCheck(spec).apply(batch, rejected)
    assert kept.index.tolist() == [0] and rejected.index == [1, 2]
    assert "[0, 10] of sensor 'b'" in rejected.reasons[0]
    clip = ValidateSpec(range=[-100.0, 100.0], sensors={"b": [0, 10]}, policy="clip")
    kept = RangeCheck(clip).apply(batch, Rejected())
    assert kept.values[:, 0].tolist() == [1.0, 10.0, -100.0]


def test_resuming_from_a_checkpoint_repeats_ids_and_numbers(served_models, tmp_path):
    """A worker resuming from a mid-stream checkpoint forecasts what an uninterrupted one
    did, duplicate timestamps included (same ids, same numbers)."""
    from tsforge.serve import CheckpointStore, OnnxEngine, Worker
    from tsforge.serve.models import load_groups

    msgs = []
    for t in range(40):
        for s in served_models.sensors[:2]:
            y = float(served_models.stream[s][t])
            ts = served_models.start_ms + t * served_models.step_ms
            msgs.append(json.dumps({"sensor": s, "ts": ts, "value": y}).encode())
            if t % 7 == 3:
                msgs.append(json.dumps({"sensor": s, "ts": ts, "value": y + 0.5}).encode())

    def serve(stream, store):
        out = MemorySink()
        worker = Worker(MemorySource(stream, max_records=13), JsonDecoder(),
                        OnnxEngine(load_groups(served_models.store)), out,
                        DeadLetterSink(MemorySink()), store, checkpoint_every_s=0.0)
        for _ in worker.run(lambda: worker.source.position >= len(stream)):
            pass
        return {json.loads(v)["id"]: json.loads(v)["mean"] for _, v, _ in out.messages}

    whole = serve(msgs, CheckpointStore(tmp_path / "a", topic="memory", group_id="g"))
    store = CheckpointStore(tmp_path / "b", topic="memory", group_id="g")
    first = serve(msgs[:50], store)
    assert store.load(0).offset == 50
    rest = serve(msgs, store)
    assert set(first) | set(rest) == set(whole) and not set(first) & set(rest)
    assert any("#" in i for i in rest)
    for i, mean in {**first, **rest}.items():
        assert mean == pytest.approx(whole[i], rel=1e-9, abs=1e-9), i
