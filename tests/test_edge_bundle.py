"""Bundles on the edge: layout and checksums, tampering, missing state, bad readings,
rollback to the previous version, int8, and on-device adaptation checked against torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tsforge.datasets
from tsforge.errors import ArtifactError, ConfigError
from tsforge.export import export_bundle
from tsforge.models import create
from tsforge.models.transformed import TransformedForecaster
from tsforge.preprocess.transforms import TransformChain
from tsforge.runtime import EdgeService, load_bundle, verify_bundle
from tsforge.runtime.cli import main as edge_main

CHAIN = [{"kind": "difference"}, {"kind": "scale"}]


def real_series() -> np.ndarray:
    """NAB machine temperature (bundled with the package), 5-minute readings."""
    path = Path(tsforge.datasets.__file__).parent / "machine_temperature_system_failure.csv"
    return np.genfromtxt(path, delimiter=",", skip_header=1, usecols=1, max_rows=1000)


def esn(**kw) -> TransformedForecaster:
    return TransformedForecaster(create("esn", reservoir=30, washout=20, horizon=3, **kw), CHAIN)


@pytest.fixture(scope="module")
def y():
    return real_series()


@pytest.fixture
def two_versions(tmp_path, y):
    """v0001 = naive (good on this smooth series), v0002 = daily seasonal naive (bad)."""
    root = tmp_path / "b"
    export_bundle(TransformedForecaster(create("naive", horizon=2)).fit(y[:600]), root,
                  sensor="m", parity_steps=50)
    bad = TransformedForecaster(create("seasonal_naive", period=288, horizon=2)).fit(y[:600])
    export_bundle(bad, root, sensor="m", parity_steps=50)
    return root


def test_layout_index_and_requirements(two_versions):
    index = verify_bundle(two_versions)
    assert (index["version"], index["current"], index["previous"]) == (2, "v0002", "v0001")
    assert index["versions"]["v0001"]["model"] == "naive"
    assert index["versions"]["v0002"]["model"] == "seasonal_naive"
    for folder in ("v0001", "v0002"):
        assert {f"{folder}/model.onnx", f"{folder}/model.json"} <= set(index["files"])
    reqs = (two_versions / "requirements.txt").read_text()
    assert "numpy" in reqs and "onnxruntime" in reqs and "torch" not in reqs
    assert "requirements.txt" in index["files"]


def test_third_export_drops_the_oldest_version(two_versions, y):
    export_bundle(TransformedForecaster(create("naive", horizon=2)).fit(y[:600]), two_versions,
                  sensor="m", parity_steps=20)
    index = verify_bundle(two_versions)
    assert (index["current"], index["previous"]) == ("v0003", "v0002")
    assert not (two_versions / "v0001").exists()


@pytest.mark.parametrize("victim", ["v0002/model.onnx", "v0002/model.json", "v0001/model.onnx",
                                    "requirements.txt"])
def test_tampered_bundle_is_rejected(two_versions, victim, capsys):
    path = two_versions / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="modified after export"):
        load_bundle(two_versions)
    assert edge_main(["run", str(two_versions), "--input", str(path)]) == 2
    assert "refused" in capsys.readouterr().err


def test_missing_or_foreign_bundle_files_are_reported(two_versions, tmp_path):
    (two_versions / "v0001" / "model.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_bundle(two_versions)
    (two_versions / "bundle.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_bundle(two_versions)
    with pytest.raises(ArtifactError, match="not a tsforge bundle"):
        load_bundle(tmp_path)


def test_missing_state_is_initialised_as_documented(tmp_path, y):
    model = esn().fit(y[:600])
    export_bundle(model, tmp_path / "b", sensor="m", parity_steps=20)
    service = EdgeService(tmp_path / "b")
    art = service.runtime.artifact
    # the exported sensor continues its exported state; an unseen sensor starts at zeros
    np.testing.assert_allclose(art.exported_state(), model.model.stream_state(), rtol=1e-6)
    service.push("new-sensor", 80.0)
    st = service.runtime.sensors["new-sensor"]
    # zero state; the first difference is anchored at the first reading (0 before scaling)
    z0 = TransformChain.from_spec(art.meta["transforms"]).steps[-1].transform_one(0.0)
    first = service.runtime.artifact.session.run(
        None, {"x": np.full((1, 1), z0, np.float32), "state": art.initial_state()[None]})
    np.testing.assert_allclose(st.model_state, first[1][0], rtol=1e-5, atol=1e-7)
    del art.meta["stream_state"]
    assert not art.exported_state().any()  # manifest without state: zeros


def test_bad_readings_follow_the_policy(tmp_path, y):
    export_bundle(esn().fit(y[:600]), tmp_path / "b", sensor="m", parity_steps=20)
    lines = ["timestamp,sensor,value", "1,m,75.0", "2,m,nan", "3,m,not-a-number", "4,m",
             "5,fresh,inf", "6,m,76.0,1.0", "7,m,76.5"]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    code = edge_main(["run", str(tmp_path / "b"), "--input", str(tmp_path / "in.csv"),
                      "--output", str(tmp_path / "out.csv"),
                      "--dead-letter", str(tmp_path / "dead.txt")])
    assert code == 0
    served = [r.split(",")[0] for r in (tmp_path / "out.csv").read_text().splitlines()[1:]]
    assert served == ["1", "2", "7"]  # NaN imputed and served; the rest dead-lettered
    dead = (tmp_path / "dead.txt").read_text()
    for reason in ("could not convert", "expected timestamp,sensor,value",
                   "first reading of a sensor is not finite", "covariate"):
        assert reason in dead
    assert len(dead.strip().splitlines()) == 4


def test_rollback_to_the_previous_version_on_live_errors(two_versions, y):
    service = EdgeService(two_versions)
    previous_only = EdgeService(two_versions / "v0001" / "model.onnx")
    for t in range(600, 760):
        out = service.push("m", y[t]).mean
        ref = previous_only.push("m", y[t]).mean
    assert service.rolled_back and service.serving == "v0001"
    np.testing.assert_allclose(out, ref)  # now served by the previous version
    kinds = [e["event"] for e in service.events]
    assert kinds[0] == "alarm" and "rollback" in kinds
    event = service.events[kinds.index("rollback")]
    assert event["metrics"]["ratio_champion_previous"] > 1.1 and event["persisted"]
    assert event["from_version"] == "v0002" and event["to_version"] == "v0001"
    index = verify_bundle(two_versions)  # persisted: a restart serves v0001
    assert (index["current"], index["previous"]) == ("v0001", "v0002")
    assert index["rollbacks"][0]["from"] == "v0002"


def test_no_rollback_when_the_current_version_is_as_good(tmp_path, y):
    root = tmp_path / "b"
    for _ in range(2):
        export_bundle(TransformedForecaster(create("naive", horizon=2)).fit(y[:600]), root,
                      sensor="m", parity_steps=20)
    service = EdgeService(root, monitor={"window": 60, "min_readings": 20, "patience": 3})
    for t in range(600, 800):
        service.push("m", y[t])
    assert not service.rolled_back and service.serving == "v0002"
    assert not [e for e in service.events if e["event"] == "rollback"]


def test_int8_step_is_served_with_its_reported_cost(tmp_path, y):
    model = TransformedForecaster(create("gru", hidden=32, seq_len=32, epochs=2, horizon=2),
                                  CHAIN).fit(y[:600])
    rep = export_bundle(model, tmp_path / "b", sensor="m", int8=True, parity_steps=50)
    q = rep.int8
    assert q["size_bytes"] > 0 and q["steps"] > 0 and q["max_abs_error"] >= 0
    f32, i8 = EdgeService(tmp_path / "b"), EdgeService(tmp_path / "b", int8=True)
    a = np.asarray([f32.push("m", y[t]).mean for t in range(600, 700)])
    b = np.asarray([i8.push("m", y[t]).mean for t in range(600, 700)])
    assert np.all(np.isfinite(b)) and 0 < np.max(np.abs(a - b)) < 0.5 * np.ptp(y[600:700])
    with pytest.raises(ConfigError, match="bundle"):
        EdgeService(tmp_path / "b" / "v0001" / "model.onnx", int8=True)


@pytest.mark.parametrize("name,params", [
    ("esn", {"reservoir": 30, "washout": 20}),
    ("uoro", {"hidden": 8, "fit_readings": 300}),
    ("rtrl", {"hidden": 6, "fit_readings": 200}),
])
def test_on_device_adaptation_matches_library_and_torch(tmp_path, y, name, params):
    torch = pytest.importorskip("torch")
    lib = TransformedForecaster(create(name, horizon=3, **params), CHAIN).fit(y[:600])
    root = tmp_path / "b"
    export_bundle(lib, root, sensor="m", parity_steps=50)
    service = EdgeService(root, adapt=True)
    for t in range(600, 760):
        served = service.push("m", y[t]).mean
        lib.learn_one(y[t])
        np.testing.assert_allclose(served, lib.forecast().mean, rtol=1e-9, atol=1e-9)
    assert service.runtime.learned == 160
    service.save()
    index = verify_bundle(root)
    assert (index["current"], index["previous"]) == ("v0002", "v0001")
    assert index["versions"]["v0002"]["adaptation"]["readings"] == 160
    # the written ONNX step equals the library's torch core with the adapted weights
    core = lib.model.streaming_core()
    session = load_bundle(root).current.session
    state_t = torch.as_tensor(lib.model.stream_state(), dtype=torch.float32)[None]
    state_o = state_t.numpy().copy()
    rows = np.random.default_rng(3).standard_normal((100, 1)).astype(np.float32)
    with torch.no_grad():
        for row in rows:
            y_t, state_t = core(torch.as_tensor(row[None]), state_t)
            y_o, state_o = session.run(None, {"x": row[None], "state": state_o})
            np.testing.assert_allclose(y_o, y_t.numpy(), atol=1e-5, rtol=1e-5)
    # a restart from the new version continues the stream where the device stopped
    restarted = EdgeService(root)
    for t in range(760, 800):
        served = restarted.push("m", y[t]).mean
        lib.update(y[t])
        ref = lib.forecast().mean
        assert np.max(np.abs(served - ref) / (1 + np.abs(ref))) < 1e-4


def test_adaptation_needs_an_online_learner(two_versions):
    with pytest.raises(ArtifactError, match="online learner"):
        EdgeService(two_versions, adapt=True)


def test_cli_adapts_and_writes_versions(tmp_path, y):
    export_bundle(esn().fit(y[:600]), tmp_path / "b", sensor="m", parity_steps=20)
    (tmp_path / "in.csv").write_text("".join(f"{t},m,{float(y[t])!r}\n"
                                             for t in range(600, 700)))
    code = edge_main(["run", str(tmp_path / "b"), "--input", str(tmp_path / "in.csv"),
                      "--output", str(tmp_path / "out.csv"), "--adapt", "--save-every", "40",
                      "--events", str(tmp_path / "events.jsonl")])
    assert code == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["version"] for e in events] == ["v0002", "v0003", "v0004"]
    index = verify_bundle(tmp_path / "b")
    assert index["versions"]["v0004"]["adaptation"]["readings"] == 100
    shutil.rmtree(tmp_path / "b" / "v0003")
    with pytest.raises(ArtifactError, match="missing"):
        verify_bundle(tmp_path / "b")


def test_drift_is_reported_where_river_is_installed(tmp_path, y):
    pytest.importorskip("river")
    export_bundle(TransformedForecaster(create("naive", horizon=1)).fit(y[:600]), tmp_path / "b",
                  sensor="m", parity_steps=20)
    noisy = y[600:1000] + np.r_[np.zeros(200), np.random.default_rng(0).normal(0, 8, 200)]
    watched, quiet = EdgeService(tmp_path / "b"), EdgeService(tmp_path / "b", drift=False)
    for v in noisy:
        watched.push("m", v)
        quiet.push("m", v)
    drifts = [e for e in watched.events if e["event"] == "drift"]
    assert drifts and drifts[0]["sensor"] == "m" and not quiet.events


def test_cli_export_bundle_then_serve(tmp_path, y, capsys):
    from tsforge.cli import main as tsforge_main

    csv = tmp_path / "data.csv"
    csv.write_text("timestamp,temp\n" + "".join(
        f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{float(v)!r}\n" for i, v in enumerate(y[:400])))
    args = ["export", str(csv), "--model", "esn", "--params", '{"reservoir": 20, "washout": 10}',
            "--horizon", "2"]
    assert tsforge_main([*args, "--bundle", str(tmp_path / "b"), "--int8"]) == 0
    out = capsys.readouterr().out
    assert "version 1 (v0001)" in out and "int8" in out and "online learner" in out
    assert tsforge_main([*args, "--bundle", str(tmp_path / "b")]) == 0
    index = verify_bundle(tmp_path / "b")
    assert (index["current"], index["previous"], index["sensor"]) == ("v0002", "v0001", "temp")
    assert tsforge_main([*args, "--bundle", str(tmp_path / "c"), "--out", "x.onnx"]) == 2
    assert "exactly one of --out" in capsys.readouterr().err
    (tmp_path / "in.csv").write_text("".join(f"{t},temp,{float(y[t])!r}\n"
                                             for t in range(400, 420)))
    assert edge_main(["run", str(tmp_path / "b"), "--input", str(tmp_path / "in.csv"),
                      "--output", str(tmp_path / "out.csv")]) == 0
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 21
