"""The serving pieces without a broker: block paths against their per-reading references,
the decoder's verdicts, checkpoints, output ids, the worker loop over memory connectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tsforge.connectors import DeadLetterSink, JsonDecoder, MemorySink, MemorySource, RawBatch

from tsforge.errors import ConfigError
from tsforge.preprocess.transforms import TransformChain


def _raw(messages: list[bytes]) -> RawBatch:
    return RawBatch(messages, np.zeros(len(messages), np.int32), np.arange(len(messages)))


def test_transform_block_equals_transform_one_and_inverse_forecast():
    rng = np.random.default_rng(0)
    t = np.arange(400)
    y = 10 + 0.05 * t + np.sin(2 * np.pi * t / 24) * 3 + rng.normal(0, 0.3, t.size)
    spec = [{"kind": "deseasonalize", "period": 24}, {"kind": "difference"}, {"kind": "scale"}]
    a = TransformChain.from_spec(spec).fit(y[:300])
    b = a.copy()
    z_block, ctx = a.transform_block(y[300:])
    z_hat = rng.normal(size=(100, 5))
    y_block = a.inverse_block(z_hat, ctx)
    for i, v in enumerate(y[300:]):
        assert b.transform_one(v) == pytest.approx(z_block[i], abs=1e-12)
        np.testing.assert_allclose(b.inverse_forecast(z_hat[i]), y_block[i], atol=1e-9)
    assert a.to_spec() == b.to_spec()


def test_push_series_equals_push_reading_by_reading(served_models):
    from tsforge.runtime import StreamingRuntime
    from tsforge.serve.models import load_groups

    group = load_groups(served_models.store)[0]
    fast, slow = (StreamingRuntime(group.onnx_path) for _ in range(2))
    for rt in (fast, slow):
        for sensor, chain in group.sensors.items():
            rt.add_sensor(sensor, chain)
    sensors = list(group.sensors)
    values = [served_models.stream[s][: 60 + 7 * i, None] for i, s in enumerate(sensors)]
    means, halves = fast.push_series(sensors, values)
    for s, v, m, h in zip(sensors, values, means, halves):
        for t in range(len(v)):
            np.testing.assert_allclose(slow.push(s, v[t, 0]), m[t], rtol=1e-5, atol=1e-5)
            q = slow.sensors[s].conformal.q
            np.testing.assert_allclose(q, h[t], rtol=1e-5, atol=1e-5)
        assert not np.isnan(h[-1]).any()  # intervals warmed up within the block
    # state round-trips: a fresh runtime continues exactly where this one stands
    again = StreamingRuntime(group.onnx_path)
    for s in sensors:
        again.add_sensor(s, group.sensors[s])
        again.load_sensor_state_dict(s, fast.sensor_state_dict(s))
    nxt = [served_models.stream[s][100:130, None] for s in sensors]
    a, _ = fast.push_series(sensors, nxt)
    b, _ = again.push_series(sensors, nxt)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_json_decoder_names_every_bad_message():
    good = [b'{"sensor": "a", "ts": 1, "value": 1.5}',
            b'{"sensor": "b", "ts": "2024-01-01T00:00:00Z", "value": 2}']
    bad = {
        b"{oops": "invalid JSON",
        b'{"ts": 1, "value": 1}': "missing field 'sensor'",
        b'{"sensor": "a", "value": 1}': "missing field 'ts'",
        b'{"sensor": "a", "ts": 1}': "missing field 'value'",
        b'{"sensor": "a", "ts": 1, "value": NaN}': "not finite",
        b'{"sensor": "a", "ts": 1, "value": "7"}': "must hold numbers",
        b'{"sensor": "a", "ts": 1, "value": true}': "must hold numbers",
        b'{"sensor": 5, "ts": 1, "value": 1}': "non-empty string",
        b'{"sensor": "a", "ts": 1.5, "value": 1}': "epoch milliseconds",
        b'{"sensor": "a", "ts": "yesterday", "value": 1}': "ISO-8601",
        b'[1, 2]': "expected an object",
        b'"x"' * 40000: "exceeds max_message_bytes",
        b"[" * 100000: "exceeds",
    }
    messages = good[:1] + list(bad) + good[1:]
    readings, rejected = JsonDecoder().decode(_raw(messages))
    assert readings.sensor.tolist() == ["a", "b"]
    assert readings.ts.tolist() == [1, 1704067200000]
    assert readings.index.tolist() == [0, len(messages) - 1]
    assert len(rejected) == len(bad)
    for i, reason in zip(rejected.index, rejected.reasons):
        assert bad[messages[i]] in reason, (messages[i][:40], reason)
    # a deeply nested document within the size limit is refused, not a crash
    deep = JsonDecoder(max_bytes=1 << 20).decode(_raw([b"[" * 200000]))[1]
    assert "invalid JSON" in deep.reasons[0]


def test_json_decoder_several_channels():
    dec = JsonDecoder(channels=2)
    readings, rejected = dec.decode(_raw([b'{"sensor": "a", "ts": 1, "values": [1, 2]}',
                                          b'{"sensor": "a", "ts": 2, "values": [1]}']))
    assert readings.values.tolist() == [[1.0, 2.0]]
    assert "expects 2" in rejected.reasons[0]


def test_decoder_config_errors_name_the_valid_values():
    from tsforge.connectors import make_decoder

    with pytest.raises(ConfigError, match="valid values: json"):
        make_decoder("avro")
    with pytest.raises(ConfigError, match="cannot be imported"):
        make_decoder("no.such.module:Decoder")
    assert isinstance(make_decoder("tsforge.connectors.json_decoder:JsonDecoder"), JsonDecoder)


def test_checkpoint_round_trip(tmp_path):
    from tsforge.serve import CheckpointStore

    store = CheckpointStore(tmp_path, topic="in", group_id="g")
    assert store.load(3) is None
    state = {"model_state": np.arange(4.0), "chain": np.array("[]")}
    store.save(3, 1234, {"pump/1": ("abc", state)})
    ck = store.load(3)
    assert ck.offset == 1234 and ck.partition == 3
    version, loaded = ck.sensors["pump/1"]
    assert version == "abc"
    np.testing.assert_array_equal(loaded["model_state"], state["model_state"])


@pytest.mark.parametrize("layout", ["step", "reading", "batch"])
def test_output_ids_identify_every_forecast(layout):
    from tsforge.serve import ForecastBlock, encode, forecast_id

    n, H = 5, 3
    sensors = np.array(["a", "b", "a", "b", "a"])
    ts = np.arange(n) * 10
    half = np.full((n, 1, H), 0.5)
    half[0] = np.nan  # warming up
    block = ForecastBlock(np.arange(n * H, dtype=float).reshape(n, H), half,
                          np.array(["v1"] * n, dtype=object))
    keys, values = encode(sensors, ts, block, (0.9,), layout)
    ids = set()
    for key, value in zip(keys, values):
        msg = json.loads(value)
        if layout == "step":
            assert key.decode() == msg["id"]
            ids.add(msg["id"])
        elif layout == "reading":
            ids.update(forecast_id(msg["sensor"], msg["ts"], k + 1, msg["version"])
                       for k in range(H))
        else:
            ids.update(forecast_id(msg["sensor"], t, k + 1, msg["version"])
                       for t in msg["ts"] for k in range(H))
    assert ids == {forecast_id(s, t, k + 1, "v1") for s, t in zip(sensors, ts) for k in range(H)}


def test_worker_loop_over_memory_connectors(served_models, tmp_path):
    from tsforge.serve import CheckpointStore, OnnxEngine, Worker
    from tsforge.serve.models import load_groups

    sensors = served_models.sensors
    msgs = [json.dumps({"sensor": s, "ts": served_models.start_ms + t,
                        "value": float(served_models.stream[s][t])}).encode()
            for t in range(50) for s in sensors]
    msgs.insert(7, b"not json")
    msgs.insert(20, b'{"sensor": "ghost", "ts": 1, "value": 1.0}')
    out, dead = MemorySink(), MemorySink()
    store = CheckpointStore(tmp_path, topic="memory", group_id="g")
    engine = OnnxEngine(load_groups(served_models.store))
    worker = Worker(MemorySource(msgs, max_records=40), JsonDecoder(), engine, out,
                    DeadLetterSink(dead), store, checkpoint_every_s=0.0)
    reports = []
    for rep in worker.run(lambda: sum(r.messages for r in reports) >= len(msgs)):
        reports.append(rep)
    assert sum(r.readings for r in reports) == 50 * len(sensors)
    assert len(out.messages) == 50 * len(sensors) * served_models.horizon
    assert [v for _, v, _ in dead.messages] == [b"not json",
                                                b'{"sensor": "ghost", "ts": 1, "value": 1.0}']
    assert "unknown sensor 'ghost'" in dict(dead.messages[1][2])["reason"].decode()
    assert store.load(0).offset == len(msgs)
    assert worker.source.committed == {0: len(msgs)}


def test_production_pipeline_example_loads():
    from pathlib import Path

    from tsforge.pipeline import load_spec
    from tsforge.serve.service import check_kafka_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "pipelines" / "kafka-production.toml")
    check_kafka_spec(spec)
    assert spec.use == "kafka" and spec.metrics.port == 9108
    assert spec.sensor("OT")[0] == "mlp" and spec.sensor("any")[0] == "esn"


@pytest.mark.parametrize("table, message", [
    ({"kafka": {"output_layout": "csv"}}, "valid values: 'step', 'reading', 'batch'"),
    ({"kafka": {"auto_offset_reset": "newest"}}, "valid values: 'earliest', 'latest'"),
    ({"kafka": {"max_poll_records": "many"}}, "max_poll_records must be int"),
    ({"kafka": {"group": "x"}}, "valid keys: bootstrap_servers"),
])
def test_kafka_config_errors_name_the_key_and_valid_values(table, message):
    from tsforge.pipeline import parse_spec

    with pytest.raises(ConfigError, match=message):
        parse_spec({"name": "x", "use": "kafka", **table})


def test_serve_refuses_specs_it_cannot_run(tmp_path, capsys):
    from tsforge.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nuse = "kafka"\n[kafka]\ninput_topic = "a"\noutput_topic = "a"\n'
                   '[registry]\npath = "models"\n')
    assert main(["serve", str(bad)]) == 2
    assert "input_topic must differ" in capsys.readouterr().err
    csv = tmp_path / "csv.toml"
    csv.write_text('name = "x"\nuse = "csv"\n')
    assert main(["serve", str(csv)]) == 2
    assert "use = 'kafka'" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text(f'name = "x"\nuse = "kafka"\n[registry]\npath = "{tmp_path / "none"}"\n')
    assert main(["serve", str(empty), "--metrics-port", "0"]) == 2
    assert "[model] history" in capsys.readouterr().err


def test_online_learning_engine_resumes_learned_state(served_models, tmp_path):
    from tsforge.pipeline import parse_spec
    from tsforge.serve.online import OnlineEngine

    spec = parse_spec({"name": "o", "use": "kafka",
                       "model": {"family": "esn", "horizon": 2, "online_learning": True,
                                 "params": {"reservoir": 16},
                                 "history": str(served_models.history_csv)},
                       "intervals": {"levels": [0.8]},
                       "registry": {"path": str(tmp_path / "models")}})
    sensors = served_models.sensors[:2]

    def batch(t0, t1):
        from tsforge.connectors import ReadingBatch

        rows = [(s, t) for t in range(t0, t1) for s in sensors]
        return ReadingBatch(np.array([s for s, _ in rows]), np.array([t for _, t in rows]),
                            np.array([[served_models.stream[s][t]] for s, t in rows]),
                            np.arange(len(rows)))

    whole = OnlineEngine(spec)
    first = whole.step(batch(0, 40))
    state = {s: whole.sensor_state(s) for s in sensors}
    learned = {k: v for k, v in state[sensors[0]].items() if k.startswith("model/")}
    initial = OnlineEngine(spec).sensor_state(sensors[0])
    assert any(not np.array_equal(learned[k], initial[k]) for k in learned)  # it learned
    rest = whole.step(batch(40, 80))
    resumed = OnlineEngine(spec)  # loads the store fitted by the first engine
    for s in sensors:
        resumed.load_sensor_state(s, state[s])
    again = resumed.step(batch(40, 80))
    np.testing.assert_allclose(again.mean, rest.mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(again.half, rest.half, rtol=1e-9, atol=1e-9)
    assert np.isfinite(first.mean).all()
    assert set(rest.version) == {whole.version(s) for s in sensors}


@pytest.mark.parametrize("family", ["esn", "uoro", "snarimax"])
def test_online_learning_engine_equals_the_library_learners(served_models, tmp_path, family):
    """The engine-served online path gives the numbers of each sensor's library
    ``TransformedForecaster`` learning reading by reading (chain, imputation of NaN/inf,
    conformal intervals), for polls that repeat sensors in any order."""
    import json

    from tsforge.connectors import ReadingBatch

    from tsforge.pipeline import parse_spec
    from tsforge.serve.online import OnlineEngine, _build, _prepare, load_wrapped_state

    params = {"esn": {"reservoir": 16}, "uoro": {"hidden": 6, "fit_readings": 200},
              "snarimax": {"p": 2, "q": 1, "period": 12, "sp": 1}}[family]
    spec = parse_spec({"name": "o", "use": "kafka",
                       "model": {"family": family, "horizon": 2, "online_learning": True,
                                 "params": params, "history": str(served_models.history_csv)},
                       "intervals": {"levels": [0.8, 0.95]},
                       "registry": {"path": str(tmp_path / "models")}})
    engine = OnlineEngine(spec)
    library = {}
    for sensor, (path, fam) in _prepare(spec).items():
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
            state = {k: npz[k] for k in npz.files if k != "__meta__"}
        library[sensor] = _build(fam, meta["params"], 2, meta["chain"], [0.8, 0.95],
                                 spec.intervals.method, 0)
        load_wrapped_state(library[sensor], state)
    sensors = served_models.sensors[:3]
    rng = np.random.default_rng(1)
    t = dict.fromkeys(sensors, 0)
    for _ in range(12):
        names = list(rng.choice(sensors, size=int(rng.integers(1, 10))))
        values = []
        for s in names:
            v = served_models.stream[s][t[s]]
            values.append(np.nan if rng.random() < 0.08 else np.inf if rng.random() < 0.03
                          else v)
            t[s] += 1
        block = engine.step(ReadingBatch(np.array(names), np.arange(len(names)),
                                         np.array(values)[:, None], np.arange(len(names))))
        for j, (s, y) in enumerate(zip(names, values)):
            library[s].learn_one(y)
            f = library[s].forecast()
            np.testing.assert_allclose(block.mean[j], f.mean, rtol=1e-6, atol=1e-9)
            # half-widths per level and step, NaN while that step warms up (the library
            # issues a level only once every step is warm; the engine per step, as for ONNX)
            np.testing.assert_allclose(block.half[j], library[s].conformal_.q, rtol=1e-6,
                                       equal_nan=True)
            if f.intervals:
                lo, hi = f.intervals[0.95]
                np.testing.assert_allclose(block.half[j, 1], (hi - lo) / 2, rtol=1e-6)
    for s in sensors:  # checkpoints keep the library's per-sensor format
        mine, ref = engine.sensor_state(s), served_wrapped(library[s])
        assert set(ref) <= set(mine)
        for key in ref:
            if ref[key].dtype.kind in "fi":
                np.testing.assert_allclose(mine[key], ref[key], rtol=1e-6, atol=1e-9,
                                           err_msg=key)


def served_wrapped(model):
    from tsforge.serve.online import wrapped_state

    return wrapped_state(model)


def test_shadow_rollback_batched_equals_reading_by_reading(served_models, tmp_path):
    """The Kafka engine's batched shadow serves what the shadow stage serves reading by reading."""
    from serve_fixtures import registry_with_bad_champion
    from tsforge.connectors.base import ReadingBatch

    from tsforge.engine.shadow import ShadowStage
    from tsforge.monitor import MonitorConfig
    from tsforge.runtime import StreamingRuntime
    from tsforge.serve import OnnxEngine
    from tsforge.serve.models import load_groups
    from tsforge.serve.versions import load_version

    registry, bad, good = registry_with_bad_champion(served_models, tmp_path / "models")
    config = MonitorConfig(window=30, min_readings=10, patience=3, alpha=0.05, cooldown=0)
    engine = OnnxEngine(load_groups(tmp_path / "models"), monitor=config)
    names, steps = served_models.sensors, 40
    sensor = np.asarray([s for _ in range(steps) for s in names])
    values = np.asarray([served_models.stream[s][t] for t in range(steps) for s in names])
    served, versions = [], []
    for lo in range(0, len(sensor), 50):  # several polls; the switch falls inside one
        sl = slice(lo, lo + 50)
        batch = ReadingBatch(sensor[sl], np.arange(len(sensor))[sl], values[sl, None],
                             np.arange(len(sensor[sl])))
        block = engine.step(batch)
        served.append(block.mean)
        versions += block.version.tolist()
    runtimes = []
    for v in (bad, good):
        group = load_version(registry, "g", v)
        rt = StreamingRuntime(group.onnx_path)
        for s, chain in group.sensors.items():
            rt.add_sensor(s, chain)
        runtimes.append(rt)
    stage = ShadowStage({bad: runtimes[0].engine, good: runtimes[1].engine}, bad, good,
                        config=config)
    expect, expect_versions = [], []
    for s, y in zip(sensor.tolist(), values.tolist()):
        res = stage.serve([s], np.asarray([[y]]))
        expect.append(res.mean[0])
        expect_versions.append(res.version[0])
    assert versions == expect_versions and bad in versions and good in versions
    np.testing.assert_allclose(np.concatenate(served), np.asarray(expect), rtol=1e-5, atol=1e-6)
    assert registry.champion == good and engine.versions[engine.groups[0].name] == good
    assert [(o.version, n.version) for o, n, _ in engine.take_switches()] == [(bad, good)]


def test_monitor_rule_is_built_only_with_a_registry_and_names_bad_keys(tmp_path):
    from tsforge.pipeline import parse_spec
    from tsforge.serve.service import monitor_config

    base = {"name": "m", "use": "kafka", "monitor": {"params": {"window": 50}}}
    assert monitor_config(parse_spec(base)) is None  # no registry: no shadow, no cost
    spec = parse_spec({**base, "registry": {"path": str(tmp_path)}})
    assert monitor_config(spec).window == 50
    off = parse_spec({**base, "registry": {"path": str(tmp_path)},
                      "monitor": {"enabled": False}})
    assert monitor_config(off) is None
    bad = parse_spec({**base, "registry": {"path": str(tmp_path)},
                      "monitor": {"params": {"windw": 50}}})
    with pytest.raises(ConfigError, match=r"\[monitor\] params.*windw.*valid"):
        monitor_config(bad)
